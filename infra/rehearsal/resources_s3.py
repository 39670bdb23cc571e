"""S3: the bucket, its settings, the package object, and the getBucket invoke."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pulumi

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs, Invoke, autoname
from infra.rehearsal.shapes import given, json_document, require, tag_list, to_aws

_HOSTED_ZONE_US_EAST_1 = "Z3AQBSTGFYJSTF"


def bucket_outputs(aws: EmulatorClients, bucket: str) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{aws.region}.amazonaws.com",
        "hostedZoneId": _HOSTED_ZONE_US_EAST_1,
        "region": aws.region,
    }


def bucket(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    bucket_name = inputs.get("bucket") or autoname(inputs.get("bucketPrefix") or name)
    s3 = aws.client("s3")
    kwargs: dict[str, Any] = {"Bucket": bucket_name}
    if aws.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
    if inputs.get("objectLockEnabled"):
        kwargs["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**kwargs)
    if inputs.get("tags"):
        s3.put_bucket_tagging(Bucket=bucket_name, Tagging={"TagSet": tag_list(inputs["tags"])})
    return bucket_name, bucket_outputs(aws, bucket_name)


def get_bucket(aws: EmulatorClients, args: dict[str, Any]) -> dict[str, Any]:
    """The getBucket invoke: how a non-owner stack adopts the shared bucket."""
    name = args.get("bucket")
    if not name:
        raise ValueError("getBucket needs a bucket name")
    try:
        aws.client("s3").head_bucket(Bucket=name)
    except Exception:
        raise ValueError(
            f"bucket {name} does not exist in the emulator: the stack that owns it "
            "(bucketOwner: true) must create it first"
        ) from None
    return {"id": name, **bucket_outputs(aws, name)}


def bucket_versioning(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket", "versioningConfiguration")
    config = to_aws(inputs["versioningConfiguration"])
    aws.client("s3").put_bucket_versioning(Bucket=inputs["bucket"], VersioningConfiguration=config)
    return inputs["bucket"], {}


def public_access_block(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    aws.client("s3").put_public_access_block(
        Bucket=inputs["bucket"],
        PublicAccessBlockConfiguration={
            # The provider's default for an unset flag is false, as here.
            f[:1].upper() + f[1:]: bool(inputs.get(f))
            for f in flags
        },
    )
    return inputs["bucket"], {}


def bucket_encryption(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket", "rules")
    aws.client("s3").put_bucket_encryption(
        Bucket=inputs["bucket"],
        ServerSideEncryptionConfiguration={"Rules": to_aws(inputs["rules"])},
    )
    return inputs["bucket"], {}


def ownership_controls(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket", "rule")
    aws.client("s3").put_bucket_ownership_controls(
        Bucket=inputs["bucket"], OwnershipControls={"Rules": [to_aws(inputs["rule"])]}
    )
    return inputs["bucket"], {}


# Condition keys about the connection, which moto cannot evaluate (every request
# to moto_server is plain HTTP, so honouring them would deny the rehearsal itself).
TRANSPORT_KEYS = {"aws:securetransport", "s3:tlsversion"}


def check_transport_only(policy: str) -> None:
    """Every Deny statement must be conditioned on transport keys only: those are
    the statements deferred here. Any other Deny is real and must not be skipped."""
    doc = json.loads(policy)
    statements = doc["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    for st in statements:
        if st.get("Effect") != "Deny":
            continue
        keys = {k.lower() for cond in (st.get("Condition") or {}).values() for k in cond}
        if not keys or not keys <= TRANSPORT_KEYS:
            raise ValueError(
                f"Deny statement {st.get('Sid', '?')!r} is not conditioned on the transport "
                f"(aws:SecureTransport, s3:TlsVersion) alone; the rehearsal cannot defer it"
            )


def bucket_policy(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    """Validated now, applied last.

    moto ignores policy Conditions, so the TLS-only Deny statements (Deny unless
    aws:SecureTransport, Deny if s3:TlsVersion < 1.2) would deny every request, the
    rehearsal's own included. The policy is checked here (valid JSON, Deny only
    on transport conditions, the bucket exists) and stored by
    `apply_deferred_policies` after every write and read the rehearsal makes, so
    the emulator still ends with the deployed policy.
    """
    require(inputs, "bucket", "policy")
    policy = json_document("policy", inputs["policy"])
    check_transport_only(policy)
    aws.client("s3").head_bucket(Bucket=inputs["bucket"])
    aws.deferred_policies[inputs["bucket"]] = policy
    return inputs["bucket"], {}


def apply_deferred_policies(aws: EmulatorClients) -> list[str]:
    s3 = aws.client("s3")
    for bucket_name, policy in aws.deferred_policies.items():
        s3.put_bucket_policy(Bucket=bucket_name, Policy=policy)
        stored = s3.get_bucket_policy(Bucket=bucket_name)["Policy"]
        if json.loads(stored) != json.loads(policy):
            raise ValueError(f"bucket {bucket_name}: the stored policy differs from the program's")
    return sorted(aws.deferred_policies)


def lifecycle_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in rules:
        expiration = rule.get("expiration") or {}
        # S3 rejects this combination (MalformedXML); moto accepts it, so check here.
        if expiration.get("expiredObjectDeleteMarker") and (
            expiration.get("days") or expiration.get("date")
        ):
            raise ValueError(
                f"lifecycle rule {rule.get('id')!r}: expiredObjectDeleteMarker cannot be "
                "combined with days or date in one Expiration (S3 rejects it)"
            )
        converted = to_aws({k: v for k, v in rule.items() if k != "filter"})
        filt = rule.get("filter")
        converted["Filter"] = _lifecycle_filter(filt) if filt else {"Prefix": ""}
        out.append(converted)
    return out


def _lifecycle_filter(filt: dict[str, Any]) -> dict[str, Any]:
    if filt.get("and"):
        return {"And": to_aws(filt["and"])}
    converted: dict[str, Any] = to_aws(filt)
    if "Tag" in converted:
        return {"Tag": converted["Tag"]}
    return converted


def bucket_lifecycle(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket", "rules")
    kwargs: dict[str, Any] = {
        "Bucket": inputs["bucket"],
        "LifecycleConfiguration": {"Rules": lifecycle_rules(inputs["rules"])},
    }
    if inputs.get("transitionDefaultMinimumObjectSize"):
        kwargs["TransitionDefaultMinimumObjectSize"] = inputs["transitionDefaultMinimumObjectSize"]
    aws.client("s3").put_bucket_lifecycle_configuration(**kwargs)
    return inputs["bucket"], {}


def object_bytes(inputs: dict[str, Any]) -> bytes:
    source = inputs.get("source")
    if isinstance(source, pulumi.FileAsset):
        return Path(source.path).read_bytes()
    if isinstance(source, pulumi.StringAsset):
        return source.text.encode()
    if source is not None:
        raise ValueError(f"source of type {type(source).__name__} is not supported")
    if inputs.get("content") is not None:
        return str(inputs["content"]).encode()
    if inputs.get("contentBase64") is not None:
        return base64.b64decode(inputs["contentBase64"])
    return b""


def bucket_object(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "bucket", "key")
    body = object_bytes(inputs)
    digest = hashlib.sha256(body)
    metadata = {k: str(v) for k, v in (inputs.get("metadata") or {}).items()}
    # Content-derived metadata must describe these bytes: a stale sha256 there
    # would make the uploader and the function disagree about the package.
    if "sha256" in metadata and metadata["sha256"] != digest.hexdigest():
        raise ValueError(
            f"metadata sha256 {metadata['sha256']} does not match the uploaded bytes "
            f"({digest.hexdigest()})"
        )
    kwargs: dict[str, Any] = {
        "Bucket": inputs["bucket"],
        "Key": inputs["key"],
        "Body": body,
        "Metadata": metadata,
    }
    checksum = inputs.get("checksumAlgorithm")
    if checksum:
        if checksum != "SHA256":
            raise ValueError(f"checksumAlgorithm {checksum} is not supported (use SHA256)")
        # Named, as the provider names it: without ChecksumAlgorithm S3 (and moto)
        # checks the value but stores no checksum to read back.
        kwargs["ChecksumAlgorithm"] = "SHA256"
        kwargs["ChecksumSHA256"] = base64.b64encode(digest.digest()).decode()
    kwargs.update(
        given(
            inputs,
            ContentType="contentType",
            CacheControl="cacheControl",
            ServerSideEncryption="serverSideEncryption",
            SSEKMSKeyId="kmsKeyId",
            StorageClass="storageClass",
        )
    )
    if inputs.get("tags"):
        kwargs["Tagging"] = "&".join(f"{k}={v}" for k, v in inputs["tags"].items())
    s3 = aws.client("s3")
    put = s3.put_object(**kwargs)
    version_id = put.get("VersionId")
    if not version_id or version_id == "null":
        raise ValueError(
            f"bucket {inputs['bucket']} returned no object version: enable versioning, "
            "the function pins the package by version"
        )
    if checksum:
        head = s3.head_object(
            Bucket=inputs["bucket"], Key=inputs["key"], VersionId=version_id, ChecksumMode="ENABLED"
        )
        # What S3 kept, read back: moto stores whatever value it is sent, unchecked.
        stored = head.get("ChecksumSHA256")
        if stored != kwargs["ChecksumSHA256"]:
            raise ValueError(
                f"the stored object's ChecksumSHA256 is {stored}, the uploaded bytes' is "
                f"{kwargs['ChecksumSHA256']}"
            )
    return inputs["key"], {
        "versionId": version_id,
        "etag": put.get("ETag", "").strip('"'),
        "checksumSha256": kwargs.get("ChecksumSHA256", ""),
        "arn": f"arn:aws:s3:::{inputs['bucket']}/{inputs['key']}",
    }


RESOURCES: dict[str, Handler] = {
    "aws:s3/bucket:Bucket": bucket,
    "aws:s3/bucketVersioning:BucketVersioning": bucket_versioning,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": public_access_block,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": bucket_encryption,  # noqa: E501
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ownership_controls,
    "aws:s3/bucketPolicy:BucketPolicy": bucket_policy,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": bucket_lifecycle,
    "aws:s3/bucketObjectv2:BucketObjectv2": bucket_object,
}
INVOKES: dict[str, Invoke] = {"aws:s3/getBucket:getBucket": get_bucket}
