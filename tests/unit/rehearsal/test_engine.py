"""The engine's dispatch: unsupported types fail loudly, components and providers
pass through, failures are kept whole, secrets never kept."""

from __future__ import annotations

import threading
import time

import pytest
from pulumi.runtime import MockCallArgs, MockResourceArgs

from infra.rehearsal.engine import EmulatorMocks
from infra.rehearsal.errors import RehearsalError, ResourceFailed, UnsupportedTypeError
from infra.rehearsal.handlers import INVOKES, RESOURCES

# Rehearsable variants of the program: the shipped stacks, and the keys that add or
# remove resources or invokes. (deploymentsEnabled adds Pulumi Cloud resources, and
# ciRoleEnabled without githubOidcProviderArn an IAM OIDC provider: those are not
# rehearsed, so without a handler the rehearsal fails at deploy, naming the type.)
VARIANTS: list[tuple[str, dict, dict]] = [
    ("dev", {}, {}),
    ("prod", {}, {}),
    ("dev", {"bucketOwner": True}, {}),
    ("dev", {"bucketOwner": False}, {}),
    ("dev", {"dependencyLayer": True}, {}),
    # A KMS key id is a UUID (or mrk- and 32 hex digits); the config refuses anything else.
    (
        "dev",
        {
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/"
            + "0" * 8
            + "-0000" * 3
            + "-"
            + "0" * 12
        },
        {},
    ),
    ("dev", {"alarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms"}, {}),
    ("dev", {"schedule": ""}, {}),
    (
        "dev",
        {
            "ciRoleEnabled": True,
            "githubRepository": "acme/cloud-trading-bot",
            "githubOidcProviderArn": (
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
            ),
        },
        {},
    ),
    # A key in the config (the rehearsal's placeholder stands in for it) adds its version.
    ("dev", {}, {"marketDataApiKey": "not-a-key"}),
    # The strategy service's other networks (private-nat is the shipped stacks').
    ("dev", {"serviceNetwork": "private-endpoints"}, {}),
    ("dev", {"serviceNetwork": "public-ip"}, {}),
    ("dev", {"serviceNetwork": "subnets", "serviceSubnetIds": ["subnet-0123abcd"]}, {}),
    ("dev", {"tradingMode": "alpaca-paper"}, {}),
    ("dev", {"strategyEnabled": False}, {}),
]


@pytest.fixture(scope="module")
def program_uses(tmp_path_factory) -> tuple[set[str], set[str]]:
    """The resource types and invokes the real __main__.py declares across VARIANTS
    (run under the infra tests' recording mocks)."""
    from tests.infra.harness import make_artifact, run_program

    types: set[str] = set()
    invokes: set[str] = set()
    for i, (stack, overrides, secrets) in enumerate(VARIANTS):
        layer = bool(overrides.get("dependencyLayer"))
        artifact = make_artifact(tmp_path_factory.mktemp(f"pkg{i}"), layer=layer)
        run = run_program(stack, artifact.manifest_path, overrides=overrides, secrets=secrets)
        types |= {r.type for r in run.resources}
        invokes |= {token for token, _ in run.calls}
    return types, invokes


def test_every_type_the_program_uses_has_a_handler(engine, program_uses):
    # GIVEN what the program declares
    types, invokes = program_uses
    custom = {t for t in types if not t.startswith(("cloud-trading-bot:", "pulumi:"))}
    assert "aws:lambda/layerVersion:LayerVersion" in custom  # the variants took effect
    assert "aws:s3/getBucket:getBucket" in invokes
    assert "aws:ec2/getSubnet:getSubnet" in invokes
    assert "aws:ec2/vpcEndpoint:VpcEndpoint" in custom
    # THEN each type and invoke has a handler
    assert sorted(custom - set(RESOURCES)) == []
    assert sorted(invokes - set(INVOKES)) == []


def test_every_handler_serves_the_program(program_uses):
    # A handler the program can never reach is dead code: remove it with its test.
    types, invokes = program_uses
    assert sorted(set(RESOURCES) - types) == []
    assert sorted(set(INVOKES) - invokes) == []


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


def test_settle_waits_for_the_resource_in_flight_and_starts_no_other(aws):
    # GIVEN an engine creating a slow resource on Pulumi's thread pool (a thread here)
    started, finished = threading.Event(), threading.Event()

    def slow(_aws, name, _inputs):
        started.set()
        time.sleep(0.3)
        finished.set()
        return f"{name}-id", {}

    class Slow(EmulatorMocks):
        def handler_for(self, token, name, inputs):
            return slow

    engine = Slow(aws)
    args = MockResourceArgs(typ="aws:s3/bucket:Bucket", name="b", inputs={}, custom=True)
    worker = threading.Thread(target=engine.new_resource, args=(args,))
    worker.start()
    assert started.wait(5)
    # WHEN the deploy step leaves (an interrupt) while it is in flight
    engine.settle()
    # THEN the resource was finished first, and whole
    assert finished.is_set()
    worker.join(5)
    assert [r.name for r in engine.created] == ["b"]
    # AND a registration queued behind it never starts
    with pytest.raises(RehearsalError, match="the deploy step has stopped"):
        engine.new_resource(MockResourceArgs(typ="aws:s3/bucket:Bucket", name="c", inputs={},
                                             custom=True))  # fmt: skip
    assert [r.name for r in engine.created] == ["b"]
