"""The rehearsal of the dev stack, end to end: the real __main__.py deployed to
moto_server through the engine, the handler invoked from the downloaded package,
and assertions on what landed in the emulator.

The package is a code-only artifact built here from backend/ and aws/ (no
dependencies, so no network), as docs/CONTRACTS.md §2 allows; with it the stack
uses the fixture market-data provider.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from infra.rehearsal.run import rehearse
from lambda_pkg.artifact import Artifact
from localcloud.emulator import EMULATOR_ENV
from tests.unit.rehearsal.helpers import code_only_artifact

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
FUNCTION = "market_data_fetcher-dev"
KEY = "lambda/dev/lambda_deployment.zip"
TABLE = "cloud-trading-bot-dev-market-data"
STEPS = [
    "config", "package", "emulator", "deploy", "verify", "unpack",
    "invoke test", "invoke run", "inspect", "policy",
]  # fmt: skip


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Artifact:
    return code_only_artifact(tmp_path_factory.mktemp("code-only"))


@pytest.fixture(scope="module")
def rehearsal(artifact):
    """One rehearsal of the dev stack; `landed` is what the emulator held at the end."""
    landed: dict = {}

    def inspect(url: str, result) -> None:
        # Explicit dummy credentials: this module-scoped fixture runs before the
        # autouse fixture that sets them for each test.
        kw = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        }
        s3, lam = boto3.client("s3", **kw), boto3.client("lambda", **kw)
        events, cw = boto3.client("events", **kw), boto3.client("cloudwatch", **kw)
        ddb, sm = boto3.client("dynamodb", **kw), boto3.client("secretsmanager", **kw)
        landed["url"] = url
        landed["versioning"] = s3.get_bucket_versioning(Bucket=BUCKET)
        landed["public_access"] = s3.get_public_access_block(Bucket=BUCKET)[
            "PublicAccessBlockConfiguration"
        ]
        landed["encryption"] = s3.get_bucket_encryption(Bucket=BUCKET)[
            "ServerSideEncryptionConfiguration"
        ]["Rules"]
        landed["ownership"] = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"][
            "Rules"
        ]
        landed["lifecycle"] = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
        landed["versions"] = s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"]
        landed["head"] = s3.head_object(Bucket=BUCKET, Key=KEY)
        landed["function"] = lam.get_function_configuration(FunctionName=FUNCTION)
        landed["alias"] = lam.get_alias(FunctionName=FUNCTION, Name="live")
        landed["live"] = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="live")
        landed["rule"] = events.describe_rule(Name="market_data_fetcher-dev-schedule")
        landed["targets"] = events.list_targets_by_rule(Rule="market_data_fetcher-dev-schedule")[
            "Targets"
        ]
        landed["alarms"] = cw.describe_alarms(AlarmNamePrefix=FUNCTION)["MetricAlarms"]
        landed["data"] = s3.list_objects_v2(Bucket=BUCKET, Prefix="data/")["Contents"]
        landed["logs"] = s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/")["Contents"]
        first_log = landed["logs"][0]["Key"]
        landed["run_record"] = json.loads(
            s3.get_object(Bucket=BUCKET, Key=first_log)["Body"].read()
        )
        landed["items"] = ddb.scan(TableName=TABLE)["Items"]
        landed["secret"] = sm.describe_secret(SecretId="cloud-trading-bot/dev/market-data-api-key")

    os.environ["CTB_ARTIFACT_MANIFEST"] = str(artifact.manifest_path)
    try:
        result = rehearse(ROOT, "dev", overrides={"marketDataProvider": "fixture"}, inspect=inspect)
    finally:
        del os.environ["CTB_ARTIFACT_MANIFEST"]
    return result, landed


def test_every_step_passes(rehearsal):
    result, _ = rehearsal
    assert result.error is None
    assert [s.name for s in result.steps] == STEPS
    assert all(s.ok for s in result.steps)
    assert result.ok


def test_the_owner_settings_are_on_the_bucket(rehearsal):
    _, landed = rehearsal
    assert landed["versioning"]["Status"] == "Enabled"
    assert set(landed["public_access"].values()) == {True}
    assert len(landed["public_access"]) == 4
    default = landed["encryption"][0]["ApplyServerSideEncryptionByDefault"]
    assert default["SSEAlgorithm"] == "AES256"
    assert landed["ownership"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    filters = {r["Filter"].get("Prefix") for r in landed["lifecycle"]}
    assert {"lambda/", "logs/", "data/"} <= filters


def test_the_tls_only_policy_is_applied_last(rehearsal):
    result, _ = rehearsal
    policy = json.loads(result.bucket_policy)
    conditions = [s["Condition"] for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions


def test_the_package_is_one_pinned_object_version_with_its_sha(rehearsal, artifact):
    result, landed = rehearsal
    assert len(landed["versions"]) == 1
    assert landed["versions"][0]["VersionId"] == result.deployed.version_id
    assert landed["head"]["Metadata"]["sha256"] == artifact.sha256
    assert result.package.sha256 == artifact.sha256


def test_the_function_runs_the_package_with_its_contract(rehearsal, artifact):
    _, landed = rehearsal
    fn = landed["function"]
    assert fn["CodeSha256"] == artifact.sha256_b64
    assert fn["Runtime"] == "python3.12"
    assert fn["Handler"] == "aws.market_data_fetcher.handler"
    assert fn["TracingConfig"]["Mode"] == "Active"
    env = fn["Environment"]["Variables"]
    assert env["ENVIRONMENT"] == "dev"
    assert env["BUCKET_NAME"] == BUCKET
    assert (env["DATA_PREFIX"], env["LOGS_PREFIX"]) == ("data/dev/", "logs/dev/")
    assert env["TABLE_NAME"] == TABLE
    assert env["API_KEY_SECRET_ARN"] == landed["secret"]["ARN"]
    # The live alias points at a published version with the same code.
    assert landed["alias"]["FunctionVersion"] == "1"
    assert landed["live"]["CodeSha256"] == artifact.sha256_b64


def test_the_schedule_targets_the_alias_and_alarms_exist(rehearsal):
    _, landed = rehearsal
    assert landed["rule"]["ScheduleExpression"] == "cron(0 22 ? * MON-FRI *)"
    assert [t["Arn"] for t in landed["targets"]] == [landed["alias"]["AliasArn"]]
    assert sorted(a["MetricName"] for a in landed["alarms"]) == ["Errors", "Throttles"]


def test_both_invocations_ran_from_the_package(rehearsal):
    result, _ = rehearsal
    test, run = result.invocations
    assert test.event == {"test": True} and test.ok and test.result["ok"] is True
    assert run.event == {} and run.ok
    assert run.result["counts"] == {"requested": 3, "succeeded": 3, "failed": 0}


def test_the_handler_ran_on_the_functions_runtime_when_installed(rehearsal):
    from lambda_pkg.interpreters import find_interpreter as find_for_version
    from tests.unit.rehearsal.helpers import python_version_of

    result, _ = rehearsal
    interpreters = {inv.interpreter for inv in result.invocations}
    if find_for_version("3.12") is None:
        # Then it ran on this interpreter, and the summary says so.
        assert any("no python3.12 interpreter found" in n for n in result.notes)
        return
    assert [python_version_of(p) for p in interpreters] == [(3, 12)]
    assert not any("interpreter" in n for n in result.notes)


def test_the_data_logs_and_items_landed(rehearsal):
    result, landed = rehearsal
    data_keys = [o["Key"] for o in landed["data"]]
    for symbol in ("SPY", "QQQ", "AAPL"):
        assert any(k.startswith(f"data/dev/market/symbol={symbol}/interval=1d/") for k in data_keys)
    assert len(landed["logs"]) == 1
    assert landed["logs"][0]["Key"].startswith("logs/dev/market_data_fetcher/date=")
    assert landed["run_record"]["symbols"] == ["SPY", "QQQ", "AAPL"]
    pks = {item["pk"]["S"] for item in landed["items"]}
    assert {"BAR#SPY#1d", "BAR#QQQ#1d", "BAR#AAPL#1d"} <= pks
    # The summary reports the same objects and items.
    assert len(result.objects["data"]) == len(landed["data"])
    assert len(result.items) == len(landed["items"])


def test_the_emulator_is_stopped_afterwards(rehearsal):
    _, landed = rehearsal
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(landed["url"] + "/moto-api/", timeout=2)  # noqa: S310


def test_the_placeholder_secret_never_reaches_the_summary(rehearsal):
    from infra.rehearsal.run import PLACEHOLDER_API_KEY
    from infra.rehearsal.summary import render

    result, _ = rehearsal
    assert PLACEHOLDER_API_KEY not in json.dumps(result.to_json(), default=str)
    assert PLACEHOLDER_API_KEY not in render(result)


def _cli(*args: str, manifest: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CTB_ARTIFACT_MANIFEST"}
    if manifest:
        env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    return subprocess.run(
        [sys.executable, "-m", "infra.rehearsal", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_cli_unknown_stack_is_a_user_error():
    proc = _cli("--stack", "staging")
    assert proc.returncode == 2
    assert "no stack 'staging'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_non_owner_stack_adopts_the_shared_bucket(artifact, monkeypatch):
    # GIVEN the dev stack as a tenant of the bucket (its shipped setting), asked for explicitly
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(artifact.manifest_path))
    overrides = {"marketDataProvider": "fixture", "bucketOwner": "false"}
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides=overrides)
    # THEN it passes, found the bucket through the getBucket invoke and created none
    assert result.ok, result.error
    tokens = [r.token for r in result.resources]
    assert "aws:s3/bucket:Bucket" not in tokens
    assert "aws:s3/bucketPolicy:BucketPolicy" not in tokens
    assert result.invokes == ["aws:s3/getBucket:getBucket"]
    assert result.bucket_policy is None
    assert result.deployed.bucket == BUCKET
    assert result.objects["data"]


def test_a_bad_config_value_fails_the_config_step_as_a_user_error(artifact, monkeypatch):
    # Validated as the program validates it, before any build or emulator.
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(artifact.manifest_path))
    result = rehearse(ROOT, "dev", overrides={"memorySize": 5})
    assert (result.ok, result.failed_step, result.user_error) == (False, "config", True)
    assert "cloud-trading-bot:memorySize" in result.error
    assert result.resources == []


def test_a_failed_deploy_stops_the_emulator_it_started(artifact, monkeypatch, tmp_path):
    # GIVEN a program that fails part-way (a resource the engine has no handler for)
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    with (tmp_path / "__main__.py").open("a") as fh:
        fh.write('\nimport pulumi_aws as _aws\n_aws.sqs.Queue("new-queue")\n')
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(artifact.manifest_path))
    urls: list[str] = []
    # WHEN it is rehearsed
    result = rehearse(
        tmp_path,
        "dev",
        overrides={"marketDataProvider": "fixture"},
        progress=lambda msg: urls.extend(msg.split()[-1:] if "127.0.0.1" in msg else []),
    )
    # THEN the deploy step failed, and the emulator it started is stopped again
    assert (result.failed_step, result.user_error) == ("deploy", False)
    (url,) = urls
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url + "/moto-api/", timeout=2)  # noqa: S310


def test_a_resource_type_without_a_handler_fails_the_rehearsal_naming_it(artifact, tmp_path):
    # GIVEN the real program plus a resource the engine has no handler for
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    with (tmp_path / "__main__.py").open("a") as fh:
        fh.write('\nimport pulumi_aws as _aws\n_aws.sqs.Queue("new-queue")\n')
    # WHEN it is rehearsed
    proc = _cli(
        "--project-dir", str(tmp_path), "--config", "marketDataProvider=fixture",
        manifest=artifact.manifest_path,
    )  # fmt: skip
    # THEN the deploy step fails (exit 1), naming the type and the resource
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert (
        "error: rehearsal step 'deploy' failed: unsupported resource type "
        "aws:sqs/queue:Queue ('new-queue')" in proc.stderr
    )
    assert "FAILED at step 'deploy'" in proc.stdout
    assert "Traceback" not in proc.stderr
