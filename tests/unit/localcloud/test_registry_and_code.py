"""What the front learns from the control-plane calls (the registry), and fetching a
version's code by its pinned S3 version with the sha256 checked (code.py): the parts
moto does not do (it ignores S3ObjectVersion and drops LoggingConfig)."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import zipfile

import boto3
import pytest
from moto import mock_aws

from localcloud import code
from localcloud.registry import CodeRegistry, LoggingConfig, S3Code, ZipCode
from tests.unit.localcloud.helpers import make_zip

BUCKET = "registry-test-bucket"


def _create(registry, request: dict, response: dict) -> None:
    registry.observe(
        "POST", "/2015-03-31/functions", json.dumps(request).encode(), json.dumps(response).encode()
    )


def test_create_function_records_the_pinned_s3_location_by_code_sha(tmp_path):
    registry = CodeRegistry(tmp_path)
    _create(
        registry,
        {
            "FunctionName": "fn",
            "Code": {"S3Bucket": "b", "S3Key": "k.zip", "S3ObjectVersion": "v1"},
        },
        {"FunctionName": "fn", "Version": "1", "CodeSha256": "SHA1"},
    )
    assert registry.code_sources("SHA1") == [S3Code("b", "k.zip", "v1")]
    assert registry.code_sources("other") == []


def test_a_zipfile_is_kept_on_disk_under_its_sha256(tmp_path):
    registry = CodeRegistry(tmp_path / "zips")
    data = make_zip({"a.py": "x = 1\n"})
    _create(
        registry,
        {"FunctionName": "fn", "Code": {"ZipFile": base64.b64encode(data).decode()}},
        {"FunctionName": "fn", "Version": "$LATEST", "CodeSha256": code.sha256_b64(data)},
    )
    (source,) = registry.code_sources(code.sha256_b64(data))
    assert isinstance(source, ZipCode) and source.path.read_bytes() == data


def test_update_function_code_sends_its_location_flat(tmp_path):
    registry = CodeRegistry(tmp_path)
    registry.observe(
        "PUT",
        "/2015-03-31/functions/fn/code",
        json.dumps({"S3Bucket": "b", "S3Key": "k.zip", "S3ObjectVersion": "v2"}).encode(),
        json.dumps({"FunctionName": "fn", "Version": "2", "CodeSha256": "SHA2"}).encode(),
    )
    assert registry.code_sources("SHA2") == [S3Code("b", "k.zip", "v2")]


def test_logging_config_follows_versions_as_on_aws(tmp_path):
    # GIVEN a function created with JSON logs and published as version 1
    registry = CodeRegistry(tmp_path)
    _create(
        registry,
        {
            "FunctionName": "fn",
            "Code": {},
            "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "WARN"},
        },
        {"FunctionName": "fn", "Version": "1", "CodeSha256": "S"},
    )
    # WHEN $LATEST is reconfigured to Text and then published as version 2
    registry.observe(
        "PUT",
        "/2015-03-31/functions/fn/configuration",
        json.dumps({"LoggingConfig": {"LogFormat": "Text"}}).encode(),
        json.dumps({"FunctionName": "fn", "Version": "$LATEST"}).encode(),
    )
    registry.observe(
        "POST",
        "/2015-03-31/functions/fn/versions",
        b"{}",
        json.dumps({"FunctionName": "fn", "Version": "2"}).encode(),
    )
    # THEN version 1 keeps the configuration it was published with
    assert registry.logging_config("fn", "1") == LoggingConfig("JSON", None, "WARN", None)
    assert registry.logging_config("fn", "2").log_format == "Text"
    assert registry.logging_config("fn", "$LATEST").log_format == "Text"
    # AND a function never seen gets Lambda's default
    assert registry.logging_config("other", "$LATEST") == LoggingConfig()


def test_layers_are_recorded_by_version_arn(tmp_path):
    registry = CodeRegistry(tmp_path)
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:deps:1"
    registry.observe(
        "POST",
        "/2018-10-31/layers/deps/versions",
        json.dumps(
            {"Content": {"S3Bucket": "b", "S3Key": "l.zip", "S3ObjectVersion": "v"}}
        ).encode(),
        json.dumps({"LayerVersionArn": arn, "Content": {"CodeSha256": "L"}}).encode(),
    )
    found = registry.layer(arn)
    assert (
        found is not None and found.source == S3Code("b", "l.zip", "v") and found.sha256_b64 == "L"
    )


def test_reads_and_failed_calls_are_ignored(tmp_path):
    registry = CodeRegistry(tmp_path)
    registry.observe("POST", "/2015-03-31/functions", b"not json", b"{}")
    registry.observe("POST", "/some-bucket/2015-03-31/functions", b"{}", b"{}")
    assert registry.code_sources("") == []


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_the_pinned_version_is_fetched_not_the_current_one(s3):
    # GIVEN two versions of the package; the function pins the first
    old, new = make_zip({"v.py": "V = 1\n"}), make_zip({"v.py": "V = 2\n"})
    v1 = s3.put_object(Bucket=BUCKET, Key="k.zip", Body=old)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="k.zip", Body=new)
    # WHEN its code is fetched
    data = code.fetch_checked([S3Code(BUCKET, "k.zip", v1)], code.sha256_b64(old), s3, "fn:1")
    # THEN it is the pinned bytes
    assert data == old


def test_code_that_does_not_match_codesha256_never_runs(s3):
    # GIVEN moto's CodeSha256 computed from the current object, and a pin to an older one
    old, new = make_zip({"v.py": "V = 1\n"}), make_zip({"v.py": "V = 2\n"})
    v1 = s3.put_object(Bucket=BUCKET, Key="k.zip", Body=old)["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="k.zip", Body=new)
    # WHEN it is fetched, THEN the mismatch names both hashes and the way out
    with pytest.raises(code.CodeError) as err:
        code.fetch_checked([S3Code(BUCKET, "k.zip", v1)], code.sha256_b64(new), s3, "fn:1")
    message = str(err.value)
    assert code.sha256_b64(new) in message and code.sha256_b64(old) in message
    assert "S3ObjectVersion" in message


def test_code_with_no_known_source_says_how_to_deploy_it(s3):
    with pytest.raises(code.CodeError, match="through the local cloud's endpoint"):
        code.fetch_checked([], "X", s3, "function fn:1")


def test_unpacking_is_content_addressed_and_keeps_modes(tmp_path):
    buffer = tmp_path / "p.zip"
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("bin/tool")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("a.py", "x = 1\n")
    data = buffer.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    first, cached = code.unpacked(data, sha256, tmp_path / "cache")
    assert not cached and (first.parent.name, first.name) == (sha256, "tree")
    assert (first / "a.py").read_text() == "x = 1\n"
    assert (first / "bin" / "tool").stat().st_mode & 0o111
    # AND a second unpack of the same bytes reuses it, with no temp dir left behind
    assert code.unpacked(data, sha256, tmp_path / "cache") == (first, True)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [sha256]


def test_an_entry_escaping_the_code_directory_is_refused(tmp_path):
    data = make_zip({"../evil.py": "x = 1\n"})
    with pytest.raises(code.CodeError, match="escapes the code directory"):
        code.unpacked(data, hashlib.sha256(data).hexdigest(), tmp_path / "cache")
    assert not (tmp_path / "evil.py").exists()
    assert list((tmp_path / "cache").iterdir()) == []
