"""The operating commands over real HTTP against moto_server on 127.0.0.1:
the seed's script, multipart, skip-unchanged, status and rollback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from localcloud.emulator import EMULATOR_ENV, moto_server

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "upload_lambda_to_s3.sh"
BUCKET = "cloud-trading-bot-lambda-deployment-e2e"
KEY = "lambda/dev/lambda_deployment.zip"
FUNCTION = "market_data_fetcher-dev"


@pytest.fixture(scope="module")
def server():
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(server):
    client = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    # A fresh bucket per test, without a reset (other fixtures share the server).
    name = f"{BUCKET}-{os.urandom(3).hex()}"
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return client, name


def _package(path: Path, payload: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("aws/market_data_fetcher.py", "def handler(event, context):\n    return 1\n")
        zf.writestr("backend/blob.bin", os.urandom(payload))
    return path


def _run(args: list[str], url: str, *, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **EMULATOR_ENV, "VENV_PY": sys.executable}
    env.pop("AWS_ENDPOINT_URL", None)
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_seed_script_uploads_then_skips(server, s3, tmp_path):
    client, bucket = s3
    zip_path = _package(tmp_path / "lambda_deployment.zip", 64 * 1024)
    args = [str(SCRIPT), "lambda_deployment.zip", bucket, KEY, "us-east-1"]
    # WHEN the seed's script runs with its own argument order
    first = _run([*args, "--endpoint-url", server], server, cwd=tmp_path)
    # THEN the object is there with its checksum, and the output says where
    assert first.returncode == 0, first.stderr
    head = client.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert f"s3://{bucket}/{KEY}" in first.stdout
    assert head["VersionId"] in first.stdout
    assert head["ContentLength"] == zip_path.stat().st_size
    # AND running it again changes nothing
    second = _run([*args, "--endpoint-url", server], server, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "unchanged" in second.stdout and "sent 0 bytes" in second.stdout
    assert len(client.list_object_versions(Bucket=bucket, Prefix=KEY)["Versions"]) == 1


def test_seed_script_user_errors_are_one_line(server, s3, tmp_path):
    _client, bucket = s3
    _package(tmp_path / "lambda_deployment.zip", 1024)
    result = _run(
        [
            str(SCRIPT),
            "lambda_deployment.zip",
            bucket,
            "wrong/place.zip",
            "us-east-1",
            "--endpoint-url",
            server,
        ],
        server,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "not under lambda/" in result.stderr
    usage = _run([str(SCRIPT)], server, cwd=tmp_path)
    assert usage.returncode == 2 and "usage:" in usage.stderr


def test_multipart_over_http_with_composite_checksum(server, s3, tmp_path):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 12 * 1024 * 1024)
    cli = [
        sys.executable,
        "-m",
        "lambda_pkg",
        "upload",
        str(zip_path),
        bucket,
        KEY,
        "--endpoint-url",
        server,
        "--multipart-threshold-mib",
        "5",
        "--part-size-mib",
        "5",
        "--json",
    ]
    env = {**os.environ, **EMULATOR_ENV, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120, check=True)
    data = json.loads(result.stdout)
    assert data["parts"] == 3 and data["bytes_sent"] == zip_path.stat().st_size
    head = client.head_object(Bucket=bucket, Key=KEY, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].split("-")[0] == data["checksum_sha256"].split("-")[0]
    assert data["checksum_sha256"].endswith("-3")
    again = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(again.stdout)["skipped"] is True


def test_status_and_rollback_over_http(server, s3, tmp_path, monkeypatch):
    client, bucket = s3
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    from ops.cli import main

    iam = boto3.client("iam", endpoint_url=server)
    role = iam.create_role(
        RoleName=f"role-{os.urandom(3).hex()}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = boto3.client("lambda", endpoint_url=server)
    function = f"{FUNCTION}-{os.urandom(3).hex()}"
    for n in (1, 2):
        zip_path = _package(tmp_path / f"v{n}.zip", 1024)
        assert main(["upload", str(zip_path), bucket, KEY, "--endpoint-url", server]) == 0
        code = {"S3Bucket": bucket, "S3Key": KEY}
        if n == 1:
            lam.create_function(
                FunctionName=function,
                Runtime="python3.12",
                Role=role,
                Handler="aws.market_data_fetcher.handler",
                Code=code,
            )
        else:
            lam.update_function_code(FunctionName=function, **code)
        lam.publish_version(FunctionName=function)
    lam.create_alias(FunctionName=function, Name="live", FunctionVersion="2")
    common = ["--function", function, "--endpoint-url", server]
    assert main(["status", *common, "--bucket", bucket, "--key", KEY]) == 0
    assert main(["rollback", *common]) == 0
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "1"
    versions = client.list_object_versions(Bucket=bucket, Prefix=KEY)["Versions"]
    (oldest,) = [v["VersionId"] for v in versions if not v["IsLatest"]]
    from ops import rollback as operate
    from ops.session import Aws, AwsSettings

    aws = Aws(AwsSettings("us-east-1", server))
    st = operate.status(aws.client("lambda"), function, s3=aws.client("s3"), bucket=bucket, key=KEY)
    assert st.version == "1" and st.s3_version_id == oldest and st.s3_is_latest is False


def test_seed_script_bucket_and_endpoint_errors_are_one_line(server, tmp_path):
    _package(tmp_path / "lambda_deployment.zip", 1024)
    base = [str(SCRIPT), "lambda_deployment.zip"]
    # a bucket that does not exist
    missing = _run(
        [*base, "no-such-bucket-e2e", KEY, "us-east-1", "--endpoint-url", server],
        server,
        cwd=tmp_path,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "'no-such-bucket-e2e' does not exist (NoSuchBucket)" in missing.stderr
    # an endpoint where nothing listens (the emulator is not running)
    down = "http://127.0.0.1:9"
    unreachable = _run(
        [*base, "some-bucket", KEY, "us-east-1", "--endpoint-url", down, "--max-attempts", "2"],
        server,
        cwd=tmp_path,
    )
    assert unreachable.returncode == 2
    assert unreachable.stderr.count("\n") == 1, unreachable.stderr
    assert f"cannot reach {down}/some-bucket" in unreachable.stderr
    # a missing file
    nofile = _run([str(SCRIPT), "nope.zip", "b-bucket", KEY, "us-east-1"], server, cwd=tmp_path)
    assert nofile.returncode == 2
    assert nofile.stderr.count("\n") == 1 and "nope.zip: no such file" in nofile.stderr


@pytest.mark.parametrize("versioning", [None, "Suspended"])
def test_multipart_to_an_unversioned_bucket_over_http(server, tmp_path, versioning):
    # GIVEN a bucket without versioning: moto_server (like S3 with versioning
    # suspended) answers CompleteMultipartUpload with the version id "null"
    client = boto3.client("s3", endpoint_url=server, region_name="us-east-1")
    bucket = f"plain-{os.urandom(3).hex()}"
    client.create_bucket(Bucket=bucket)
    if versioning:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
    zip_path = _package(tmp_path / "lambda_deployment.zip", 11 * 1024 * 1024)
    args = [str(SCRIPT), "lambda_deployment.zip", bucket, KEY, "us-east-1", "--endpoint-url",
            server, "--multipart-threshold-mib", "5", "--part-size-mib", "5"]  # fmt: skip
    # WHEN it is uploaded
    first = _run(args, server, cwd=tmp_path)
    # THEN it is verified, warns that nothing can be pinned, and prints runnable steps
    assert first.returncode == 0, first.stderr
    assert "verified    ChecksumSHA256" in first.stdout and "-3 matches" in first.stdout
    assert "versioning is off" in first.stdout and "versioning off" in first.stderr
    assert f"--region us-east-1 --endpoint-url {server}" in first.stdout
    head = client.head_object(Bucket=bucket, Key=KEY)
    assert head["ContentLength"] == zip_path.stat().st_size
    # AND an identical re-upload sends nothing
    second = _run(args, server, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "unchanged" in second.stdout
    # AND status finds the (unversioned) object that holds a function's code
    from lambda_pkg.artifact import hex_to_b64, sha256_file
    from ops import rollback as operate
    from ops.session import Aws, AwsSettings

    s3 = Aws(AwsSettings("us-east-1", server)).client("s3")
    found = operate.find_s3_version(s3, bucket, KEY, hex_to_b64(sha256_file(zip_path)))
    assert found == ("null", True)
