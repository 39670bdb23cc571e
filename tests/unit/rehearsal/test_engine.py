"""The engine's dispatch: unsupported types fail loudly, components and providers
pass through, failures are kept whole, secrets never kept."""

from __future__ import annotations

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.rehearsal.engine import CREATE, INVOKES
from infra.rehearsal.errors import ResourceFailed, UnsupportedTypeError

# The resource types and invokes the Pulumi program uses (docs/infra.md) plus the
# ones the issue lists; each must have a handler.
REQUIRED_TYPES = [
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketObjectv2:BucketObjectv2",
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:dynamodb/table:Table",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:lambda/function:Function",
    "aws:lambda/alias:Alias",
    "aws:lambda/permission:Permission",
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
    "aws:lambda/layerVersion:LayerVersion",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
]
REQUIRED_INVOKES = [
    "aws:index/getCallerIdentity:getCallerIdentity",
    "aws:index/getRegion:getRegion",
    "aws:index/getPartition:getPartition",
    "aws:s3/getBucket:getBucket",
]


def test_every_type_the_program_uses_has_a_handler(engine):
    # GIVEN the engine (constructing it registers the handlers)
    # THEN each required type and invoke has one
    assert [t for t in REQUIRED_TYPES if t not in CREATE] == []
    assert [t for t in REQUIRED_INVOKES if t not in INVOKES] == []


def test_unsupported_resource_type_is_an_error_naming_it(engine):
    # WHEN the program declares a type the engine does not know
    args = MockResourceArgs(typ="aws:sqs/queue:Queue", name="q", inputs={}, custom=True)
    with pytest.raises(UnsupportedTypeError) as err:
        engine.new_resource(args)
    # THEN the error names the type and the resource, and is kept as the run's failure
    assert "aws:sqs/queue:Queue" in str(err.value)
    assert "'q'" in str(err.value)
    assert engine.failure is err.value
    assert engine.created == []


def test_unsupported_invoke_is_an_error_naming_it(engine):
    args = MockCallArgs(token="aws:ec2/getAmi:getAmi", args={}, provider="")
    with pytest.raises(UnsupportedTypeError, match="aws:ec2/getAmi:getAmi"):
        engine.call(args)


def test_unsupported_read_is_an_error(engine):
    # A `Resource.get(...)` of a type without a reader must not pass silently either.
    args = MockResourceArgs(
        typ="aws:iam/role:Role", name="r", inputs={}, resource_id="existing", custom=None
    )
    with pytest.raises(UnsupportedTypeError, match="read of resource"):
        engine.new_resource(args)


def test_components_and_providers_pass_through(engine):
    comp = MockResourceArgs(
        typ="cloud-trading-bot:x:Thing", name="c", inputs={"a": 1}, custom=False
    )
    prov = MockResourceArgs(
        typ="pulumi:providers:aws", name="p", inputs={"region": "x"}, custom=True
    )
    assert engine.new_resource(comp) == ("", {"a": 1})
    assert engine.new_resource(prov) == ("p-provider", {"region": "x"})
    assert engine.created == []


def test_a_failing_call_names_type_resource_and_reason(deploy, engine):
    # GIVEN a bucket object whose bucket does not exist
    with pytest.raises(ResourceFailed) as err:
        deploy("aws:s3/bucketObjectv2:BucketObjectv2", "pkg", bucket="no-such-bucket", key="k")
    # THEN the message says which resource failed and why (the AWS error code)
    msg = str(err.value)
    assert msg.startswith("aws:s3/bucketObjectv2:BucketObjectv2 'pkg':")
    assert "NoSuchBucket" in msg
    assert engine.failure is err.value


def test_secret_inputs_are_redacted_in_the_record(deploy, engine, aws):
    # GIVEN a secret version whose value arrives wrapped as a Pulumi secret
    _, secret = deploy("aws:secretsmanager/secret:Secret", "s", name="app/key")
    wrapped = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": "hunter2",
    }
    _, out = deploy(
        "aws:secretsmanager/secretVersion:SecretVersion", "v", secretId=secret["arn"],
        secretString=wrapped,
    )  # fmt: skip
    # THEN the emulator holds the unwrapped value
    got = aws.client("secretsmanager").get_secret_value(SecretId=secret["arn"])
    assert got["SecretString"] == "hunter2"
    # AND the engine's record (what the summary may print) does not
    record = engine.created[-1]
    assert record.inputs["secretString"] == "[secret]"
    assert "hunter2" not in repr(record.inputs) + repr(out.get("versionId"))
