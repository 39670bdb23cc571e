"""The Lambda Runtime API of one execution environment, served on its own 127.0.0.1
port (AWS_LAMBDA_RUNTIME_API), for the real runtime interface client (awslambdaric):

    GET  /2018-06-01/runtime/invocation/next             -> the next event (blocks)
    POST /2018-06-01/runtime/invocation/{id}/response    -> the handler's answer
    POST /2018-06-01/runtime/invocation/{id}/error       -> the handler's exception
    POST /2018-06-01/runtime/init/error                  -> the handler could not load

The first `next` ends the init phase (Init Duration); each later one ends an
invocation. The `Mailbox` is the state shared between these requests and the thread
that invoked the function, guarded by one condition variable.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from localcloud.httpserver import QuietServer

PREFIX = "/2018-06-01/runtime"
RESPONSE_LIMIT = 6 * 1024 * 1024 + 100  # what Lambda reports as its limit (6291556 bytes)
_INVOCATION = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")


@dataclass
class Delivery:
    """One invocation on its way through the runtime."""

    request_id: str
    payload: bytes
    timeout_s: float
    invoked_arn: str
    trace_id: str
    client_context: str | None = None
    # Set by the mailbox as the runtime takes it and answers.
    delivered_at: float | None = None  # time.monotonic()
    delivered_ms: int = 0  # the same moment, epoch ms
    deadline_ms: int = 0  # epoch ms: Lambda-Runtime-Deadline-Ms
    deadline_at: float = 0.0  # time.monotonic() of that deadline
    answered_at: float | None = None
    response: bytes | None = None
    error_type: str | None = None  # set with `response` holding the error document
    done: bool = False


@dataclass
class InitFailure:
    error_type: str
    body: bytes


@dataclass
class Mailbox:
    spawned_at: float  # time.monotonic() when the runtime process was started
    init_limit_s: float = 10.0  # Lambda's init phase limit for on-demand functions
    cond: threading.Condition = field(default_factory=threading.Condition)
    ready_at: float | None = None  # first `next`: the end of init
    init_failure: InitFailure | None = None
    exit_code: int | None = None  # set once the runtime process has exited
    closed: bool = False
    _queue: deque[Delivery] = field(default_factory=deque)
    _current: Delivery | None = None

    # --- the invoking side --------------------------------------------------------

    def post(self, delivery: Delivery) -> None:
        with self.cond:
            self._queue.append(delivery)
            self.cond.notify_all()

    def exited(self, code: int) -> None:
        with self.cond:
            self.exit_code = code
            self.closed = True
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # --- the runtime's side (request threads) -------------------------------------

    def next(self) -> Delivery | None:
        """Block until there is an event; None once the environment is closing."""
        with self.cond:
            now = time.monotonic()
            if self.ready_at is None:
                self.ready_at = now
            self._current = None
            self.cond.notify_all()
            while not self._queue and not self.closed:
                self.cond.wait()
            if self.closed:
                return None
            delivery = self._queue.popleft()
            now = time.monotonic()
            # An init longer than Lambda's init limit eats into the invocation's time
            # (on AWS the init is then retried inside the invocation's timeout).
            overrun = max(0.0, (self.ready_at - self.spawned_at) - self.init_limit_s)
            budget = max(0.0, delivery.timeout_s - overrun)
            delivery.delivered_at = now
            delivery.delivered_ms = int(time.time() * 1000)
            delivery.deadline_at = now + budget
            delivery.deadline_ms = int((time.time() + budget) * 1000)
            self._current = delivery
            self.cond.notify_all()
            return delivery

    def answer(self, request_id: str, body: bytes, error_type: str | None) -> bool:
        with self.cond:
            current = self._current
            if current is None or current.request_id != request_id or current.done:
                return False
            current.answered_at = time.monotonic()
            if error_type is None and len(body) > RESPONSE_LIMIT:
                error_type = "Function.ResponseSizeTooLarge"
                body = json.dumps(
                    {
                        "errorMessage": "Response payload size exceeded maximum allowed "
                        f"payload size ({RESPONSE_LIMIT} bytes).",
                        "errorType": error_type,
                    }
                ).encode()
            current.response = body
            current.error_type = error_type
            current.done = True
            self.cond.notify_all()
            return True

    def init_failed(self, error_type: str, body: bytes) -> None:
        with self.cond:
            if self.init_failure is None:
                self.init_failure = InitFailure(error_type, body)
            self.cond.notify_all()


def _error_type(headers: dict[str, str], body: bytes, default: str) -> str:
    header = headers.get("lambda-runtime-function-error-type")
    if header:
        return header
    try:
        parsed = json.loads(body)
    except ValueError:
        return default
    found = parsed.get("errorType") if isinstance(parsed, dict) else None
    return str(found) if found else default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm and the
    # peer's delayed ACK add 40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True
    server: RuntimeApiServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # the runtime polls all the time; the daemon's log stays readable

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        delivery = self.server.mailbox.next()
        if delivery is None:
            # The environment is being shut down: the runtime gets an error and exits.
            self._reply(500, b'{"errorType":"Runtime.Shutdown"}')
            self.close_connection = True
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": delivery.request_id,
            "Lambda-Runtime-Deadline-Ms": str(delivery.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": delivery.invoked_arn,
            "Lambda-Runtime-Trace-Id": delivery.trace_id,
        }
        if delivery.client_context:
            headers["Lambda-Runtime-Client-Context"] = delivery.client_context
        self._reply(200, delivery.payload, headers)

    def do_POST(self) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path == f"{PREFIX}/init/error":
            self.server.mailbox.init_failed(_error_type(headers, body, "Runtime.Unknown"), body)
            self._reply(202, b'{"status":"OK"}')
            return
        match = _INVOCATION.match(self.path)
        if match is None:
            self._reply(404, b'{"errorType":"NotFound"}')
            return
        error_type = None
        if match["what"] == "error":
            error_type = _error_type(headers, body, "Runtime.Unknown")
        if self.server.mailbox.answer(match["id"], body, error_type):
            self._reply(202, b'{"status":"OK"}')
        else:
            self._reply(
                400,
                json.dumps(
                    {
                        "errorMessage": f"Invalid request ID: {match['id']}",
                        "errorType": "InvalidRequestID",
                    }
                ).encode(),
            )


class RuntimeApiServer(QuietServer):
    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mailbox = mailbox
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.mailbox.close()
        self.shutdown()
        self.server_close()
