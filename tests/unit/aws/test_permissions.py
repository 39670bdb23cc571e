"""The runtime needs no permission beyond the execution role's (infra/policies.py), and
uses every one it is given.

Two ways, since moto enforces IAM only in part:
- every API call the runtime makes is recorded and evaluated against
  `execution_role_policy` here (Allow statements, `*` wildcards: all the policy uses);
- S3, where moto enforces key-level resources, also runs under moto's own IAM
  enforcement as a user holding exactly that policy. (moto authorises DynamoDB and
  Secrets Manager calls against the resource `*`, which no scoped statement matches,
  so those two are covered by the evaluation only.)
"""

import contextlib
import dataclasses
import json
import re
from datetime import UTC, datetime

import boto3
import pytest
from moto.core import enable_iam_authentication

from aws.market_data_fetcher import handle
from backend.providers.fixture import FixtureProvider
from infra.names import Names
from infra.policies import DYNAMODB_ACTIONS, execution_role_policy
from tests.runtime_support import Call, RecordingClients

NAMES = Names.for_env("dev")
NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)


def _policy(world):
    table_arn = world.dynamodb.describe_table(TableName=world.table)["Table"]["TableArn"]
    return execution_role_policy(
        bucket_arn=f"arn:aws:s3:::{world.bucket}",
        data_prefix=NAMES.data_prefix,
        logs_prefix=NAMES.logs_prefix,
        table_arn=table_arn,
        secret_arn=world.secret_arn,
        log_group_arn=f"arn:aws:logs:us-east-1:123456789012:log-group:{NAMES.log_group}",
    )


