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
import re
import shutil
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
from tests.infra.harness import make_image_layout
from tests.unit.rehearsal.helpers import code_only_artifact

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
FUNCTION = "market_data_fetcher-dev"
KEY = "lambda/dev/lambda_deployment.zip"
TABLE = "cloud-trading-bot-dev-market-data"
STEPS = [
    "config", "package", "emulator", "image", "deploy", "verify", "unpack",
    "invoke test", "invoke run", "inspect", "task", "replay", "trades", "policy",
]  # fmt: skip


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Artifact:
    return code_only_artifact(tmp_path_factory.mktemp("code-only"))


@pytest.fixture
def tiny_image(tmp_path, monkeypatch) -> Path:
    """A tiny prebuilt image layout (CTB_IMAGE_LAYOUT), for rehearsals of a project copy
    that fail before the service runs: no image is built from the copy."""
    layout = tmp_path / "image-layout"
    make_image_layout(layout)
    monkeypatch.setenv("CTB_IMAGE_LAYOUT", str(layout))
    return layout


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
        first_log = next(o["Key"] for o in landed["logs"] if "/market_data_fetcher/" in o["Key"])
        landed["run_record"] = json.loads(
            s3.get_object(Bucket=BUCKET, Key=first_log)["Body"].read()
        )
        landed["items"] = ddb.scan(TableName=TABLE)["Items"]
        landed["secret"] = sm.describe_secret(SecretId="cloud-trading-bot/dev/market-data-api-key")
        ecs = boto3.client("ecs", **kw)
        landed["ecs_service"] = ecs.describe_services(
            cluster="cloud-trading-bot-dev", services=["strategy-dev"]
        )["services"]
        landed["ledger_items"] = ddb.scan(TableName="cloud-trading-bot-dev-ledger")["Items"]

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
    fetcher = [o for o in landed["logs"] if "/market_data_fetcher/" in o["Key"]]
    assert len(fetcher) == 1 and fetcher[0]["Key"].startswith("logs/dev/market_data_fetcher/date=")
    # The rest are the service's decision records, one object per traded session.
    decisions = [o["Key"] for o in landed["logs"] if o not in fetcher]
    assert decisions and all(
        k.startswith("logs/dev/strategy/date=") and k.endswith("/decisions.jsonl")
        for k in decisions
    )
    assert landed["run_record"]["symbols"] == ["SPY", "QQQ", "AAPL"]
    pks = {item["pk"]["S"] for item in landed["items"]}
    assert {"BAR#SPY#1d", "BAR#QQQ#1d", "BAR#AAPL#1d"} <= pks
    # The summary reports the same objects and items.
    assert len(result.objects["data"]) == len(landed["data"])
    assert len(result.items) == len(landed["items"])


def test_the_warm_up_names_every_service_the_program_deployed_to(rehearsal):
    from infra.rehearsal.warmup import SERVICES

    # GIVEN what the program deployed
    result, _ = rehearsal
    aws_modules = {
        r.token.split(":")[1].split("/")[0] for r in result.resources if r.token.startswith("aws:")
    }
    # THEN the warm-up paid each one's fixed costs before the deploy step (a service it
    # misses would cost the deploy step its imports and moto's backend load again)
    assert aws_modules <= {module.rstrip("_") for _, _, module in SERVICES}
    assert {"s3", "lambda", "ec2", "ecs"} <= aws_modules


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


def test_the_service_traded_from_the_image_it_deployed(rehearsal):
    # GIVEN the rehearsal of dev, whose service is on
    result, landed = rehearsal
    doc = result.to_json()
    image, trades = doc["image"], doc["strategy"]
    # THEN the image was built on the local base and the task definition names its digest
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
    assert image["source"] == "built on local"
    assert image["image_uri"].endswith("/cloud-trading-bot/dev/strategy@" + image["digest"])
    assert image["in_repository"] is True
    # AND the blobs were not pushed (no registry in moto), which the notes say
    assert image["pushed"] is False
    assert any("blobs not pushed" in note for note in result.notes)
    # AND the service ran from the image's own layers, on the runtime's Python when found
    assert [layer["role"] for layer in image["layers"]] == ["dependencies", "code"]
    assert landed["ecs_service"][0]["taskDefinition"] == image["task_definition"]
    # AND it traded the fixture's bars: orders, positions and equity, from its ledger
    assert trades["orders"] > 0 and trades["fills"] > 0
    assert isinstance(trades["positions"], list)
    assert isinstance(trades["equity"], float) and trades["equity"] > 0
    assert trades["halted"] is False
    assert landed["ledger_items"]
    replay = next(s for s in result.steps if s.name == "replay")
    assert replay.detail.startswith("90 decisions")  # 30 bars x 3 symbols


