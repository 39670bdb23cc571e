"""A local emulated AWS: moto_server on a free 127.0.0.1 port, for rehearsals and tests.

It runs as a separate process (not a thread in ours) so that what talks to it goes
through real HTTP, like a deploy against AWS does, and so a handler invoked in its
own subprocess can reach it too. It is always stopped on exit, even on failure:

- the context manager kills it on the way out, exception or not (it keeps nothing
  worth a graceful exit: its state is in memory, its log written line by line);
- it stays in our process group, so Ctrl-C in the terminal, or a CI runner killing
  the job's group, reaches it too;
- on Linux it is started with a parent-death signal, so even if our process alone
  is killed outright (SIGKILL, an OOM kill) it does not outlive us;
- the rehearsal's CLI turns SIGTERM and SIGHUP into an orderly stop as well.
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


# moto's own settings, unless the caller set them. moto fills each new EC2 region with
# the public AMIs of its data files (0.6 s of JSON on the first EC2 call, every server);
# nothing deployed here launches an instance, so the emulated account starts without.
MOTO_SETTINGS = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}


class EmulatorError(RuntimeError):
    """moto_server could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _moto_server_command() -> list[str]:
    # Prefer the console script beside the running interpreter (the venv's), then PATH.
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    if found:
        return [found]
    raise EmulatorError(
        "moto_server not found: install the local cloud's dependencies with "
        "'pip install -r requirements-local.txt' (BOOTSTRAP_SET=run scripts/bootstrap.sh does it)"
    )


# Runs as the child: ask Linux to send SIGTERM when our process dies, then become
# moto_server. Checked against the parent's pid afterwards, in case it died in between.
_WITH_PARENT_DEATH_SIGNAL = r"""
import ctypes, os, signal, sys
parent = int(sys.argv[1])
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:
    sys.exit(0)
os.execv(sys.argv[2], sys.argv[2:])
"""


def dies_with_us(argv: list[str]) -> list[str]:
    """argv, wrapped so that it dies with this process where the OS can arrange it.

    Linux delivers the signal when the *thread* that started the child exits: enter
    moto_server() in the thread that will use it (as the rehearsal and the tests do),
    and start other children from a thread that lives as long as they should."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-I", "-S", "-c", _WITH_PARENT_DEATH_SIGNAL, str(os.getpid()), *argv]


class _ExitedEarly(EmulatorError):
    pass


def _wait_ready(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _ExitedEarly(f"moto_server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - loopback
                break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    else:
        raise EmulatorError(f"moto_server did not answer on {url} within the time limit")
    if proc.poll() is not None:
        # Something else answered on the port ours could not bind.
        raise _ExitedEarly(f"moto_server exited early with code {proc.returncode}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # Killed, not asked: everything moto_server holds is in its memory, and its log
    # lines are written as they come (stderr is line-buffered). Asked (SIGTERM), it
    # exits through the interpreter's finalization, 1.3 s after a rehearsal's deploy.
    proc.kill()
    proc.wait()


def _log_tail(log_path: Path | None, lines: int = 10) -> str:
    if log_path is None or not log_path.is_file():
        return ""
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return ("; its log ends:\n  " + "\n  ".join(tail)) if tail else ""


@contextlib.contextmanager
def moto_server(*, startup_timeout: float = 20.0, log_path: Path | None = None) -> Iterator[str]:
    """Start moto_server on 127.0.0.1:<free port>; yield its endpoint URL; always stop it."""
    env = {**MOTO_SETTINGS, **os.environ, **EMULATOR_ENV}
    command = _moto_server_command()
    # The free port can be taken by someone else before moto_server binds it: then
    # it exits at once, and another port is tried.
    for attempt in range(3):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") if log_path else contextlib.nullcontext() as log:
            proc = subprocess.Popen(
                dies_with_us([*command, "-H", "127.0.0.1", "-p", str(port)]),
                stdout=log if log is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
            try:
                try:
                    _wait_ready(url, proc, time.monotonic() + startup_timeout)
                except _ExitedEarly as exc:
                    if attempt < 2:
                        continue
                    raise EmulatorError(f"{exc}{_log_tail(log_path)}") from None
                yield url
                return
            finally:
                _stop(proc)


def reset(url: str) -> None:
    """Wipe every resource in a running moto_server (between tests)."""
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=5):  # noqa: S310 - loopback only
        pass
