"""Starting child processes that die with the daemon.

Each child is started with a parent-death signal (localcloud.emulator.dies_with_us),
and Linux sends it when the *thread* that started the child exits, not the process.
Request threads come and go, so execution environments are started here, from one
thread that lives as long as the daemon: killed outright (SIGKILL, an OOM kill), the
daemon still takes its functions' processes with it.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from localcloud.emulator import dies_with_us


@dataclass(frozen=True)
class ChildSpec:
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    pass_fds: tuple[int, ...] = ()


class Spawner:
    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[ChildSpec, Future[subprocess.Popen[bytes]]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._run, name="localcloud-spawner", daemon=True)
        self._thread.start()

    def start(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        """Start the child (stdout and stderr on one pipe, in its own process group)."""
        future: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((spec, future))
        return future.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            spec, future = job
            try:
                proc = subprocess.Popen(
                    dies_with_us(list(spec.argv)),
                    env=dict(spec.env),
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    pass_fds=spec.pass_fds,
                    # Its own group: a timeout kills the handler's own children too.
                    start_new_session=True,
                )
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)
            else:
                future.set_result(proc)
