"""`--keep` leaves the strategy service running in the local cloud, as ECS runs its task:
`python -m backend.service` from the image's layers, owned by the cloud's daemon, its
log lines in `/ecs/strategy-<env>`; an unchanged redeploy leaves it alone, a redeploy
that runs the service's steps replaces it (never two at once), `--down` stops it.

One journey (the `service` fixture), in process through `main(argv)`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from infra.rehearsal.__main__ import main
from localcloud import cli
from localcloud.control import alive
from localcloud.state import read_state
from localcloud.tasks import withdraw
from tests.e2e.test_localcloud_keep import FIXTURE, _variant
from tests.unit.localcloud.helpers import clients
from tests.unit.rehearsal.helpers import code_only_artifact

pytestmark = [pytest.mark.e2e, pytest.mark.network]

LOG_GROUP = "/ecs/strategy-dev"


def _keep(state_dir: Path, manifest: Path, *, as_json: bool = True) -> Any:
    """`--keep` via main(argv): its JSON result, or (as_json=False) what it printed."""
    os.environ["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    out, err = io.StringIO(), io.StringIO()
    flags = ["--json"] if as_json else []
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--keep", *flags, "--state-dir", str(state_dir), *FIXTURE])
    finally:
        del os.environ["CTB_ARTIFACT_MANIFEST"]
    assert code == 0, err.getvalue()[-3000:]
    return json.loads(out.getvalue()) if as_json else out.getvalue()


def _task(state_dir: Path) -> dict[str, Any] | None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["status", "--json", "--state-dir", str(state_dir)]) == 0
    tasks = json.loads(out.getvalue())["tasks"]
    assert len(tasks) <= 1, tasks
    return tasks[0] if tasks else None


def _messages(url: str, stream: str, want: str, timeout: float = 30.0) -> list[str]:
    """The stream's messages, once one contains `want` (or the timeout passed)."""
    logs = clients(url)("logs")
    deadline = time.monotonic() + timeout
    while True:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]
        messages = [e["message"] for e in events]
        if any(want in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("service")
    state_dir = tmp / "cloud"
    first = code_only_artifact(tmp / "a")
    second = _variant(first, tmp / "b", "b")
    seen: dict[str, Any] = {"state_dir": state_dir}
    try:
        # 1. a first --keep: the service runs on after the rehearsal's service steps
        seen["first"] = _keep(state_dir, first.manifest_path)
        cloud = read_state(state_dir)
        assert cloud is not None
        seen["cloud"] = cloud
        seen["task"] = task = _task(state_dir)
        assert task is not None
        seen["alive"] = alive(task["pid"])
        seen["messages"] = _messages(cloud.url, task["log_stream"], '"starting"')
        seen["log_file"] = Path(task["log_file"]).read_text()
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            cli.main(["status", "--state-dir", str(state_dir)])
        seen["status_text"] = text.getvalue()

        # 2. unchanged: nothing is deployed, the task is left running
        seen["same"] = _keep(state_dir, first.manifest_path, as_json=False)
        seen["same_task"] = _task(state_dir)

        # 2b. unchanged, but the task is gone (as after a run that failed in its replay):
        # the service's steps run again and start it
        withdraw(state_dir, "strategy-dev")
        deadline = time.monotonic() + 40
        while _task(state_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        seen["restored"] = _keep(state_dir, first.manifest_path)
        seen["restored_task"] = _task(state_dir)

        # 3. new function code: the service's steps run again, so the task is replaced
        seen["changed"] = _keep(state_dir, second.manifest_path)
        seen["changed_task"] = _task(state_dir)
        seen["old_alive_after_change"] = alive(seen["restored_task"]["pid"])
        daemon_log = (state_dir / "localcloud.log").read_text()
        seen["daemon_log"] = daemon_log
    finally:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            seen["down"] = main(["--down", "--state-dir", str(state_dir)])
    tasks = (seen.get("task"), seen.get("restored_task"), seen.get("changed_task"))
    pids = [t["pid"] for t in tasks if t]
    seen["left"] = [pid for pid in pids if alive(pid)]
    return seen


def test_keep_leaves_the_service_running_and_logging_to_its_log_group(service):
    task = service["task"]
    assert service["alive"], task
    assert task["task_definition"].endswith(":task-definition/strategy-dev:1"), task
    assert task["log_group"] == LOG_GROUP
    assert task["log_stream"] == f"strategy/strategy/{task['task_id']}"
    starting = [json.loads(m) for m in service["messages"] if '"starting"' in m]
    assert starting, service["messages"]
    assert starting[0]["service"] == "strategy"
    assert starting[0]["mode"] == "paper"
    # the same lines in the file in the state dir
    assert '"starting"' in service["log_file"]
    step = next(s for s in service["first"]["steps"] if s["name"] == "service")
    assert step["ok"]
    assert f"pid {task['pid']}" in step["detail"]


def test_status_lists_the_task(service):
    task = service["task"]
    assert "tasks: 1" in service["status_text"]
    assert (
        f"strategy-dev  pid {task['pid']}  {task['task_definition']}  since "
        in (service["status_text"])
    )


def test_an_unchanged_redeploy_leaves_the_same_task_running(service):
    printed = service["same"]
    assert re.search(r" 0 created, 0 updated, \d+ unchanged", printed), printed[-2000:]
    # what to paste next names the service's task and its log group
    assert "-m localcloud status    # the strategy service's task runs here" in printed
    assert f"aws logs filter-log-events --log-group-name {LOG_GROUP}\n" in printed
    assert service["same_task"]["pid"] == service["task"]["pid"]
    assert service["same_task"]["task_id"] == service["task"]["task_id"]


def test_an_unchanged_redeploy_starts_a_missing_task(service):
    restored = service["restored"]
    assert restored["kept"]["writes"] == 0
    assert "nothing changed, but no service task ran: its steps run again" in restored["notes"]
    assert [s["name"] for s in restored["steps"]][-4:] == ["task", "replay", "trades", "service"]
    assert service["restored_task"]["pid"] != service["task"]["pid"]
    assert not alive(service["task"]["pid"])


def test_a_redeploy_that_runs_the_service_replaces_its_task(service):
    new, old = service["changed_task"], service["restored_task"]
    assert service["changed"]["kept"]["writes"] > 0
    assert new["pid"] != old["pid"] and new["task_id"] != old["task_id"]
    assert not service["old_alive_after_change"]
    # stopped (SIGTERM, its loop's clean exit) before anything else ran the service
    log = service["daemon_log"]
    stopped = log.index(f"task strategy-dev {old['task_id']} stopped (exit 0)")
    assert stopped < log.index(f"task strategy-dev {new['task_id']} started")


def test_down_leaves_no_task_running(service):
    assert service["down"] == 0
    assert service["left"] == []
    assert read_state(service["state_dir"]) is None
