"""The real process: SIGTERM finishes the step and exits within 30 s; health from outside.

moto_server on 127.0.0.1 stands in for AWS; the service runs as `python -c` calling
backend.service.__main__.main with the weekday test calendar (the exchange calendar
module arrives with the fetcher's side)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from localcloud.emulator import EMULATOR_ENV, moto_server
from tests.unit.service.helpers import create_world, put_bars, service_env, wave_closes
from tests.unit.trading.helpers import bars

ROOT = Path(__file__).resolve().parents[3]
LAUNCH = (
    "import sys; from backend.service.__main__ import main; "
    "from tests.unit.trading.helpers import WeekdayCalendar; "
    "sys.exit(main(sys.argv[1:], calendar=WeekdayCalendar()))"
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulated(tmp_path):
    with moto_server() as url:
        kwargs = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            **{"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        }
        ddb, s3 = boto3.client("dynamodb", **kwargs), boto3.client("s3", **kwargs)
        create_world(ddb, s3)
        put_bars(ddb, s3, bars("AAA", wave_closes(40)))
        env = {
            **os.environ,
            **EMULATOR_ENV,
            **service_env(["AAA"], tmp_path / "hb.json"),
            "AWS_ENDPOINT_URL": url,
            "PYTHONPATH": str(ROOT),
        }
        yield env, tmp_path / "hb.json"


def test_sigterm_finishes_the_step_and_exits_promptly(emulated):
    env, heartbeat = emulated
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not heartbeat.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        assert heartbeat.exists()
        health = subprocess.run(
            [sys.executable, "-m", "backend.service", "health"],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert json.loads(health.stdout)["status"] == "healthy"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert took < 30
    messages = [json.loads(line)["message"] for line in out.splitlines() if line.startswith("{")]
    assert "signal received: finishing the current step" in messages
    assert messages[-1] == "stopping: signal received, step finished"


def test_once_exits_and_a_second_run_resumes_from_the_ledger(emulated):
    env, _ = emulated
    args = [sys.executable, "-c", LAUNCH, "--replay", "10"]
    first = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert first.returncode == 0, first.stderr
    again = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    decisions = [line for line in again.stdout.splitlines() if '"message":"decision"' in line]
    assert again.returncode == 0 and decisions == []
