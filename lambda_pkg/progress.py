"""Progress on stderr for a person watching a terminal; silent otherwise.

The one progress display of the project: the packager's steps and status lines,
and the uploader's byte meter (`meter`), which s3transfer's worker threads feed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

MiB = 1024 * 1024
_BAR_WIDTH = 30


class Progress:
    def __init__(self, enabled: bool = False, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._start = time.monotonic()
        self._status = False
        self._lock = threading.Lock()

    @classmethod
    def on_terminal(cls, stream: TextIO | None = None) -> Progress:
        """Enabled when the stream (default stderr) is a terminal."""
        stream = stream or sys.stderr
        return cls(enabled=stream.isatty(), stream=stream)

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False

    def step(self, message: str) -> None:
        if self.enabled:
            with self._lock:
                self._clear()
                self.stream.write(f"==> [{time.monotonic() - self._start:5.1f}s] {message}\n")
                self.stream.flush()

    def status(self, message: str) -> None:
        """A transient line, overwritten by the next one."""
        if self.enabled:
            with self._lock:
                self.stream.write(f"\r\033[K    {message[:100]}")
                self.stream.flush()
                self._status = True

    def done(self) -> None:
        if self.enabled:
            with self._lock:
                self._clear()
                self.stream.flush()

    def meter(self, label: str, total: int) -> Callable[[int], None]:
        """A callback taking byte counts (negative when a retried request rewinds),
        drawing `label [####------]  40% 24.0/60.0 MiB`; the full bar stays as a step.
        Safe to call from several threads at once."""
        total = max(total, 1)
        done = 0
        finished = False
        lock = threading.Lock()

        def advance(n: int) -> None:
            nonlocal done, finished
            with lock:
                done = min(max(done + n, 0), total)
                if finished or not self.enabled:
                    return
                filled = _BAR_WIDTH * done // total
                line = (
                    f"{label} [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] "
                    f"{100 * done // total:3d}% {done / MiB:.1f}/{total / MiB:.1f} MiB"
                )
                if done >= total:
                    finished = True
                    self.step(line)
                else:
                    self.status(line)

        return advance
