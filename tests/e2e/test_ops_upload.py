"""The operator commands over real HTTP against moto_server on 127.0.0.1: the
seed's script, multipart, skip-unchanged, status and rollback; botocore's retries
and s3transfer's aborts through a proxy that really fails; signals sent to a
real upload."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from localcloud.emulator import EMULATOR_ENV, moto_server
from ops.cli import main
from tests.processes import run_process
from tests.unit.ops.faultproxy import Fault, FaultProxy, Rewrite, is_method, is_part

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
        "ops",
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
    # AND the old command name still works, saying where the command lives now
    old = [*cli[:2], "lambda_pkg", *cli[3:]]
    forwarded = subprocess.run(
        old, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert forwarded.returncode == 0, forwarded.stderr
    assert json.loads(forwarded.stdout)["skipped"] is True
    assert forwarded.stderr == (
        "note: 'python -m lambda_pkg upload' is now 'python -m ops upload'; forwarding\n"
    )


def test_status_and_rollback_over_http(server, s3, tmp_path, monkeypatch):
    client, bucket = s3
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)

    def upload(zip_path: Path) -> None:
        assert main(["upload", str(zip_path), bucket, KEY, "--endpoint-url", server]) == 0

    function = _function_with_versions(server, bucket, tmp_path, 2, upload=upload)
    common = ["--function", function, "--endpoint-url", server]
    assert main(["status", *common, "--bucket", bucket, "--key", KEY]) == 0
    assert main(["rollback", *common]) == 0
    lam = boto3.client("lambda", endpoint_url=server)
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "1"
    versions = client.list_object_versions(Bucket=bucket, Prefix=KEY)["Versions"]
    (oldest,) = [v["VersionId"] for v in versions if not v["IsLatest"]]
    from ops.session import AwsSession, AwsSettings
    from ops.status import status

    aws = AwsSession(AwsSettings("us-east-1", server))
    st = status(aws.lambda_(), function, s3=aws.s3(), bucket=bucket, key=KEY)
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
    from ops.session import AwsSession, AwsSettings
    from ops.status import S3Source, find_s3_version

    s3 = AwsSession(AwsSettings("us-east-1", server)).s3()
    found = find_s3_version(s3, bucket, KEY, hex_to_b64(sha256_file(zip_path)))
    assert found == S3Source("null", True)


# --- retries and aborts through a proxy that really fails ----------------------------------

MiB = 1024 * 1024
WRONG = base64.b64encode(b"\0" * 32).decode()
PARTS = ["--multipart-threshold-mib", "5", "--part-size-mib", "5"]


def _no_uploads_left(client, bucket: str) -> bool:
    return "Uploads" not in client.list_multipart_uploads(Bucket=bucket)


def _upload_through(proxy: FaultProxy, zip_path: Path, bucket: str, *extra: str) -> list[str]:
    return ["upload", str(zip_path), bucket, KEY, "--endpoint-url", proxy.url, *PARTS, *extra]


def test_a_failed_part_is_retried_alone(server, s3, tmp_path, capsys):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 12 * MiB)  # 3 parts of 5 MiB
    # GIVEN a store that answers part 2's first attempt with 503 SlowDown
    proxy = FaultProxy(server, faults=[Fault(is_part(2), 503, "SlowDown", times=1)])
    with proxy.running():
        code = main(_upload_through(proxy, zip_path, bucket, "--json"))
    # THEN botocore retried that part alone, and the upload completed and verified
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["parts"] == 3
    assert [proxy.count(is_part(n)) for n in (1, 2, 3)] == [1, 2, 1]
    head = client.head_object(Bucket=bucket, Key=KEY)
    assert head["ContentLength"] == zip_path.stat().st_size


def test_a_part_that_keeps_failing_aborts_after_n_attempts(server, s3, tmp_path, capsys):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 12 * MiB)
    proxy = FaultProxy(server, faults=[Fault(is_part(2), 503, "SlowDown")])
    with proxy.running():
        code = main(_upload_through(proxy, zip_path, bucket, "--max-attempts", "2"))
    err = capsys.readouterr().err
    # THEN at most N attempts, exit 1, one line, and s3transfer aborted the upload
    assert proxy.count(is_part(2)) == 2
    assert code == 1
    assert err == (
        "error: s3:UploadPart failed after 2 attempts (SlowDown, HTTP 503); giving up; "
        f"upload failed: multipart upload aborted; s3://{bucket}/{KEY} is unchanged\n"
    )
    assert _no_uploads_left(client, bucket)
    assert "Versions" not in client.list_object_versions(Bucket=bucket, Prefix=KEY)


def test_a_wrong_part_checksum_aborts_before_completion(server, s3, tmp_path, capsys):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 12 * MiB)
    # GIVEN a store that acknowledges part 1 with another checksum than it was sent
    proxy = FaultProxy(server, rewrites=[Rewrite(is_part(1), "x-amz-checksum-sha256", WRONG)])
    with proxy.running():
        code = main(_upload_through(proxy, zip_path, bucket))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"error: S3 acknowledged part 1 of s3://{bucket}/{KEY} with ")
    assert err.endswith(
        f"upload failed: multipart upload aborted; s3://{bucket}/{KEY} is unchanged\n"
    )
    assert proxy.count(is_method("POST", "uploadId=")) == 0  # never completed
    assert _no_uploads_left(client, bucket)


def test_a_store_that_lies_about_the_put_checksum_is_never_a_success(server, s3, tmp_path, capsys):
    _client, bucket = s3
    zip_path = _package(tmp_path / "lambda_deployment.zip", 1024)
    single_put = is_method("PUT", KEY)
    proxy = FaultProxy(server, rewrites=[Rewrite(single_put, "x-amz-checksum-sha256", WRONG)])
    with proxy.running():
        code = main(["upload", str(zip_path), bucket, KEY, "--endpoint-url", proxy.url])
    captured = capsys.readouterr()
    assert code == 1
    assert "NOT verified" in captured.err and captured.err.count("\n") == 1
    assert "uploaded" not in captured.out


def test_access_denied_mid_multipart_is_one_line_and_aborts(server, s3, tmp_path, capsys):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 12 * MiB)
    proxy = FaultProxy(server, faults=[Fault(is_part(1), 403, "AccessDenied")])
    with proxy.running():
        code = main(_upload_through(proxy, zip_path, bucket))
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(
        f"error: access denied (AccessDenied) on s3:UploadPart s3://{bucket}/{KEY}"
    )
    assert "multipart upload aborted" in err
    assert proxy.count(is_part(1)) == 1  # not retried: the user's to fix
    assert _no_uploads_left(client, bucket)


def _function_with_versions(
    server: str,
    bucket: str,
    tmp_path: Path,
    versions: int,
    upload: Callable[[Path], None] | None = None,
) -> str:
    """A function whose `live` alias points at the newest of `versions` published
    versions, each from its own package at KEY, put there by `upload` (default: boto3)."""
    iam = boto3.client("iam", endpoint_url=server)
    role = iam.create_role(
        RoleName=f"role-{os.urandom(3).hex()}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = boto3.client("lambda", endpoint_url=server)
    function = f"{FUNCTION}-{os.urandom(3).hex()}"
    for n in range(1, versions + 1):
        zip_path = _package(tmp_path / f"v{n}.zip", 1024)
        if upload is None:
            boto3.client("s3", endpoint_url=server).upload_file(str(zip_path), bucket, KEY)
        else:
            upload(zip_path)
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
    lam.create_alias(FunctionName=function, Name="live", FunctionVersion=str(versions))
    return function


def test_paginated_calls_get_retries_too(server, s3, tmp_path, capsys):
    # The hand-written retry wrapper passed get_paginator through unwrapped: a
    # throttled ListVersionsByFunction page failed at once. Now every page retries.
    _client, bucket = s3
    function = _function_with_versions(server, bucket, tmp_path, 2)
    versions = is_method("GET", f"/functions/{function}/versions")
    throttled = Fault(versions, 429, "TooManyRequestsException", times=1, json=True)
    proxy = FaultProxy(server, faults=[throttled])
    with proxy.running():
        code = main(["rollback", "--function", function, "--endpoint-url", proxy.url])
    assert code == 0, capsys.readouterr().err
    assert proxy.count(versions) == 2
    assert "version 2 -> 1" in capsys.readouterr().out


def test_the_undo_line_works_as_printed(server, s3, tmp_path, monkeypatch, capsys):
    _client, bucket = s3
    function = _function_with_versions(server, bucket, tmp_path, 2)
    # GIVEN the endpoint comes from the environment (as `deploy.sh --local --keep`
    # prints it), not from --endpoint-url
    monkeypatch.setenv("AWS_ENDPOINT_URL", server)
    monkeypatch.chdir(ROOT)
    assert main(["rollback", "--function", function]) == 0
    (undo,) = [line for line in capsys.readouterr().out.splitlines() if "undo:" in line]
    command = undo.split("undo: ", 1)[1]
    assert f"--to 2 --region us-east-1 --endpoint-url {server}" in command
    # WHEN it is pasted into a shell that has neither the endpoint nor the region
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    run = run_process(["bash", "-c", command], env=env)
    # THEN it undoes the rollback on the same endpoint
    assert run.returncode == 0, run.stderr
    lam = boto3.client("lambda", endpoint_url=server)
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "2"


# --- signals: a real upload subprocess stopped mid-way --------------------------------------


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
)
def test_a_signal_aborts_the_multipart_upload(server, s3, tmp_path, signum, code):
    client, bucket = s3
    zip_path = _package(tmp_path / "big.zip", 30 * MiB)  # 6 parts, one at a time
    # GIVEN a slow store (each part takes 0.5 s) and an upload under way
    proxy = FaultProxy(server, delay=0.5, delay_when=is_part())
    with proxy.running():
        argv = _upload_through(proxy, zip_path, bucket, "--max-concurrency", "1")
        env = {**os.environ, **EMULATOR_ENV, "PYTHONPATH": str(ROOT)}
        upload = subprocess.Popen(
            [sys.executable, "-m", "ops", *argv], env=env, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while proxy.count(is_part()) < 2 and upload.poll() is None:
            assert time.monotonic() < deadline, "the upload never started its parts"
            time.sleep(0.05)
        # WHEN the signal arrives (CI cancelling a job: SIGTERM; a closed terminal: SIGHUP)
        upload.send_signal(signum)
        _, err = upload.communicate(timeout=60)
    # THEN the exit code is the shell's for that signal, the multipart upload is
    # aborted, nothing is left behind, and one line says so
    assert upload.returncode == code, err
    assert _no_uploads_left(client, bucket)
    assert "Versions" not in client.list_object_versions(Bucket=bucket, Prefix=KEY)
    name = signal.Signals(signum).name
    assert err == (
        f"error: upload interrupted: multipart upload aborted; s3://{bucket}/{KEY} is unchanged "
        f"({name})\n"
    )
    assert proxy.count(is_part()) < 6  # it stopped early
