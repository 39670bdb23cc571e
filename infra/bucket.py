"""The one deployment bucket: created and configured by the owner stack, adopted by name
by every other stack (docs/DESIGN.md decision 1).

S3 bucket names are global, so only one stack may create it. Destroying a stack
must never delete shared packages, data or logs, so the owner's bucket is both
`protect`ed and `retain_on_delete`. Its settings are `retain_on_delete` too: deleting
the BucketVersioning resource suspends versioning under every other stack's pinned
packages, and deleting the others would drop encryption, Block Public Access, the
TLS-only policy or the lifecycle rules of a bucket that lives on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.policies import tls_only_bucket_policy

_SSE_DEFAULT = (
    aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs
)
# Every rule's incomplete multipart uploads are aborted after this many days.
ABORT_MULTIPART_DAYS = 7


@dataclass
class BucketArgs:
    bucket_name: str
    owner: bool
    # Lifecycle of lambda/: keep this many noncurrent package versions (the rollback
    # window) and expire older ones after this many days.
    lambda_noncurrent_versions: int = 5
    lambda_noncurrent_days: int = 30
    kms_key_arn: str | None = None
    logs_transition_days: int = 30
    logs_expire_days: int = 365
    logs_noncurrent_days: int = 30
    data_transition_days: int = 30
    data_archive_days: int = 90
    # The fetcher rewrites the same keys every run (idempotent keys), and each rewrite
    # leaves a noncurrent copy in the versioned bucket: keep those a week, not forever.
    data_noncurrent_days: int = 7
    tags: dict[str, str] = field(default_factory=dict)


def lifecycle_rules(args: BucketArgs) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Rules by prefix (docs/DESIGN.md decision 2). Current versions under lambda/ and
    data/ are never expired: lambda/ holds the live package, data/ is the bot's history."""
    return [
        {
            "id": "lambda-package-rollback-window",
            "status": "Enabled",
            "filter": {"prefix": "lambda/"},
            "noncurrent_version_expiration": {
                "newer_noncurrent_versions": args.lambda_noncurrent_versions,
                "noncurrent_days": args.lambda_noncurrent_days,
            },
        },
        {
            "id": "logs-transition-then-expire",
            "status": "Enabled",
            "filter": {"prefix": "logs/"},
            "transitions": [{"days": args.logs_transition_days, "storage_class": "STANDARD_IA"}],
            "expiration": {"days": args.logs_expire_days},
            # In a versioned bucket expiring a log only hides it; this removes it.
            "noncurrent_version_expiration": {"noncurrent_days": args.logs_noncurrent_days},
        },
        {
            "id": "data-transition",
            "status": "Enabled",
            "filter": {"prefix": "data/"},
            # S3 skips objects under 128 KB by default: small daily files stay in
            # STANDARD (cheaper than per-object transition fees); larger ones move.
            "transitions": [
                {"days": args.data_transition_days, "storage_class": "STANDARD_IA"},
                {"days": args.data_archive_days, "storage_class": "GLACIER_IR"},
            ],
            "noncurrent_version_expiration": {"noncurrent_days": args.data_noncurrent_days},
        },
        {
            # Whole bucket, so no prefix is forgotten: S3 allows one Expiration per
            # rule, and logs/ needs its Expiration for days, hence a separate rule.
            "id": "every-prefix-hygiene",
            "status": "Enabled",
            "filter": {},
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
            "expiration": {"expired_object_delete_marker": True},
        },
    ]


class DeploymentBucket(pulumi.ComponentResource):
    """`bucket_name`/`bucket_arn` outputs; `ready` lists what an object upload must wait for."""

    def __init__(self, name: str, args: BucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cloud-trading-bot:storage:DeploymentBucket", name, None, opts)
        self.ready: list[pulumi.Resource] = []
        if args.owner:
            self._create(name, args)
        else:
            # An invoke, not a resource: the preview fails ("couldn't find resource")
            # if the owner stack has not created the bucket yet, before anything is
            # uploaded. Nothing on the bucket itself is managed from this stack.
            found = aws.s3.get_bucket_output(
                bucket=args.bucket_name, opts=pulumi.InvokeOptions(parent=self)
            )
            self.bucket_name = found.bucket
            self.bucket_arn = found.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

    def _create(self, name: str, args: BucketArgs) -> None:
        # Every setting outlives the stack with the bucket (the module docstring says why).
        # Not `protect`ed: unprotecting the bucket alone is the one step to delete it all.
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            tags=args.tags,
            # Shared by every stack: never deleted by `pulumi destroy` of one of them.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn

        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs disabled (S3.12)
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        if args.kms_key_arn:
            default = _SSE_DEFAULT(sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn)
        else:
            default = _SSE_DEFAULT(sse_algorithm="AES256")
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            # An S3 Bucket Key cuts KMS requests (and cost) per object.
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default,
                    bucket_key_enabled=bool(args.kms_key_arn),
                )
            ],
            opts=child,
        )
        policy = aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
            # S3 rejects a policy change while the public access block is being set.
            opts=child.merge(pulumi.ResourceOptions(depends_on=[public_access])),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=lifecycle_rules(args),
            # Noncurrent-version rules mean nothing until versioning is on.
            opts=child.merge(pulumi.ResourceOptions(depends_on=[versioning])),
        )
        # An object uploaded before versioning is on gets no version id to pin.
        self.ready = [versioning, encryption, ownership, policy]
