"""Progress lines on stderr, for a person watching a terminal; silent otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = False, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._start = time.monotonic()
        self._status = False

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\033[K")
            self._status = False

    def step(self, message: str) -> None:
        if self.enabled:
            self._clear()
            self.stream.write(f"==> [{time.monotonic() - self._start:5.1f}s] {message}\n")
            self.stream.flush()

    def status(self, message: str) -> None:
        """A transient line, overwritten by the next one."""
        if self.enabled:
            self.stream.write(f"\r\033[K    {message[:100]}")
            self.stream.flush()
            self._status = True

    def done(self) -> None:
        if self.enabled:
            self._clear()
            self.stream.flush()
