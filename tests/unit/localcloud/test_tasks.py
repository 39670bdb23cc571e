"""localcloud.tasks.Supervisor: one task per spec, replaced (never two at once), stopped
when the spec goes, restarted when it exits, its lines in the log group and the file.

Small Python tasks stand in for the service; the log group is moto_server's."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from localcloud import tasks
from localcloud.control import alive
from localcloud.emulator import moto_server
from tests.unit.localcloud.helpers import clients

# Prints its tag, and on SIGTERM says so and leaves; it also records, in a shared file,
# how many copies run at once (a marker per live pid).
TASK = r"""
import os, signal, sys, time
tag, dir = sys.argv[1], sys.argv[2]
mark = os.path.join(dir, str(os.getpid()))
open(mark, "w").close()
print(f"{tag} running with {len(os.listdir(dir))} live", flush=True)
def leave(*_):
    print(f"{tag} got SIGTERM", flush=True)
    os.unlink(mark)
    sys.exit(0)
signal.signal(signal.SIGTERM, leave)
if len(sys.argv) > 3:
    time.sleep(float(sys.argv[3])); os.unlink(mark); sys.exit(3)
while True:
    time.sleep(0.1)
"""


def _spec(tag: str, live: Path, *extra: str) -> tasks.TaskSpec:
    return tasks.TaskSpec(
        name="svc",
        task_definition=f"arn:aws:ecs:us-east-1:123456789012:task-definition/svc:{tag}",
        argv=[sys.executable, "-c", TASK, tag, str(live), *extra],
        env={"PATH": "/usr/bin:/bin"},
        cwd=str(live.parent),
        log_group="/ecs/svc",
        log_stream_prefix="svc/svc",
    )


def _wait(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := predicate():
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def cloud(tmp_path):
    with moto_server(log_path=tmp_path / "moto.log") as url:
        logs = clients(url)("logs")
        logs.create_log_group(logGroupName="/ecs/svc")
        said: list[str] = []
        sup = tasks.Supervisor(tmp_path / "state", logs=logs, log=said.append)
        live = tmp_path / "live"
        live.mkdir()
        sup.start()
        try:
            yield sup, logs, live, tmp_path / "state", said
        finally:
            sup.close()


def _running(sup: tasks.Supervisor, tag: str):
    return lambda: next((t for t in sup.tasks() if t["task_definition"].endswith(":" + tag)), None)


def test_a_changed_spec_replaces_the_task_and_a_withdrawn_one_stops_it(cloud):
    sup, logs, live, state_dir, said = cloud
    tasks.submit(state_dir, _spec("1", live))
    first = _wait(_running(sup, "1"))
    tasks.submit(state_dir, _spec("1", live))  # the same spec again: left running
    time.sleep(1.5)
    assert [t["pid"] for t in sup.tasks()] == [first["pid"]]

    tasks.submit(state_dir, _spec("2", live))
    second = _wait(_running(sup, "2"))
    assert second["pid"] != first["pid"] and not alive(first["pid"])
    stream = f"svc/svc/{second['task_id']}"
    assert second["log_stream"] == stream

    def lines(task_id: str) -> list[str]:
        events = logs.get_log_events(logGroupName="/ecs/svc", logStreamName=f"svc/svc/{task_id}")
        return [e["message"] for e in events["events"]]

    assert _wait(lambda: lines(second["task_id"])) == ["2 running with 1 live"]
    assert lines(first["task_id"]) == ["1 running with 1 live", "1 got SIGTERM"]

    tasks.withdraw(state_dir, "svc")
    _wait(lambda: not sup.tasks())
    assert not alive(second["pid"])
    text = (state_dir / "tasks" / "svc.log").read_text()
    assert text.splitlines() == [
        "1 running with 1 live",
        "1 got SIGTERM",
        "2 running with 1 live",
        "2 got SIGTERM",
    ]
    assert any("exit 0" in line for line in said), said


def test_a_task_that_exits_is_started_again(cloud, monkeypatch):
    sup, _logs, live, state_dir, said = cloud
    monkeypatch.setattr(tasks, "RESTART_SECONDS", 0.5)
    tasks.submit(state_dir, _spec("1", live, "0.3"))
    first = _wait(_running(sup, "1"))
    second = _wait(lambda: next((t for t in sup.tasks() if t["pid"] != first["pid"]), None))
    assert second["task_id"] != first["task_id"]
    assert any(f"{first['task_id']} exited 3" in line for line in said), said


def test_closing_stops_the_tasks_and_a_new_supervisor_forgets_old_specs(tmp_path):
    with moto_server(log_path=tmp_path / "moto.log") as url:
        logs = clients(url)("logs")
        live = tmp_path / "live"
        live.mkdir()
        state_dir = tmp_path / "state"
        sup = tasks.Supervisor(state_dir, logs=logs, log=lambda _m: None)
        sup.start()
        tasks.submit(state_dir, _spec("1", live))
        task = _wait(_running(sup, "1"))
        sup.close()
        assert not alive(task["pid"])
        # the log group did not exist: made as the awslogs driver's create-group would
        assert logs.describe_log_groups()["logGroups"][0]["logGroupName"] == "/ecs/svc"
        tasks.submit(state_dir, _spec("1", live))
        tasks.Supervisor(state_dir, logs=logs, log=lambda _m: None)
        assert list((state_dir / "tasks").glob("*.json")) == []
