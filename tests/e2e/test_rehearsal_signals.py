"""Stopping a rehearsal half-way: Ctrl-C in the terminal, a CI timeout's SIGTERM or a
closed terminal's SIGHUP each stop the emulator on the way out, and the exit code
says which. No moto_server may outlive the rehearsal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.unit.rehearsal.helpers import code_only_artifact

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return code_only_artifact(tmp_path_factory.mktemp("code-only")).manifest_path


def _start(manifest: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    return subprocess.Popen(
        [sys.executable, "-m", "infra.rehearsal", "--verbose",
         "--config", "marketDataProvider=fixture"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Its own process group, like a job in a terminal: killpg is then Ctrl-C.
        start_new_session=True,
    )  # fmt: skip


def _wait_for_deploy(proc: subprocess.Popen) -> tuple[str, list[str]]:
    """Read progress until the deploy step has created its first resource."""
    seen: list[str] = []
    url = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if m := re.search(r"ok \([\d.]+ s\): (http://127\.0\.0\.1:\d+)", line):
            url = m[1]
        if line.lstrip().startswith("+ aws:"):
            return url, seen
    proc.kill()
    pytest.fail("the rehearsal never reached the deploy step:\n" + "".join(seen))


def _assert_gone(url: str) -> None:
    # Give the OS a moment to close the socket of a process that has just exited.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)  # noqa: S310 - loopback
        except (urllib.error.URLError, ConnectionError):
            return
        time.sleep(0.2)
    pytest.fail(f"moto_server at {url} is still running after the rehearsal stopped")


@pytest.mark.parametrize(
    ("signum", "to_group", "code", "said"),
    [
        (signal.SIGINT, True, 130, "interrupted (Ctrl-C): the emulator was stopped"),
        (signal.SIGTERM, False, 128 + signal.SIGTERM, "stopped by SIGTERM"),
        (signal.SIGHUP, False, 128 + signal.SIGHUP, "stopped by SIGHUP"),
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_stopped_rehearsal_stops_its_emulator(manifest, signum, to_group, code, said):
    # GIVEN a rehearsal in the middle of its deploy step
    proc = _start(manifest)
    try:
        url, _ = _wait_for_deploy(proc)
        assert url, "the emulator step did not report its URL"
        # WHEN it is stopped (Ctrl-C reaches the whole foreground process group)
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # THEN it says so, exits 128+signal, and its emulator is gone
    assert proc.returncode == code, err[-2000:]
    assert said in err
    assert "nothing real was touched" in err
    assert "Traceback" not in err
    _assert_gone(url)


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
def test_ctrl_c_anywhere_in_the_deploy_step_exits_130_in_one_line(manifest, delay):
    # GIVEN a rehearsal that has started its deploy step (the program loading, then
    # registering resources): Ctrl-C reaches moto_server too, so a handler's request
    # can fail before the rehearsal hears of the interrupt (2 of 8 tries exited 1
    # with "Could not connect to the endpoint URL" before)
    proc = _start(manifest)
    try:
        for line in proc.stderr:
            if line.startswith("==> deploy"):
                break
        time.sleep(delay)
        # WHEN Ctrl-C reaches the whole process group
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # THEN it exits 130, saying so in one line, never as a failed deploy
    assert proc.returncode == 130, err[-2000:]
    assert err.splitlines()[-1].startswith("interrupted (Ctrl-C): the emulator was stopped")
    assert "Could not connect" not in err
    assert "error:" not in err
