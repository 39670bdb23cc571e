"""The two channels between an execution environment and the local cloud: its output
(stdout lines and the runtime client's telemetry frames, as Lambda collects them) and
the Runtime API the runtime interface client polls."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time

from localcloud.capture import LogCapture
from localcloud.runtime_api import RESPONSE_LIMIT, Delivery, Mailbox, RuntimeApiServer


def _frame(message: str, micros: int) -> bytes:
    data = message.encode()
    # awslambdaric's FramedTelemetryLogSink: type, length, timestamp (us), message.
    return (
        bytes.fromhex("a55a0003") + len(data).to_bytes(4, "big") + micros.to_bytes(8, "big") + data
    )


def test_stdout_lines_and_telemetry_frames_become_log_lines():
    out_r, out_w = os.pipe()
    tel_r, tel_w = os.pipe()
    capture = LogCapture(out_r, tel_r)
    capture.start()
    try:
        # GIVEN two printed lines and a half line, and a multi-line traceback as one frame
        os.write(out_w, b"first\nsecond\r\nhalf")
        os.write(
            tel_w,
            _frame(
                "[ERROR] boom\nTraceback (most recent call last):\n  x\n", 1_700_000_000_123_456
            ),
        )
        # WHEN everything written so far is synced and taken
        capture.sync()
        lines = capture.take()
    finally:
        os.close(out_w)
        os.close(tel_w)
        capture.close()
    by_text = {line.message: line for line in lines}
    # THEN each printed line is one event, the unfinished one included, and the frame is one
    assert set(by_text) == {
        "first",
        "second",
        "half",
        "[ERROR] boom\nTraceback (most recent call last):\n  x",
    }
    # AND a frame keeps the timestamp the runtime wrote it with (ms)
    assert (
        by_text["[ERROR] boom\nTraceback (most recent call last):\n  x"].timestamp_ms
        == 1_700_000_000_123
    )


def test_a_frame_split_across_writes_is_reassembled():
    out_r, out_w = os.pipe()
    tel_r, tel_w = os.pipe()
    capture = LogCapture(out_r, tel_r)
    capture.start()
    frame = _frame("one record", 1_000_000)
    try:
        os.write(tel_w, frame[:10])
        capture.sync()
        assert capture.take() == []
        os.write(tel_w, frame[10:])
        capture.sync()
        assert [line.message for line in capture.take()] == ["one record"]
    finally:
        os.close(out_w)
        os.close(tel_w)
        capture.close()


def _call(server: RuntimeApiServer, method: str, path: str, body: bytes = b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def _delivery(rid: str, timeout_s: float = 3.0) -> Delivery:
    return Delivery(
        request_id=rid,
        payload=b'{"a": 1}',
        timeout_s=timeout_s,
        invoked_arn="arn:fn",
        trace_id="Root=1",
    )


def test_next_hands_over_the_event_with_lambdas_headers_and_the_answer_comes_back():
    box = Mailbox(spawned_at=time.monotonic())
    server = RuntimeApiServer(box)
    server.start()
    try:
        delivery = _delivery("rid-1")
        box.post(delivery)
        status, headers, body = _call(server, "GET", "/2018-06-01/runtime/invocation/next")
        assert (status, body) == (200, b'{"a": 1}')
        assert headers["Lambda-Runtime-Aws-Request-Id"] == "rid-1"
        assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:fn"
        deadline = int(headers["Lambda-Runtime-Deadline-Ms"])
        assert 2500 < deadline - time.time() * 1000 <= 3000
        assert box.ready_at is not None  # the first `next` ends the init phase
        status, _, _ = _call(
            server, "POST", "/2018-06-01/runtime/invocation/rid-1/response", b'"ok"'
        )
        assert status == 202
        assert delivery.done and delivery.response == b'"ok"' and delivery.error_type is None
        # AND an answer for an invocation that is not the current one is refused
        status, _, body = _call(
            server, "POST", "/2018-06-01/runtime/invocation/rid-1/response", b"1"
        )
        assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"
    finally:
        server.stop()


def test_errors_carry_their_type_from_the_header_or_the_body():
    box = Mailbox(spawned_at=time.monotonic())
    server = RuntimeApiServer(box)
    server.start()
    try:
        delivery = _delivery("rid-2")
        box.post(delivery)
        _call(server, "GET", "/2018-06-01/runtime/invocation/next")
        error = json.dumps({"errorType": "ValueError", "errorMessage": "bad"}).encode()
        _call(server, "POST", "/2018-06-01/runtime/invocation/rid-2/error", error)
        assert delivery.error_type == "ValueError" and delivery.response == error
        # AND an init error is kept for the waiting invocation
        _call(
            server,
            "POST",
            "/2018-06-01/runtime/init/error",
            b'{"errorType": "x"}',
            {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"},
        )
        assert (
            box.init_failure is not None
            and box.init_failure.error_type == "Runtime.ImportModuleError"
        )
    finally:
        server.stop()


def test_an_oversize_response_becomes_lambdas_size_error():
    box = Mailbox(spawned_at=time.monotonic())
    delivery = _delivery("rid-3")
    box.post(delivery)
    assert box.next() is delivery
    assert box.answer("rid-3", b"x" * (RESPONSE_LIMIT + 1), None)
    assert delivery.error_type == "Function.ResponseSizeTooLarge"


def test_a_slow_init_eats_into_the_invocations_time():
    # GIVEN an environment whose init took 12 s against a 10 s init limit
    box = Mailbox(spawned_at=time.monotonic() - 12, init_limit_s=10)
    delivery = _delivery("rid-4", timeout_s=5)
    box.post(delivery)
    box.next()
    # THEN the event gets its 5 s less the 2 s over the limit
    assert 2.5 < delivery.deadline_at - time.monotonic() <= 3.0


def test_closing_wakes_a_waiting_next_with_none():
    box = Mailbox(spawned_at=time.monotonic())
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(box.next()))
    waiter.start()
    time.sleep(0.1)
    box.close()
    waiter.join(timeout=5)
    assert got == [None]
