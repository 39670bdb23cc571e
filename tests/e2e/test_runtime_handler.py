"""The handler in its own process against moto_server, configured only by environment
variables (AWS_ENDPOINT_URL included), the way the rehearsal and Lambda run it."""

import json
from pathlib import Path

import boto3
import pytest

from localcloud.emulator import EMULATOR_ENV, moto_server
from tests.processes import run_python
from tests.runtime_support import deploy

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
INVOKE = """
import json, sys
from aws.market_data_fetcher import handler
class Context:
    aws_request_id = sys.argv[2]
    def get_remaining_time_in_millis(self):
        return 60_000
print(json.dumps(handler(json.loads(sys.argv[1]), Context())))
"""


def _invoke(env, event, request_id):
    result = run_python("-c", INVOKE, json.dumps(event), request_id, env=env)
    assert result.returncode == 0, result.stderr
    *logs, answer = result.stdout.splitlines()
    return json.loads(answer), [json.loads(line) for line in logs]


def test_fixture_run_against_moto_server():
    with moto_server() as url:
        # GIVEN what the program deploys, with a secret that has no value yet
        world = deploy(
            bucket="ctb-e2e",
            secret_value=None,
            client=lambda service: boto3.client(service, endpoint_url=url),
        )
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            **EMULATOR_ENV,
            "AWS_ENDPOINT_URL": url,
            **world.env,
        }

        # WHEN the seed's smoke test runs: THEN healthy, with only a warning for the
        # secret that has no value yet, and nothing written
        report, _ = _invoke(env, {"test": True}, "req-test")
        assert report["ok"] is True
        assert {c["name"]: c["status"] for c in report["checks"]}["secret"] == "warning"
        assert world.objects() == {} and world.items() == []

        # WHEN a fetch runs (today, whatever the market is doing): THEN a year of bars in
        # one object per calendar year, the index, items and the run record land
        answer, logs = _invoke(env, {}, "req-fetch")
        assert answer["counts"] == {"requested": 3, "succeeded": 3, "failed": 0}
        assert answer["market"]["calendar"].startswith("exchange_calendars")
        keys = world.objects()
        spy = sorted(k for k in keys if k.startswith("data/dev/market/symbol=SPY/interval=1d/"))
        assert 1 <= len(spy) <= 2 and all("/year=" in k for k in spy)  # a year back
        index = json.loads(keys["data/dev/index.json"])
        assert index["series"]["SPY/1d"]["objects"] == spy
        assert "logs/dev/market_data_fetcher/" in answer["run_record"]
        assert answer["run_record"] in keys
        assert len(world.items()) == 3 * (5 + 1)  # the period's bars and LATEST
        assert {line["request_id"] for line in logs} == {"req-fetch"}
        # AND every line is one Lambda's log-level filter can read (level and timestamp)
        assert {line["level"] for line in logs} <= {"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
        assert all(line["timestamp"].endswith("Z") for line in logs)
