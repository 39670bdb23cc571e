"""The local cloud as a background service: `up` prints what to paste and reports a
cloud that is already running instead of starting another; idle environments are
retired; the compressed clock fires schedules; `down` (or even a SIGKILL of the
daemon) leaves no process behind and frees its ports.

Marked `network`: functions need the Lambda runtime, installed from PyPI once.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import urllib.request

import pytest

from localcloud.control import listening
from localcloud.state import read_state
from tests.unit.localcloud.helpers import (
    ROOT,
    alive,
    clients,
    deploy_function,
    exports,
    localcloud,
    probe_zip,
    versioned_bucket,
)

pytestmark = [pytest.mark.e2e, pytest.mark.network]
CACHE = ROOT / ".build" / "localcloud" / "cache"
BUCKET = "ctb-localcloud-cli"


def _up(state_dir, *extra: str):
    done = localcloud("up", "--state-dir", str(state_dir), "--cache-dir", str(CACHE), *extra)
    assert done.returncode == 0, done.stderr
    return done


def _status(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_localcloud/status", timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())


def _children(pid: int) -> set[int]:
    """Every descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(") ", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_up_twice_reuses_the_cloud_and_down_leaves_nothing_running(tmp_path):
    # GIVEN a cloud, started with `up`
    first = _up(tmp_path)
    env = exports(first.stdout)
    state = read_state(tmp_path)
    assert state is not None and env["AWS_ENDPOINT_URL"] == state.url
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"
    assert "unset AWS_PROFILE AWS_DEFAULT_PROFILE" in first.stdout
    # WHEN `up` runs again, THEN it reports the running cloud and starts no other
    second = _up(tmp_path)
    assert "already running" in second.stderr and exports(second.stdout) == env
    assert read_state(tmp_path) == state
    # AND `status` shows it, with the environment a function invocation started
    make = clients(state.url)
    versioned_bucket(make, BUCKET)
    deploy_function(make, "probe-down", bucket=BUCKET, data=probe_zip("d"))
    make("lambda").invoke(FunctionName="probe-down", Payload=b"{}")
    status = localcloud("status", "--state-dir", str(tmp_path))
    assert status.returncode == 0 and state.url in status.stdout
    assert "probe-down:$LATEST" in status.stdout
    processes = _children(state.pid) | {state.pid}
    (env_pid,) = [e["pid"] for e in _status(state.url)["environments"]]
    assert env_pid in processes and len(processes) >= 3  # daemon, moto_server, the function
    # WHEN it is brought down
    down = localcloud("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    # THEN no process of it is left, its ports are free and its record is gone
    assert [pid for pid in processes if alive(pid)] == []
    assert not listening(state.port) and not listening(state.moto_port)
    assert read_state(tmp_path) is None
    assert localcloud("status", "--state-dir", str(tmp_path)).returncode == 3


def test_a_sigkilled_daemon_takes_its_children_with_it(tmp_path):
    # GIVEN a cloud with a warm function environment
    _up(tmp_path)
    state = read_state(tmp_path)
    make = clients(state.url)
    versioned_bucket(make, BUCKET)
    deploy_function(make, "probe-kill", bucket=BUCKET, data=probe_zip("k"))
    make("lambda").invoke(FunctionName="probe-kill", Payload=b"{}")
    children = _children(state.pid)
    assert children
    # WHEN the daemon alone is killed outright
    os.kill(state.pid, signal.SIGKILL)
    # THEN moto_server and the function's process die with it (parent-death signal)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == []
    # AND `down` clears the stale record without touching anything else
    down = localcloud("down", "--state-dir", str(tmp_path))
    assert down.returncode == 0 and read_state(tmp_path) is None


def test_an_idle_environment_is_retired_and_the_next_call_is_cold(tmp_path):
    _up(tmp_path, "--idle-seconds", "1")
    state = read_state(tmp_path)
    try:
        make = clients(state.url)
        versioned_bucket(make, BUCKET)
        deploy_function(make, "probe-idle", bucket=BUCKET, data=probe_zip("i"))
        lam = make("lambda")
        lam.invoke(FunctionName="probe-idle", Payload=b"{}")
        (env,) = _status(state.url)["environments"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _status(state.url)["environments"]:
            time.sleep(0.2)
        assert _status(state.url)["environments"] == []
        assert not alive(env["pid"])
        tail = lam.invoke(FunctionName="probe-idle", Payload=b"{}", LogType="Tail")["LogResult"]
        assert "Init Duration" in base64.b64decode(tail).decode()
    finally:
        localcloud("down", "--state-dir", str(tmp_path))


def test_the_compressed_clock_fires_enabled_schedules(tmp_path):
    _up(tmp_path, "--tick-seconds", "1")
    state = read_state(tmp_path)
    try:
        assert state.tick_seconds == 1.0
        make = clients(state.url)
        versioned_bucket(make, BUCKET)
        deploy_function(make, "probe-tick", bucket=BUCKET, data=probe_zip("t"))
        alias = make("lambda").get_alias(FunctionName="probe-tick", Name="live")["AliasArn"]
        events = make("events")
        rule = events.put_rule(
            Name="probe-tick-rule", ScheduleExpression="cron(0 21 ? * MON-FRI *)"
        )
        events.put_targets(Rule="probe-tick-rule", Targets=[{"Id": "1", "Arn": alias}])
        s3 = make("s3")
        deadline = time.monotonic() + 30
        keys: list[str] = []
        while time.monotonic() < deadline and len(keys) < 2:
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="events/").get("Contents", [])
            ]
            time.sleep(0.3)
        assert len(keys) >= 2  # one per tick
        event = json.loads(s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())
        assert event["resources"] == [rule["RuleArn"]] and event["detail-type"] == "Scheduled Event"
    finally:
        localcloud("down", "--state-dir", str(tmp_path))


def test_a_port_in_use_is_a_one_line_user_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = localcloud("up", "--state-dir", str(tmp_path), "--port", str(port))
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"error: --port {port}: already in use; pick another, or omit --port"
    )
    assert read_state(tmp_path) is None
