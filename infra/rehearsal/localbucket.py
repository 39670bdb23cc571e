"""`python -m infra.rehearsal.localbucket [--endpoint URL] [--stack local]`: create the
shared deployment bucket in a running moto_server, the way the owner stack would,
for `pulumi up --stack local` (Pulumi.local.yaml).

Why the local stack does not own the bucket itself: the owner's TLS-only bucket
policy denies requests unless they use TLS, and moto ignores that condition, so once
`pulumi up` applied it, moto would deny the package upload that follows (the upload
waits for the policy). Here the bucket gets the owner's other settings (versioning,
which the pinned package version needs, Block Public Access, encryption, ownership
controls) and the stack adopts it by name, as every non-owner stack does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.rehearsal.clients import EmulatorClients
from infra.rehearsal.errors import RehearsalError
from infra.rehearsal.program import load_stack_config

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_ENDPOINT = "http://127.0.0.1:5000"


def create_bucket(aws: EmulatorClients, bucket: str) -> bool:
    """Create and configure `bucket`; False if it already existed (then only configure)."""
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        created = False
    except s3.exceptions.ClientError:
        # us-east-1 answers a repeated CreateBucket with success, so ask first.
        s3.create_bucket(Bucket=bucket)
        created = True
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rehearsal.localbucket",
        description="Create the deployment bucket in a local moto_server for the local stack.",
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help=f"default {DEFAULT_ENDPOINT}")
    parser.add_argument("--stack", default="local", help="whose bucketName to use")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        # This helper exists for an emulator; it must never configure a real bucket.
        print(f"error: --endpoint {args.endpoint} is not a local emulator", file=sys.stderr)
        return 2
    try:
        config = load_stack_config(args.project_dir, args.stack)
    except RehearsalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bucket = config.get("bucketName")
    if not bucket:
        print("error: the stack sets no bucketName", file=sys.stderr)
        return 2
    region = config.get("aws:region") or "us-east-1"
    try:
        created = create_bucket(EmulatorClients(endpoint_url=args.endpoint, region=region), bucket)
    except Exception as exc:  # one line, no traceback: usually "is moto_server running?"
        print(f"error: {args.endpoint}: {exc} (is moto_server running there?)", file=sys.stderr)
        return 1
    print(f"{'created' if created else 'configured existing'} bucket {bucket} at {args.endpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
