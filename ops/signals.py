"""SIGTERM and SIGHUP stop a command the way Ctrl-C (SIGINT) does.

A CI runner cancelling a job sends SIGTERM; a closed terminal or SSH session sends
SIGHUP. Python's default for both is to die on the spot, which would leave a
multipart upload open (and its parts billed) until the lifecycle rule removes it.
Raising `Interrupted`, a KeyboardInterrupt, in the main thread instead lets
s3transfer cancel and abort the upload exactly as it does for Ctrl-C. The exit
code is the shell's for a death by that signal: 128 + its number (130, 143, 129).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The command was stopped by a signal; every KeyboardInterrupt path applies."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def exit_code(exc: KeyboardInterrupt) -> int:
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def signal_name(exc: KeyboardInterrupt) -> str:
    return signal.Signals(exc.signum).name if isinstance(exc, Interrupted) else "SIGINT"


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise Interrupted in the main thread.
    Outside the main thread (where Python allows no handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
