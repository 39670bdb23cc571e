"""The front: a small threaded HTTP server on 127.0.0.1 before moto_server. It serves
Lambda's Invoke itself (moto can only run functions in Docker) and forwards every
other request to moto unchanged: method, path and query, headers (Host included),
body. The answer comes back the same way. Hop-by-hop headers are the only thing
re-made, as any HTTP/1.1 proxy must.

On the way, it reads the Lambda control-plane calls that moto accepted (the
registry: where each function version's code came from, its LoggingConfig), since
moto does not keep those the way AWS uses them.

`GET /_localcloud/status` answers what `python -m localcloud status` shows; an S3
bucket cannot start with `_`, so no AWS path is shadowed.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from localcloud.httpserver import QuietServer
from localcloud.invoke_api import HttpAnswer, LambdaApiError, parse_invoke
from localcloud.registry import CodeRegistry
from localcloud.runner import FunctionRunner

CONTROL_PREFIX = "/_localcloud/"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",  # answered here already (100 Continue); the body travels in one piece
    "content-length",  # re-computed from the body actually sent
}
_UPSTREAM_TIMEOUT_S = 300


class FrontServer(QuietServer):
    request_queue_size = 64

    def __init__(
        self,
        port: int,
        *,
        moto_port: int,
        registry: CodeRegistry,
        status: Callable[[], dict[str, Any]],
        log: Callable[[str], None],
    ) -> None:
        super().__init__(("127.0.0.1", port), _FrontHandler)
        self.moto_port = moto_port
        # Set once the runner exists (it needs this server's port for AWS_ENDPOINT_URL).
        self.runner: FunctionRunner | None = None
        self.registry = registry
        self.status = status
        self.log = log
        self._upstream = threading.local()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._upstream, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.moto_port, timeout=_UPSTREAM_TIMEOUT_S
            )
            self._upstream.conn = conn
        return conn


def _read_chunked(rfile: Any) -> bytes:
    body = bytearray()
    while True:
        size_line = rfile.readline(65537)
        if not size_line:
            raise ValueError("the chunked body ended early")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += rfile.read(size)
        rfile.readline()


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the
    # peer's delayed ACK add 40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server: FrontServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per Invoke is logged instead; S3 and friends would drown it

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _read_chunked(self.rfile)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, answer: HttpAnswer) -> None:
        self._send_raw(answer.status, answer.body, list(answer.headers.items()))

    def _send_raw(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
        *,
        head_length: str | None = None,
    ) -> None:
        """Send an answer; for HEAD, `head_length` is the Content-Length to announce
        (the size of what GET would return), and no body."""
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if "date" not in {name.lower() for name, _ in headers}:
            self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", head_length or str(len(body)))
        self.end_headers()
        if head_length is None and body:
            self.wfile.write(body)

    def _handle(self) -> None:
        try:
            body = self._body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(HttpAnswer(400, b'{"message":"unreadable request body"}'))
            return
        if self.path.startswith(CONTROL_PREFIX):
            self._control()
            return
        if self.command == "POST":
            try:
                invoke = parse_invoke(self.path, dict(self.headers.items()), body)
            except LambdaApiError as exc:
                self._send(exc.answer(request_id=os.urandom(8).hex()))
                return
            if invoke is not None:
                started = time.monotonic()
                runner = self.server.runner
                if runner is None:
                    self._send(HttpAnswer(503, b'{"message":"the local cloud is starting"}'))
                    return
                answer = runner.invoke(invoke)
                error = answer.headers.get("X-Amz-Function-Error")
                self.server.log(
                    f"Invoke {invoke.function}:{invoke.invoked_qualifier} "
                    f"{invoke.invocation_type} -> {answer.status}{' ' + error if error else ''}"
                    f" ({(time.monotonic() - started) * 1000:.0f} ms)"
                )
                self._send(answer)
                return
        self._forward(body)

    def _forward(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = self.server.upstream(fresh=attempt == 2)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException, TimeoutError, OSError) as exc:
                # A kept-alive upstream connection may have been closed by moto: once more.
                if attempt == 2:
                    self._send(
                        HttpAnswer(502, json.dumps({"message": f"moto_server: {exc}"}).encode())
                    )
                    return
        data = response.read()
        if 200 <= response.status < 300 and self.command in ("POST", "PUT"):
            try:
                self.server.registry.observe(self.command, self.path, body, data)
            except Exception as exc:  # never fail the caller's request for our bookkeeping
                self.server.log(f"registry: {self.command} {self.path}: {exc}")
        head_length = None
        if self.command == "HEAD":
            head_length = response.getheader("Content-Length") or "0"
        self._send_raw(response.status, data, response.getheaders(), head_length=head_length)

    def _control(self) -> None:
        if self.command == "GET" and self.path.rstrip("/") == "/_localcloud/status":
            doc = self.server.status()
            self._send(
                HttpAnswer(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
            )
        else:
            self._send(HttpAnswer(404, b'{"message":"unknown local cloud endpoint"}'))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def do_HEAD(self) -> None:
        self._forward(b"")
