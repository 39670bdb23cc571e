"""A small HTTP server that really fails, for testing botocore's retries and
s3transfer's aborts over real HTTP (not by mocking them).

It answers chosen requests with an error (503 SlowDown, 429 throttling, 403, a
dropped connection) a number of times, can delay or rewrite answers, and
otherwise forwards to an upstream (moto_server) or answers 200 with no body. It
records every request it saw, so a test can count attempts.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # with the query string
    at: float  # time.monotonic()

    @property
    def part_number(self) -> int | None:
        query = urlsplit(self.path).query
        for item in query.split("&"):
            name, _, value = item.partition("=")
            if name == "partNumber":
                return int(value)
        return None


def is_part(n: int | None = None) -> Callable[[Seen], bool]:
    """UploadPart requests (of part n)."""
    return lambda s: s.method == "PUT" and s.part_number is not None and n in (None, s.part_number)


def is_method(method: str, contains: str = "") -> Callable[[Seen], bool]:
    return lambda s: s.method == method and contains in s.path


@dataclass
class Fault:
    """Answer matching requests with `status` and an AWS error `code`, `times` times.
    `json=True` words it as the JSON services (Lambda, Logs) do; `drop=True` closes
    the connection without an answer instead."""

    when: Callable[[Seen], bool]
    status: int = 503
    code: str = "SlowDown"
    times: int = 10**9
    json: bool = False
    drop: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Rewrite:
    """Replace a header of the upstream's answer to matching requests (a lying store)."""

    when: Callable[[Seen], bool]
    header: str
    value: str


class FaultProxy:
    def __init__(
        self,
        upstream: str | None = None,
        *,
        faults: list[Fault] | None = None,
        rewrites: list[Rewrite] | None = None,
        delay: float = 0.0,
        delay_when: Callable[[Seen], bool] = lambda _s: True,
    ) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.faults = faults or []
        self.rewrites = rewrites or []
        self.delay, self.delay_when = delay, delay_when
        self.seen: list[Seen] = []
        self.errors: list[BaseException | None] = []  # the proxy's own, not the tested code's
        self._lock = threading.Lock()
        self.url = ""

    def count(self, when: Callable[[Seen], bool]) -> int:
        with self._lock:
            return sum(1 for s in self.seen if when(s))

    @contextmanager
    def running(self) -> Iterator[FaultProxy]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

            def log_message(self, *_args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                # A client hanging up mid-request (the uploader aborting its other parts
                # after a fault, slower under load) is part of the scenario. socketserver
                # would print its traceback to sys.stderr, which is the test's captured
                # stderr, the very output the tests hold to one line: keep it here instead.
                proxy.errors.append(sys.exc_info()[1])

        server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        seen = Seen(handler.command, handler.path, time.monotonic())
        with self._lock:
            self.seen.append(seen)
            fault = next((f for f in self.faults if f.times > 0 and f.when(seen)), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            self._fail(handler, fault)
            return
        if self.delay and self.delay_when(seen):
            time.sleep(self.delay)
        if self.upstream is None:
            self._answer(handler, 200, {}, b"")
            return
        status, headers, answer = self._forward(handler, body)
        for rewrite in self.rewrites:
            if rewrite.when(seen) and rewrite.header in headers:
                headers[rewrite.header] = rewrite.value
        self._answer(handler, status, headers, answer)

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self.upstream is not None
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(handler.command, handler.path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            kept = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            if handler.command == "HEAD":
                length = response.getheader("Content-Length")
                if length is not None:
                    kept["content-length"] = length
            return response.status, kept, answer
        finally:
            conn.close()

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if "content-length" not in headers:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    @staticmethod
    def _fail(handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        if fault.drop:
            handler.close_connection = True
            handler.connection.close()
            return
        headers = dict(fault.headers)
        headers["Connection"] = "close"
        if fault.json:
            headers["x-amzn-ErrorType"] = fault.code
            headers["Content-Type"] = "application/x-amz-json-1.1"
            body = f'{{"__type": "{fault.code}", "message": "injected"}}'.encode()
        else:
            headers["Content-Type"] = "application/xml"
            body = (
                f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{fault.code}</Code>"
                "<Message>injected</Message></Error>"
            ).encode()
        handler.close_connection = True
        FaultProxy._answer(handler, fault.status, headers, body)
