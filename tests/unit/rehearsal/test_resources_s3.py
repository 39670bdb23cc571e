"""S3 handlers: each makes the matching S3 call, and what moto would let slip
(an invalid lifecycle, a stale metadata sha, an unversioned bucket) is caught."""

from __future__ import annotations

import hashlib
import json
import re

import pulumi
import pytest

from infra.rehearsal.errors import ResourceFailed, UnsupportedTypeError
from infra.rehearsal.resources_s3 import apply_deferred_policies
from tests.unit.rehearsal.helpers import b64sha

TLS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::ctb-test-bucket", "arn:aws:s3:::ctb-test-bucket/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::ctb-test-bucket/*"],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ],
}


def test_bucket_is_created_with_realistic_outputs(deploy, aws):
    physical, out = deploy("aws:s3/bucket:Bucket", "b", bucket="ctb-test-bucket", tags={"a": "b"})
    assert physical == "ctb-test-bucket"
    assert out["arn"] == "arn:aws:s3:::ctb-test-bucket"
    assert out["bucketRegionalDomainName"] == "ctb-test-bucket.s3.us-east-1.amazonaws.com"
    tags = aws.client("s3").get_bucket_tagging(Bucket="ctb-test-bucket")["TagSet"]
    assert tags == [{"Key": "a", "Value": "b"}]


def test_bucket_without_a_name_is_autonamed_from_the_logical_name(deploy):
    physical, _ = deploy("aws:s3/bucket:Bucket", "logs")
    assert physical.startswith("logs-") and len(physical) == len("logs-") + 7


def test_bucket_settings_land_in_s3(deploy, aws):
    # GIVEN a bucket, WHEN the owner's settings are applied
    bucket = deploy.bucket()
    deploy(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", bucket=bucket,
        blockPublicAcls=True, blockPublicPolicy=True, ignorePublicAcls=True,
        restrictPublicBuckets=True,
    )  # fmt: skip
    deploy(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "sse", bucket=bucket,
        rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                "bucketKeyEnabled": False}],
    )  # fmt: skip
    deploy(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "own", bucket=bucket,
        rule={"objectOwnership": "BucketOwnerEnforced"},
    )  # fmt: skip
    s3 = aws.client("s3")
    # THEN S3 reports each of them
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert pab == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
        True,
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    own = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert own == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_lifecycle_rules_are_translated_to_the_s3_shape(deploy, aws):
    bucket = deploy.bucket()
    deploy(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc", bucket=bucket,
        rules=[
            {"id": "lambda", "status": "Enabled", "filter": {"prefix": "lambda/"},
             "noncurrentVersionExpiration": {"newerNoncurrentVersions": 5.0,
                                             "noncurrentDays": 30.0}},
            {"id": "logs", "status": "Enabled", "filter": {"prefix": "logs/"},
             "transitions": [{"days": 30.0, "storageClass": "STANDARD_IA"}],
             "expiration": {"days": 365.0}},
            {"id": "all", "status": "Enabled", "filter": {},
             "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0},
             "expiration": {"expiredObjectDeleteMarker": True}},
        ],
    )  # fmt: skip
    rules = {
        r["ID"]: r
        for r in aws.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    }
    assert rules["lambda"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rules["logs"]["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert rules["logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["all"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_lifecycle_expiration_mixing_days_and_delete_markers_is_rejected(deploy):
    # S3 rejects this Expiration; moto would accept it, so the engine checks.
    bucket = deploy.bucket()
    with pytest.raises(ResourceFailed, match="expiredObjectDeleteMarker cannot be combined"):
        deploy(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc",
            bucket=bucket,
            rules=[{"id": "x", "status": "Enabled", "filter": {"prefix": "logs/"},
                    "expiration": {"days": 30.0, "expiredObjectDeleteMarker": True}}],
        )  # fmt: skip


def test_tls_only_policy_is_deferred_then_applied(deploy, aws):
    # GIVEN the TLS-only policy
    bucket = deploy.bucket()
    deploy("aws:s3/bucketPolicy:BucketPolicy", "p", bucket=bucket, policy=json.dumps(TLS_POLICY))
    s3 = aws.client("s3")
    # THEN it is not applied yet, so writes (which moto would deny) still work
    s3.put_object(Bucket=bucket, Key="data/x", Body=b"x")
    assert aws.deferred_policies == {bucket: json.dumps(TLS_POLICY)}
    # WHEN the deferred policies are applied, THEN the bucket carries it
    assert apply_deferred_policies(aws) == [bucket]
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == TLS_POLICY


def test_a_deny_that_is_not_about_transport_is_not_deferred(deploy):
    bucket = deploy.bucket()
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": "*"}],
    }  # fmt: skip
    with pytest.raises(ResourceFailed, match="'DenyAll' is not conditioned on the transport"):
        deploy("aws:s3/bucketPolicy:BucketPolicy", "p", bucket=bucket, policy=json.dumps(policy))


def test_policy_must_be_json(deploy):
    bucket = deploy.bucket()
    with pytest.raises(ResourceFailed, match="policy is not valid JSON"):
        deploy("aws:s3/bucketPolicy:BucketPolicy", "p", bucket=bucket, policy="{nope")


def test_package_object_is_uploaded_with_a_version_and_checksum(deploy, aws, tmp_path):
    bucket = deploy.bucket()
    zip_path = tmp_path / "pkg.zip"
    zip_path.write_bytes(b"PK-fake-zip-bytes")
    sha = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    physical, out = deploy(
        "aws:s3/bucketObjectv2:BucketObjectv2", "pkg", bucket=bucket,
        key="lambda/dev/lambda_deployment.zip", source=pulumi.FileAsset(str(zip_path)),
        checksumAlgorithm="SHA256", contentType="application/zip", metadata={"sha256": sha},
    )  # fmt: skip
    assert physical == "lambda/dev/lambda_deployment.zip"
    head = aws.client("s3").head_object(Bucket=bucket, Key=physical, VersionId=out["versionId"])
    assert head["Metadata"] == {"sha256": sha}
    assert head["ContentType"] == "application/zip"
    assert out["checksumSha256"]
    # AND S3 keeps the checksum, because the upload names its algorithm
    stored = aws.client("s3").head_object(
        Bucket=bucket, Key=physical, VersionId=out["versionId"], ChecksumMode="ENABLED"
    )
    assert stored["ChecksumSHA256"] == b64sha(b"PK-fake-zip-bytes") == out["checksumSha256"]


def test_a_stored_checksum_that_differs_from_the_bytes_is_refused(deploy, aws):
    # GIVEN an upload whose checksum arrives altered (moto stores what it is sent)
    bucket = deploy.bucket()
    wrong = b64sha(b"other bytes")
    aws.client("s3").meta.events.register(
        "provide-client-params.s3.PutObject",
        lambda params, **_: params.update(ChecksumSHA256=wrong),
    )
    # WHEN the package object is created THEN the stored checksum is read back and refused
    with pytest.raises(
        ResourceFailed, match=re.escape(f"stored object's ChecksumSHA256 is {wrong}")
    ):
        deploy(
            "aws:s3/bucketObjectv2:BucketObjectv2", "pkg", bucket=bucket, key="lambda/x.zip",
            content="the package", checksumAlgorithm="SHA256",
        )  # fmt: skip


def test_package_metadata_must_describe_the_bytes(deploy, tmp_path):
    bucket = deploy.bucket()
    (tmp_path / "pkg.zip").write_bytes(b"new bytes")
    with pytest.raises(ResourceFailed, match=r"metadata sha256 0+ does not match"):
        deploy(
            "aws:s3/bucketObjectv2:BucketObjectv2", "pkg", bucket=bucket, key="lambda/x.zip",
            source=pulumi.FileAsset(str(tmp_path / "pkg.zip")), metadata={"sha256": "0" * 64},
        )  # fmt: skip


def test_package_in_an_unversioned_bucket_is_an_error(deploy):
    # The function pins the package by version: without one, there is nothing to pin.
    bucket = deploy.bucket(versioned=False)
    with pytest.raises(ResourceFailed, match="returned no object version"):
        deploy("aws:s3/bucketObjectv2:BucketObjectv2", "pkg", bucket=bucket, key="k", content="x")


def test_a_bucket_read_is_an_error_not_a_create(engine, aws):
    # The program adopts the shared bucket through the getBucket invoke, never
    # `Bucket.get`: a read would be a new program path, so it must fail, naming it.
    from pulumi.runtime import MockResourceArgs

    args = MockResourceArgs(
        typ="aws:s3/bucket:Bucket", name="b", inputs={}, resource_id="shared-bucket-1", custom=None
    )
    with pytest.raises(UnsupportedTypeError, match="read of resource type aws:s3/bucket:Bucket"):
        engine.new_resource(args)
    assert aws.client("s3").list_buckets()["Buckets"] == []
    assert engine.created == []
