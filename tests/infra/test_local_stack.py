"""Pulumi.local.yaml, the stack for Pulumi CLI users against a local moto_server:
every AWS service the program touches must point at the emulator, the provider
must skip what needs real AWS, and the program must deploy with it into a bucket
seeded by `infra.rehearsal.localbucket` (run here under the rehearsal engine,
against in-process moto)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from infra.rehearsal.clients import EmulatorClients
from infra.rehearsal.engine import EmulatorMocks
from infra.rehearsal.localbucket import create_bucket
from infra.rehearsal.program import load_stack_config, run_program
from tests.unit.rehearsal.helpers import code_only_artifact

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "Pulumi.local.yaml"
LOOPBACK = re.compile(r"^http://(127\.0\.0\.1|localhost):\d+$")

# Which aws:endpoints key serves each resource module (the token's middle part)
# and each invoke: what the provider would call for it.
ENDPOINT_FOR = {
    "s3": "s3",
    "iam": "iam",
    "lambda": "lambda",
    "dynamodb": "dynamodb",
    "secretsmanager": "secretsmanager",
    "kms": "kms",
    "cloudwatch/logGroup": "logs",
    "cloudwatch/eventRule": "events",
    "cloudwatch/eventTarget": "events",
    "cloudwatch/metricAlarm": "cloudwatch",
    "index/getCallerIdentity": "sts",
}


def _endpoint_key(token: str) -> str:
    module = token.split(":")[1]  # e.g. "cloudwatch/logGroup"
    key = ENDPOINT_FOR.get(module) or ENDPOINT_FOR.get(module.split("/")[0])
    assert key, f"no endpoint mapping for {token}: add it to ENDPOINT_FOR and the stack file"
    return key


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(STACK_FILE.read_text())["config"]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The program, run for the local stack under the engine (in-process moto)."""
    manifest = code_only_artifact(tmp_path_factory.mktemp("pkg")).manifest_path
    stack = load_stack_config(ROOT, "local")
    with mock_aws():
        engine = EmulatorMocks(EmulatorClients(endpoint_url=None))
        # What the documented first step does: the bucket, as its owner would make it.
        assert create_bucket(engine.aws, stack.get("bucketName")) is True
        result = run_program(ROOT, stack, engine, env={"CTB_ARTIFACT_MANIFEST": str(manifest)})
        function = next(c for c in engine.created if c.token == "aws:lambda/function:Function")
        env = engine.aws.client("lambda").get_function_configuration(
            FunctionName=function.physical_id
        )["Environment"]["Variables"]
    return engine, result, env


def test_provider_skips_what_needs_real_aws(config):
    for key in (
        "aws:skipCredentialsValidation",
        "aws:skipRequestingAccountId",
        "aws:skipMetadataApiCheck",
        "aws:s3UsePathStyle",
    ):
        assert config[key] is True, key
    # Dummy credentials only: nothing shaped like a real access key id.
    assert config["aws:accessKey"] == "testing"
    assert not re.search(r"A(KI|SI)A[0-9A-Z]{16}", STACK_FILE.read_text())


def test_every_endpoint_is_the_local_emulator(config):
    (endpoints,) = config["aws:endpoints"]
    assert endpoints, "no endpoints"
    # Canonical service names only: an alias beside its service is a provider error.
    assert not {"cloudwatchlogs", "cloudwatchlog", "cloudwatchevents", "eventbridge"} & set(
        endpoints
    )
    bad = {k: v for k, v in endpoints.items() if not LOOPBACK.match(v)}
    assert bad == {}
    # One emulator serves every service.
    assert len(set(endpoints.values())) == 1


def test_every_service_the_program_touches_has_an_endpoint(config, deployed):
    engine, _, _ = deployed
    (endpoints,) = config["aws:endpoints"]
    needed = {_endpoint_key(c.token) for c in engine.created} | {
        _endpoint_key(t) for t in engine.calls
    }
    assert needed - set(endpoints) == set()
    # The services the rehearsal of this stack certainly touches.
    assert {"s3", "lambda", "iam", "dynamodb", "secretsmanager", "logs", "events"} <= needed


def test_the_local_stack_adopts_the_seeded_bucket_and_uses_canned_data(config, deployed):
    engine, result, env = deployed
    # Not the owner: no bucket, and above all no TLS-only policy, which moto would
    # enforce without its condition and so deny the package upload that follows it.
    assert config["cloud-trading-bot:bucketOwner"] is False
    tokens = [c.token for c in engine.created]
    assert not [t for t in tokens if t.startswith("aws:s3/bucket") and "Object" not in t]
    assert "aws:s3/getBucket:getBucket" in engine.calls
    # The package still lands as a pinned version: the seeded bucket is versioned.
    package = next(c for c in engine.created if c.token == "aws:s3/bucketObjectv2:BucketObjectv2")
    assert package.outputs["versionId"]
    assert env["MARKET_DATA_PROVIDER"] == "fixture"
    assert env["ENVIRONMENT"] == "local"
    assert result.outputs["function_name"] == "market_data_fetcher-local"
    assert result.outputs["lambda_s3_key"] == "lambda/local/lambda_deployment.zip"
