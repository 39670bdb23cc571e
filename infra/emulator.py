"""A local emulated AWS: moto_server on a free 127.0.0.1 port, for rehearsals and tests.

It runs as a separate process (not a thread in ours) so that what talks to it goes
through real HTTP, like a deploy against AWS does, and so a handler invoked in its
own subprocess can reach it too. It is always stopped on exit, even on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# Credentials and region for the emulator only. moto accepts any values; setting
# them here means a rehearsal never picks up (or needs) the user's real ones.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class EmulatorError(RuntimeError):
    """moto_server could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto_server_command() -> list[str]:
    # Prefer the console script beside the running interpreter (the venv's), then PATH.
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    raise EmulatorError(
        "moto_server not found: install the test tools with "
        "'pip install -r requirements-dev.txt' (it provides moto[server])"
    )


def _wait_ready(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorError(f"moto_server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise EmulatorError(f"moto_server did not answer on {url} within the time limit")


@contextlib.contextmanager
def moto_server(*, startup_timeout: float = 20.0, log_path: Path | None = None) -> Iterator[str]:
    """Start moto_server on 127.0.0.1:<free port>; yield its endpoint URL; always stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = {**os.environ, **EMULATOR_ENV}
    proc = subprocess.Popen(
        [*_moto_server_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        _wait_ready(url, proc, time.monotonic() + startup_timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log is not subprocess.DEVNULL:
            log.close()


def reset(url: str) -> None:
    """Wipe every resource in a running moto_server (between tests)."""
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=5):  # noqa: S310 - loopback only
        pass
