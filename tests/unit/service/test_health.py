"""Which states fail the container health check (docs/trading.md, "Health")."""

import json
import time

from backend.service import health


def beat(path, **fields):
    doc = {"time": time.time(), "poll_seconds": 60, "consecutive_failures": 0, **fields}
    path.write_text(json.dumps(doc))


def test_no_heartbeat_is_unhealthy(tmp_path):
    result = health.check(tmp_path / "none.json")
    assert result.status == "unhealthy" and result.exit_code() == 1


def test_a_fresh_heartbeat_is_healthy(tmp_path):
    beat(tmp_path / "hb", halted=False, stale=[])
    assert health.check(tmp_path / "hb").exit_code() == 0


def test_a_stuck_loop_is_unhealthy(tmp_path):
    beat(tmp_path / "hb")
    result = health.check(tmp_path / "hb", now=time.time() + 181)
    assert result.status == "unhealthy" and "stuck" in result.problems[0]
    assert health.check(tmp_path / "hb", now=time.time() + 170).status == "healthy"


def test_repeated_failed_steps_are_unhealthy(tmp_path):
    beat(tmp_path / "hb", consecutive_failures=3, last_error="BrokerError: alpaca: account")
    result = health.check(tmp_path / "hb")
    assert result.exit_code() == 1 and "BrokerError" in result.problems[0]


def test_halted_or_stale_is_degraded_not_restarted(tmp_path):
    """A restart fixes neither; the task must go on reconciling and marking."""
    beat(tmp_path / "hb", halted=True, halt_reason="daily loss 6%", stale=["AAA"])
    result = health.check(tmp_path / "hb")
    assert result.status == "degraded"
    assert result.exit_code() == 0
    assert result.exit_code(strict=True) == 1
    assert result.problems == ("kill switch halted: daily loss 6%", "stale data: AAA")
