"""Lambda handlers: the function runs the pinned object version (moto would take
the current one), the code hash must agree, and the alias, permission, async
config and layer land."""

from __future__ import annotations

import pytest

from infra.rehearsal.errors import ResourceFailed
from tests.unit.rehearsal.helpers import b64sha, make_zip

FUNCTION = "aws:lambda/function:Function"
KEY = "lambda/dev/lambda_deployment.zip"


def _upload(aws, bucket: str, data: bytes, key: str = KEY) -> str:
    return aws.client("s3").put_object(Bucket=bucket, Key=key, Body=data)["VersionId"]


def _function_inputs(bucket: str, version: str, role_arn: str, code: bytes, **extra) -> dict:
    return {
        "name": "market_data_fetcher-dev",
        "role": role_arn,
        "runtime": "python3.12",
        "handler": "aws.market_data_fetcher.handler",
        "s3Bucket": bucket,
        "s3Key": KEY,
        "s3ObjectVersion": version,
        "sourceCodeHash": b64sha(code),
        "publish": True,
        "memorySize": 512.0,
        "timeout": 300.0,
        "architectures": ["x86_64"],
        "environment": {"variables": {"ENVIRONMENT": "dev", "id": "kept as is"}},
        "tracingConfig": {"mode": "Active"},
        **extra,
    }


def test_function_runs_the_pinned_version_not_the_newest(deploy, aws):
    # GIVEN two versions of the package at the same key, the older one pinned
    bucket = deploy.bucket()
    old = make_zip({"aws/market_data_fetcher.py": "OLD = 1\n"})
    pinned = _upload(aws, bucket, old)
    _upload(aws, bucket, make_zip({"aws/market_data_fetcher.py": "NEW = 1\n"}))
    # WHEN the function is created from the pinned version
    name, out = deploy(FUNCTION, "fn", **_function_inputs(bucket, pinned, deploy.role(), old))
    # THEN its code is the pinned bytes, published as version 1
    conf = aws.client("lambda").get_function_configuration(FunctionName=name)
    assert conf["CodeSha256"] == b64sha(old) == out["codeSha256"]
    assert out["version"] == "1"
    assert out["qualifiedArn"] == out["arn"] + ":1"
    assert conf["Environment"]["Variables"] == {"ENVIRONMENT": "dev", "id": "kept as is"}
    assert conf["MemorySize"] == 512


def test_function_whose_hash_disagrees_with_the_object_is_an_error(deploy, aws):
    bucket = deploy.bucket()
    code = make_zip({"a.py": "x = 1\n"})
    version = _upload(aws, bucket, code)
    inputs = _function_inputs(bucket, version, deploy.role(), code, sourceCodeHash=b64sha(b"other"))
    with pytest.raises(ResourceFailed, match="the program and the uploaded package disagree"):
        deploy(FUNCTION, "fn", **inputs)


def test_function_without_a_pinned_version_is_an_error(deploy, aws):
    bucket = deploy.bucket()
    code = make_zip({"a.py": "x = 1\n"})
    _upload(aws, bucket, code)
    inputs = _function_inputs(bucket, "", deploy.role(), code)
    with pytest.raises(ResourceFailed, match="s3ObjectVersion is not set"):
        deploy(FUNCTION, "fn", **inputs)


def test_reserved_concurrency_is_applied(deploy, aws):
    bucket = deploy.bucket()
    code = make_zip({"a.py": "x = 1\n"})
    version = _upload(aws, bucket, code)
    inputs = _function_inputs(
        bucket, version, deploy.role(), code, reservedConcurrentExecutions=1.0
    )
    name, _ = deploy(FUNCTION, "fn", **inputs)
    conc = aws.client("lambda").get_function_concurrency(FunctionName=name)
    assert conc["ReservedConcurrentExecutions"] == 1


def test_alias_permission_and_async_config(deploy, aws):
    # GIVEN a published function
    bucket = deploy.bucket()
    code = make_zip({"a.py": "x = 1\n"})
    version = _upload(aws, bucket, code)
    name, out = deploy(FUNCTION, "fn", **_function_inputs(bucket, version, deploy.role(), code))
    # WHEN the alias, the schedule's permission and the async config are created
    alias_arn, alias = deploy(
        "aws:lambda/alias:Alias", "alias", name="live", functionName=name,
        functionVersion=out["version"],
    )  # fmt: skip
    deploy(
        "aws:lambda/permission:Permission", "perm", statementId="AllowScheduleInvoke",
        action="lambda:InvokeFunction", function=name, qualifier="live",
        principal="events.amazonaws.com",
        sourceArn="arn:aws:events:us-east-1:123456789012:rule/r",
    )  # fmt: skip
    deploy(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "async",
        functionName=name, qualifier="live", maximumRetryAttempts=1.0,
        maximumEventAgeInSeconds=900.0,
    )  # fmt: skip
    lam = aws.client("lambda")
    # THEN each is there
    assert alias_arn == alias["arn"] == f"{out['arn']}:live"
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
    policy = lam.get_policy(FunctionName=name, Qualifier="live")["Policy"]
    assert "AllowScheduleInvoke" in policy
    assert "events.amazonaws.com" in policy
    conf = lam.get_function_event_invoke_config(FunctionName=name, Qualifier="live")
    assert conf["MaximumRetryAttempts"] == 1
    assert conf["MaximumEventAgeInSeconds"] == 900


def test_layer_version_from_its_pinned_object(deploy, aws):
    bucket = deploy.bucket()
    layer = make_zip({"python/dep.py": "X = 1\n"})
    key = "lambda/dev/layers/dependencies-0123456789abcdef.zip"
    version = _upload(aws, bucket, layer, key)
    arn, out = deploy(
        "aws:lambda/layerVersion:LayerVersion", "layer", layerName="ctb-dev-deps",
        s3Bucket=bucket, s3Key=key, s3ObjectVersion=version, sourceCodeHash=b64sha(layer),
        compatibleRuntimes=["python3.12"], compatibleArchitectures=["x86_64"],
    )  # fmt: skip
    assert out["codeSha256"] == b64sha(layer)
    assert out["version"] == "1"
    assert arn.endswith(":layer:ctb-dev-deps:1")
    versions = aws.client("lambda").list_layer_versions(LayerName="ctb-dev-deps")
    assert len(versions["LayerVersions"]) == 1
