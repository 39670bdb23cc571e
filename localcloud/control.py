"""Starting, finding and stopping a local cloud from Python: what `python -m localcloud
up|status|down` do, and what `scripts/deploy.sh --local --keep/--down` (the rehearsal)
calls (docs/CONTRACTS.md section 12).

    state, started = ensure_running(CloudSettings(state_dir=...))   # up (or the running one)
    found = running(state_dir)                                      # (state, status) or None
    stop(state_dir)                                                 # down

Errors the user can fix raise lambda_pkg.errors.UserError (one line, exit 2 in a CLI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_pkg.errors import UserError
from localcloud.emulator import EMULATOR_ENV
from localcloud.state import (
    CloudState,
    StateError,
    default_cache_dir,
    default_state_dir,
    read_state,
    remove_state,
    state_path,
)

ROOT = Path(__file__).resolve().parents[1]
LOG_FILE = "localcloud.log"
STARTUP_TIMEOUT_S = 60.0
# Beyond a task's own stop timeout (localcloud.tasks.STOP_SECONDS): the daemon stops its
# tasks before it leaves.
STOP_TIMEOUT_S = 40.0


@dataclass(frozen=True)
class CloudSettings:
    state_dir: Path = field(default_factory=default_state_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)
    port: int = 0  # 0: a free one
    region: str = EMULATOR_ENV["AWS_REGION"]
    tick_seconds: float | None = None
    idle_seconds: float = 300.0
    max_environments: int = 4

    def serve_args(self) -> list[str]:
        """The `python -m localcloud serve` arguments for these settings."""
        args = [
            "--state-dir", str(self.state_dir.resolve()),
            "--cache-dir", str(self.cache_dir.resolve()),
            "--port", str(self.port),
            "--region", self.region,
            "--idle-seconds", str(self.idle_seconds),
            "--max-environments", str(self.max_environments),
        ]  # fmt: skip
        if self.tick_seconds:
            args += ["--tick-seconds", str(self.tick_seconds)]
        return args


def probe(state: CloudState) -> dict[str, Any] | None:
    """The cloud's status if it answers on its port with its own token, else None."""
    try:
        with urllib.request.urlopen(  # noqa: S310 - loopback, our own port
            f"{state.url}/_localcloud/status", timeout=3
        ) as answer:
            doc = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("token") == state.token else None


def is_daemon(pid: int) -> bool:
    """Is `pid` a `localcloud serve` process (not a stranger that reused the pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to "some process has this pid"
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"localcloud" in cmdline and b"serve" in cmdline


def recorded(state_dir: Path) -> CloudState | None:
    try:
        return read_state(state_dir)
    except StateError as exc:
        raise UserError(str(exc)) from None


def running(state_dir: Path | None = None) -> tuple[CloudState, dict[str, Any]] | None:
    """(state, status) of the cloud recorded in `state_dir` if it answers, else None."""
    state = recorded((state_dir or default_state_dir()).resolve())
    if state is None:
        return None
    status = probe(state)
    return (state, status) if status is not None else None


def export_lines(state: CloudState) -> list[str]:
    """Shell lines that point the AWS CLI and SDKs at the cloud."""
    creds = {k: v for k, v in EMULATOR_ENV.items() if not k.endswith("REGION")}
    return [
        f"export AWS_ENDPOINT_URL={state.url}",
        *(f"export {key}={value}" for key, value in creds.items()),
        f"export AWS_DEFAULT_REGION={state.region}",
        f"export AWS_REGION={state.region}",
        # A profile would win over these credentials in some tools: none, here.
        "unset AWS_PROFILE AWS_DEFAULT_PROFILE",
    ]


def port_free(port: int) -> bool:
    """Could the front listen on `port`? (SO_REUSEADDR, as the server binds: a port
    whose old connections linger in TIME_WAIT is free.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Does anything accept connections on 127.0.0.1:`port`?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "; its log ends:\n  " + "\n  ".join(tail) if tail else ""


def ensure_running(settings: CloudSettings) -> tuple[CloudState, bool]:
    """(the cloud, True if this call started it). A cloud already running in the state
    dir is returned as it is (its settings win); a stale record is cleared first."""
    state_dir = settings.state_dir.resolve()
    found = running(state_dir)
    if found is not None:
        return found[0], False
    stale = recorded(state_dir)
    if stale is not None and is_daemon(stale.pid):
        raise UserError(
            f"a local cloud (pid {stale.pid}) is recorded in {state_path(state_dir)} but does "
            "not answer; stop it first: python -m localcloud down"
        )
    if stale is not None:
        remove_state(state_dir)
    if settings.port and not port_free(settings.port):
        raise UserError(f"--port {settings.port}: already in use; pick another, or omit --port")
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "serve", *settings.serve_args()],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in this terminal, or this shell closing, leaves it up.
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            code, tail = proc.returncode, _log_tail(log_path)
            message = f"the local cloud exited during start (code {code}){tail}"
            raise UserError(message) if code == 2 else RuntimeError(message)
        started = recorded(state_dir)
        if started is not None and started.pid == proc.pid and probe(started) is not None:
            return started, True
        time.sleep(0.1)
    stop_pid(proc.pid)
    raise RuntimeError(
        f"the local cloud did not answer within {STARTUP_TIMEOUT_S:.0f} s{_log_tail(log_path)}"
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1]
    except (OSError, IndexError):
        return True
    return not status.startswith("Z")


def stop_pid(pid: int) -> bool:
    """SIGTERM, then SIGKILL to its process group; True once it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # its group: the daemon started its own session
    except ProcessLookupError:
        return True
    time.sleep(0.5)
    return not alive(pid)


@dataclass(frozen=True)
class Stopped:
    state: CloudState | None  # the cloud that was stopped; None if none was running
    stale: bool = False  # a record whose process was gone (or the pid reused) was removed


def stop(state_dir: Path | None = None) -> Stopped:
    """Stop the cloud recorded in `state_dir`. Returns once its process is gone and its
    ports no longer answer."""
    state_dir = (state_dir or default_state_dir()).resolve()
    state = recorded(state_dir)
    if state is None:
        return Stopped(None)
    if not is_daemon(state.pid):
        remove_state(state_dir)
        return Stopped(None, stale=True)
    if not stop_pid(state.pid):
        raise RuntimeError(f"pid {state.pid} did not stop")
    deadline = time.monotonic() + 5
    while listening(state.port) or listening(state.moto_port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"ports {state.port}/{state.moto_port} still in use after stopping")
        time.sleep(0.1)
    remove_state(state_dir)
    return Stopped(state)
