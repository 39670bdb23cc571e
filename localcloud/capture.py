"""An execution environment's output, as Lambda collects it: every line the process
writes to stdout or stderr is one log event, and every frame the runtime interface
client writes to its telemetry descriptor (`_LAMBDA_TELEMETRY_LOG_FD`, where it sends
the `logging` module's records and its error reports) is one event, multi-line
tracebacks included.

One thread reads both pipes. `sync()` makes it read everything already written, so
the lines of an invocation are all collected once its answer has arrived (the runtime
flushes before it answers).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from dataclasses import dataclass

from localcloud.lambda_logs import LogLine, now_ms

_FRAME_HEADER = 16  # type (4 bytes), length (4), timestamp in microseconds (8); big-endian
_MAX_FRAME = 1024 * 1024


@dataclass
class _Stream:
    fd: int
    framed: bool
    pending: bytes = b""
    open: bool = True


class LogCapture:
    def __init__(self, stdout_fd: int, telemetry_fd: int) -> None:
        """stdout_fd: the process's stdout and stderr, on one pipe; telemetry_fd: the
        read end of the runtime's telemetry pipe. Both are owned (closed) by this."""
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()
        self._syncs: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()
        self._streams = [_Stream(stdout_fd, False), _Stream(telemetry_fd, True)]
        for fd in (stdout_fd, telemetry_fd, self._wake_r):
            os.set_blocking(fd, False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="localcloud-logs", daemon=True)
        self._thread.start()

    def sync(self, timeout: float = 1.0) -> None:
        """Return once everything written so far has been read (or the pipes closed)."""
        if self._thread is None or not self._thread.is_alive():
            return
        done = threading.Event()
        with self._lock:
            self._syncs.append(done)
        try:
            os.write(self._wake_w, b"s")
        except OSError:
            return
        done.wait(timeout)

    def take(self) -> list[LogLine]:
        """The lines collected since the last take, and any unfinished last line."""
        with self._lock:
            lines, self._lines = self._lines, []
            for stream in self._streams:
                if not stream.framed and stream.pending:
                    lines.append(LogLine(now_ms(), stream.pending.decode("utf-8", "replace")))
                    stream.pending = b""
        return lines

    def close(self) -> None:
        if self._thread is not None:
            os.write(self._wake_w, b"q")
            self._thread.join(timeout=2)
        for fd in (*(stream.fd for stream in self._streams), self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- the reading thread -------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        for stream in self._streams:
            selector.register(stream.fd, selectors.EVENT_READ, stream)
        try:
            while True:
                for key, _ in selector.select():
                    if key.data is None:
                        if b"q" in self._drain_wake():
                            return
                        self._read_all(selector)
                        self._release_syncs()
                    else:
                        self._read(key.data, selector)
                if not any(stream.open for stream in self._streams):
                    self._release_syncs()
                    return
        finally:
            selector.close()
            self._release_syncs()

    def _drain_wake(self) -> bytes:
        try:
            return os.read(self._wake_r, 4096)
        except BlockingIOError:
            return b""

    def _read_all(self, selector: selectors.BaseSelector) -> None:
        for stream in self._streams:
            while stream.open and self._read(stream, selector):
                pass

    def _read(self, stream: _Stream, selector: selectors.BaseSelector) -> bool:
        """Read one chunk; False when nothing more is there right now."""
        try:
            chunk = os.read(stream.fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            stream.open = False
            selector.unregister(stream.fd)
            return False
        with self._lock:
            stream.pending += chunk
            if stream.framed:
                self._frames(stream)
            else:
                *complete, stream.pending = stream.pending.split(b"\n")
                stamp = now_ms()
                self._lines += [
                    LogLine(stamp, line.decode("utf-8", "replace").rstrip("\r"))
                    for line in complete
                ]
        return True

    def _frames(self, stream: _Stream) -> None:
        data = stream.pending
        while len(data) >= _FRAME_HEADER:
            length = int.from_bytes(data[4:8], "big")
            if length > _MAX_FRAME:  # not a frame stream after all: keep it as text
                self._lines.append(LogLine(now_ms(), data.decode("utf-8", "replace")))
                data = b""
                break
            if len(data) < _FRAME_HEADER + length:
                break
            micros = int.from_bytes(data[8:16], "big")
            message = data[_FRAME_HEADER : _FRAME_HEADER + length].decode("utf-8", "replace")
            self._lines.append(LogLine(micros // 1000, message.rstrip("\n")))
            data = data[_FRAME_HEADER + length :]
        stream.pending = data

    def _release_syncs(self) -> None:
        with self._lock:
            syncs, self._syncs = self._syncs, []
        for event in syncs:
            event.set()