def _glob(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _allowed(policy, action: str, resource: str) -> bool:
    return any(
        statement["Effect"] == "Allow"
        and any(_glob(a, action) for a in _as_list(statement["Action"]))
        and any(_glob(r, resource) for r in _as_list(statement["Resource"]))
        for statement in policy["Statement"]
    )


def _requests(call: Call, table_arn: str) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs one API call needs."""
    p = call.params
    if call.service == "s3":
        return [(f"s3:{call.operation}", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}")]
    if call.service == "dynamodb":
        names = list(p["RequestItems"]) if "RequestItems" in p else [p["TableName"]]
        arns = [table_arn.rsplit("/", 1)[0] + "/" + name for name in names]
        return [(f"dynamodb:{call.operation}", arn) for arn in arns]
    if call.service == "secretsmanager":
        return [(f"secretsmanager:{call.operation}", p["SecretId"])]
    raise AssertionError(f"unexpected service {call.service}: {call.operation}")


def _denied(world, calls):
    policy = _policy(world)
    table_arn = world.dynamodb.describe_table(TableName=world.table)["Table"]["TableArn"]
    pairs = [pair for call in calls for pair in _requests(call, table_arn)]
    return {pair for pair in pairs if not _allowed(policy, *pair)}, {a for a, _ in pairs}


def _invoke(world, event, context):
    return handle(
        event,
        context,
        env=world.env,
        clients=world.clients,
        provider=FixtureProvider(clock=lambda: NOW),
        now=lambda: NOW,
    )


def test_evaluator_denies_what_the_role_lacks(world):
    # The evaluation below is only as good as its ability to say no.
    policy = _policy(world)
    assert _allowed(policy, "s3:PutObject", f"arn:aws:s3:::{world.bucket}/data/dev/x")
    assert not _allowed(policy, "s3:PutObject", f"arn:aws:s3:::{world.bucket}/data/prod/x")
    assert not _allowed(policy, "s3:PutObject", f"arn:aws:s3:::{world.bucket}/lambda/dev/x")
    assert not _allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{world.bucket}")
    assert not _allowed(policy, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:1:table/x")


def test_test_mode_needs_only_the_execution_role(world, context):
    # WHEN the seed's smoke test runs
    report = _invoke(world, {"test": True}, context)
    # THEN it passes, every call it made is one the role allows
    assert report["ok"] is True
    denied, actions = _denied(world, world.clients.calls)
    assert denied == set()
    assert actions == {"s3:PutObject", "dynamodb:DescribeTable", "secretsmanager:GetSecretValue"}
    # AND the probes were conditional puts (nothing written), one per prefix
    probes = [c.params for c in world.clients.calls if c.operation == "PutObject"]
    assert sorted(p["Key"] for p in probes) == [
        "data/dev/_healthcheck/write-probe",
        "logs/dev/_healthcheck/write-probe",
    ]
    assert all("IfMatch" in p for p in probes)
    assert world.objects() == {}


def test_fetch_needs_only_the_execution_role(world, context):
    # Two runs: the second reads back what the first wrote (objects and index).
    response = _invoke(world, {}, context)
    assert response["ok"] is True
    assert _invoke(world, {}, context)["ok"] is True
    denied, actions = _denied(world, world.clients.calls)
    assert denied == set()
    # Changed by issue 12: a run reads back its own data (s3:GetObject under
    # DATA_PREFIX) to merge bars and update the index with conditional writes.
    assert actions == {"s3:GetObject", "s3:PutObject", "dynamodb:BatchWriteItem"}
    reads = {c.params["Key"] for c in world.clients.calls if c.operation == "GetObject"}
    assert reads and all(k.startswith("data/dev/") for k in reads)


def test_every_table_permission_of_the_role_is_used(world, context):
    # Least privilege the other way round: nothing on the table goes unused.
    _invoke(world, {"test": True}, context)
    _invoke(world, {}, context)
    _, actions = _denied(world, world.clients.calls)
    assert {a for a in actions if a.startswith("dynamodb:")} == set(DYNAMODB_ACTIONS)


@pytest.fixture
def as_function_user(world, monkeypatch):
    """Switch the runtime's credentials to an IAM user holding `policy`, with moto
    enforcing IAM from then on (so nothing else in the test can set anything up)."""

    def become(policy):
        iam = boto3.client("iam")
        iam.create_user(UserName="market_data_fetcher-dev")
        iam.put_user_policy(
            UserName="market_data_fetcher-dev",
            PolicyName="least-privilege",
            PolicyDocument=json.dumps(policy),
        )
        key = iam.create_access_key(UserName="market_data_fetcher-dev")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        world.clients = RecordingClients()
        stack.enter_context(enable_iam_authentication())

    with contextlib.ExitStack() as stack:
        yield become


def _checks(report):
    return {c["name"]: (c["status"], c["detail"]) for c in report["checks"]}


def test_prefix_probes_pass_under_enforced_iam_with_the_role_policy(
    world, context, as_function_user
):
    as_function_user(_policy(world))
    checks = _checks(_invoke(world, {"test": True}, context))
    assert checks["data_prefix"][0] == "ok" and checks["logs_prefix"][0] == "ok"
    # Enforcement is real: the role cannot list the bucket it just probed.
    with pytest.raises(Exception, match="AccessDenied"):
        world.clients.get("s3").list_objects_v2(Bucket=world.bucket)


def _with_table_for_moto(policy):
    # moto authorises DynamoDB calls against the resource "*", which the role's scoped
    # statement never matches; the table's scoping is checked by the evaluation tests
    # above. What is enforced here is S3, per key.
    policy["Statement"].append(
        {"Sid": "MotoTable", "Effect": "Allow", "Action": list(DYNAMODB_ACTIONS), "Resource": "*"}
    )
    return policy


def test_fetches_pass_under_enforced_iam_with_the_role_policy(world, context, as_function_user):
    as_function_user(_with_table_for_moto(_policy(world)))
    for request_id in ("first", "second"):
        response = _invoke(world, {}, dataclasses.replace(context, aws_request_id=request_id))
        assert response["ok"] is True, response
    assert response["index"] == "data/dev/index.json"


def test_without_get_object_the_second_run_names_the_missing_permission(
    world, context, as_function_user, capsys
):
    # GIVEN the policy as it was before issue 12: write-only
    policy = _with_table_for_moto(_policy(world))
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "ReadOwnData"]
    as_function_user(policy)
    # The first run creates every object (a denied read looks like a missing key, and
    # If-None-Match creates it), the second finds them there and cannot read them.
    assert _invoke(world, {}, context)["ok"] is True
    capsys.readouterr()
    with pytest.raises(Exception, match="all 3 symbols failed"):
        _invoke(world, {}, dataclasses.replace(context, aws_request_id="second"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [line["error"] for line in lines if line["message"] == "symbol failed"]
    assert len(errors) == 3
    assert all("the execution role needs s3:GetObject on DATA_PREFIX" in e for e in errors)


def test_prefix_probe_reports_access_denied_for_another_environments_role(
    world, context, as_function_user
):
    # GIVEN the prod function's policy on a function configured for dev's prefixes
    prod = Names.for_env("prod")
    policy = _policy(world)
    for statement in policy["Statement"]:
        if statement["Sid"] == "WriteOwnPrefixes":
            statement["Resource"] = [
                f"arn:aws:s3:::{world.bucket}/{prod.data_prefix}*",
                f"arn:aws:s3:::{world.bucket}/{prod.logs_prefix}*",
            ]
    as_function_user(policy)
    # WHEN test mode runs: THEN both probes fail with S3's own AccessDenied
    report = _invoke(world, {"test": True}, context)
    checks = _checks(report)
    assert report["ok"] is False
    assert checks["data_prefix"][0] == "error" and "AccessDenied" in checks["data_prefix"][1]
    assert checks["logs_prefix"][0] == "error" and "AccessDenied" in checks["logs_prefix"][1]