def test_an_alpaca_mode_deploys_the_service_but_never_runs_it(artifact, monkeypatch):
    # GIVEN a stack that trades through Alpaca's API, which the rehearsal must never reach
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(artifact.manifest_path))
    overrides = {"marketDataProvider": "fixture", "tradingMode": "alpaca-paper"}
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides=overrides)
    # THEN the service and its broker secret were deployed and checked, but not run
    assert result.ok, result.error
    assert [s.name for s in result.steps][-2:] == ["task", "policy"]
    assert "aws:secretsmanager/secret:Secret" in [r.token for r in result.resources]
    assert result.strategy is None and result.image["in_repository"] is True
    assert any("tradingMode alpaca-paper" in note for note in result.notes)


def test_the_image_digest_is_the_same_from_another_checkout(rehearsal, tmp_path):
    # GIVEN the image's inputs in another checkout, somewhere else, with files touched
    from infra.artifact import get_image
    from infra.config import parse_values
    from infra.rehearsal import taskrun
    from infra.rehearsal.program import load_stack_config

    result, _ = rehearsal
    other = tmp_path / "some" / "other" / "checkout"
    other.mkdir(parents=True)
    for top in ("backend", "aws", "locks"):
        shutil.copytree(ROOT / top, other / top, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [*ROOT.glob("*.py"), *ROOT.glob("requirements*.txt")]:
        shutil.copy(path, other / path.name)
    for path in other.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    # The build cache is shared (a cold dependency layer takes minutes); that the layers
    # themselves are the same bytes from any path is tests/unit/image/test_build.py's.
    (other / ".build").symlink_to(ROOT / ".build")
    # WHEN the program's getter builds it there, as the rehearsal's image step does
    cfg = parse_values(load_stack_config(ROOT, "dev"))
    with taskrun.environment(taskrun.image_env()):
        image = get_image(cfg, project_dir=other)
    # THEN the digest is the one the rehearsal reported from this checkout
    assert image is not None
    assert image.digest == result.image["digest"]


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
    # (the Lambda half alone: adoption is the bucket's concern, and the service's steps
    # are rehearsed by `journey`)
    overrides = {
        "marketDataProvider": "fixture",
        "bucketOwner": "false",
        "strategyEnabled": "false",
    }
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides=overrides)
    # THEN it passes, found the bucket through the getBucket invoke and created none
    assert result.ok, result.error
    tokens = [r.token for r in result.resources]
    assert "aws:s3/bucket:Bucket" not in tokens
    assert "aws:s3/bucketPolicy:BucketPolicy" not in tokens
    assert "aws:s3/getBucket:getBucket" in result.invokes
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


def test_a_failed_deploy_stops_the_emulator_it_started(artifact, monkeypatch, tmp_path, tiny_image):
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
        # the Lambda half alone: the failure, not the service, is what is rehearsed
        overrides={"marketDataProvider": "fixture", "strategyEnabled": "false"},
        progress=lambda msg: urls.extend(msg.split()[-1:] if "127.0.0.1" in msg else []),
    )
    # THEN the deploy step failed, and the emulator it started is stopped again
    assert (result.failed_step, result.user_error) == ("deploy", False)
    (url,) = urls
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(url + "/moto-api/", timeout=2)  # noqa: S310


def test_a_resource_type_without_a_handler_fails_the_rehearsal_naming_it(
    artifact, tmp_path, tiny_image
):
    # GIVEN the real program plus a resource the engine has no handler for
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    with (tmp_path / "__main__.py").open("a") as fh:
        fh.write('\nimport pulumi_aws as _aws\n_aws.sqs.Queue("new-queue")\n')
    # WHEN it is rehearsed
    proc = _cli(
        "--project-dir", str(tmp_path), "--config", "marketDataProvider=fixture",
        "--config", "strategyEnabled=false",  # the Lambda half alone: fewer to create first
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
