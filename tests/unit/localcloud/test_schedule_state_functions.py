"""The schedule (EventBridge's envelope and target inputs), the state file, and how an
invocation's version is resolved (qualifiers, alias routing, moto's answers)."""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from localcloud.functions import pick_version, resolve
from localcloud.invoke_api import LambdaApiError
from localcloud.registry import CodeRegistry
from localcloud.schedule import (
    RuleError,
    fire,
    json_path,
    scheduled_event,
    scheduled_rules,
    target_input,
)
from localcloud.state import (
    CloudState,
    StateError,
    read_state,
    remove_state,
    state_path,
    write_state,
)

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/fn-schedule"
NOW = datetime(2026, 12, 2, 14, 15, tzinfo=UTC)


def test_the_scheduled_event_is_eventbridges_envelope():
    event = scheduled_event(RULE_ARN, NOW)
    assert {k: v for k, v in event.items() if k != "id"} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-02T14:15:00Z",
        "region": "us-east-1",
        "resources": [RULE_ARN],
        "detail": {},
    }
    assert event["id"] != scheduled_event(RULE_ARN, NOW)["id"]


def test_a_targets_input_settings_shape_the_payload():
    event = scheduled_event(RULE_ARN, NOW)
    assert json.loads(target_input({}, event, "r")) == event
    assert target_input({"Input": '{"symbols": ["SPY"]}'}, event, "r") == b'{"symbols": ["SPY"]}'
    assert json.loads(target_input({"InputPath": "$.resources"}, event, "r")) == [RULE_ARN]
    transformer = {
        "InputPathsMap": {"t": "$.time", "first": "$.resources[0]"},
        "InputTemplate": '{"at": "<t>", "rule": "<aws.events.rule-name>", "arn": "<first>"}',
    }
    assert json.loads(target_input({"InputTransformer": transformer}, event, "r")) == {
        "at": "2026-12-02T14:15:00Z",
        "rule": "r",
        "arn": RULE_ARN,
    }
    assert json_path({"a": {"b": [1, 2]}}, "$.a.b[1]") == 2


class RecordingLambda:
    """Stands in for the front's Invoke: records what EventBridge would send."""

    def __init__(self):
        self.calls = []

    def invoke(self, **params):
        self.calls.append(params)
        return {"StatusCode": 202, "ResponseMetadata": {"RequestId": f"req-{len(self.calls)}"}}


def test_fire_invokes_each_lambda_target_asynchronously_with_the_envelope():
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        arn = events.put_rule(Name="fn-schedule", ScheduleExpression="rate(15 minutes)")["RuleArn"]
        events.put_targets(
            Rule="fn-schedule",
            Targets=[
                {"Id": "live", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:fn:live"},
                {"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:queue"},
            ],
        )
        lam = RecordingLambda()
        rule, fired = fire("fn-schedule", events=events, lam=lam, now=NOW)
        assert rule["Arn"] == arn
        assert [(f.target_id, f.ok) for f in fired] == [("live", True), ("q", False)]
        assert "only Lambda targets" in fired[1].outcome
        (call,) = lam.calls
        assert call["InvocationType"] == "Event"
        assert call["FunctionName"].endswith(":function:fn:live")
        payload = json.loads(call["Payload"])
        assert payload["detail-type"] == "Scheduled Event" and payload["resources"] == [arn]
        assert scheduled_rules(events) == ["fn-schedule"]
        events.disable_rule(Name="fn-schedule")
        assert scheduled_rules(events) == []
        with pytest.raises(RuleError, match="'nope' not found"):
            fire("nope", events=events, lam=lam)


def _state(tmp_path, **kw) -> CloudState:
    fields = dict(
        pid=123,
        port=4000,
        moto_port=4001,
        token="t",
        region="us-east-1",
        started_at=1.0,
        state_dir=str(tmp_path),
    )
    return CloudState(**{**fields, **kw})


def test_the_state_file_round_trips_and_is_written_whole(tmp_path):
    state = _state(tmp_path, tick_seconds=5.0)
    write_state(state)
    assert read_state(tmp_path) == state
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left
    assert state.url == "http://127.0.0.1:4000"


def test_a_damaged_state_file_is_a_one_line_error_naming_it(tmp_path):
    state_path(tmp_path).write_text("{not json")
    with pytest.raises(StateError, match=r"state\.json: unreadable"):
        read_state(tmp_path)
    state_path(tmp_path).write_text('{"pid": 1}')
    with pytest.raises(StateError, match="missing or bad field"):
        read_state(tmp_path)
    assert read_state(tmp_path / "elsewhere") is None


def test_remove_with_a_token_leaves_another_clouds_state(tmp_path):
    write_state(_state(tmp_path, token="theirs"))
    remove_state(tmp_path, token="mine")
    assert read_state(tmp_path) is not None
    remove_state(tmp_path, token="theirs")
    assert read_state(tmp_path) is None


def test_alias_routing_picks_the_additional_version_by_weight():
    alias = {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}}
    rng = random.Random(7)  # noqa: S311 - a seeded test of weights
    picks = [pick_version(alias, rng) for _ in range(4000)]
    assert 0.2 < picks.count("2") / len(picks) < 0.3
    assert pick_version({"FunctionVersion": "3"}, rng) == "3"


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("h.py", text)
    return buffer.getvalue()


def test_resolve_reads_the_version_an_invocation_runs(tmp_path):
    with mock_aws():
        lam = boto3.client("lambda", region_name="us-east-1")
        role = boto3.client("iam", region_name="us-east-1").create_role(
            RoleName="r", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        lam.create_function(
            FunctionName="fn",
            Role=role,
            Runtime="python3.12",
            Handler="h.handler",
            Code={"ZipFile": _zip("V = 1")},
            Timeout=7,
            MemorySize=256,
            Environment={"Variables": {"B": "2", "A": "1"}},
            Publish=True,
        )
        lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
        lam.update_function_code(FunctionName="fn", ZipFile=_zip("V = 2"), Publish=True)
        lam.put_function_concurrency(FunctionName="fn", ReservedConcurrentExecutions=1)
        registry = CodeRegistry(tmp_path)
        rng = random.Random(0)  # noqa: S311 - a seeded test of weights
        live = resolve(lam, registry, "fn", "live", rng)
        two = resolve(lam, registry, "fn", "2", rng)
        latest = resolve(lam, registry, "fn", None, rng)
        assert (live.version, two.version, latest.version) == ("1", "2", "$LATEST")
        assert live.code_sha256 != two.code_sha256 == latest.code_sha256
        assert live.environment_key() != two.environment_key()
        assert (live.timeout_s, live.memory_mb, live.variables) == (
            7,
            256,
            (("A", "1"), ("B", "2")),
        )
        assert live.reserved_concurrency == 1 and live.log_group == "/aws/lambda/fn"
        assert live.arn.endswith(":function:fn")
        for name, qualifier in (("nope", None), ("fn", "nope"), ("fn", "9")):
            with pytest.raises(LambdaApiError) as err:
                resolve(lam, registry, name, qualifier, rng)
            assert err.value.code == "ResourceNotFoundException"
