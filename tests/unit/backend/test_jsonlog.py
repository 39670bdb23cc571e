import json
import logging
import threading

from backend import jsonlog


def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_each_event_is_one_json_line_with_the_bound_request_id(capsys):
    jsonlog.set_level("INFO")
    jsonlog.bind(request_id="req-1", environment="dev")
    jsonlog.log(logging.INFO, "fetch started", symbols=3)
    jsonlog.log(logging.WARNING, "symbol failed", symbol="AAPL", error="line one\nline two")
    first, second = _lines(capsys)
    assert first["message"] == "fetch started"
    assert first["request_id"] == "req-1" and first["environment"] == "dev"
    assert first["symbols"] == 3 and first["level"] == "INFO"
    assert second["error"] == "line one\nline two"  # escaped inside its one line


def test_level_filters_and_threads_share_the_request_id(capsys):
    jsonlog.bind(request_id="req-2")
    jsonlog.set_level("WARNING")
    jsonlog.log(logging.INFO, "hidden")
    worker = threading.Thread(target=lambda: jsonlog.log(logging.ERROR, "from a thread"))
    worker.start()
    worker.join()
    jsonlog.set_level("INFO")
    (line,) = _lines(capsys)
    assert line["message"] == "from a thread" and line["request_id"] == "req-2"


def test_exception_is_kept_on_the_same_line(capsys):
    jsonlog.bind(request_id="req-3")
    try:
        raise ValueError("boom")
    except ValueError:
        jsonlog.log(logging.ERROR, "failed", exc_info=True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "ValueError: boom" in json.loads(out)["exception"]


def test_rebinding_replaces_the_previous_invocations_fields(capsys):
    jsonlog.bind(request_id="old", environment="dev")
    jsonlog.bind(request_id="new")
    jsonlog.log(logging.INFO, "x")
    (line,) = _lines(capsys)
    assert line["request_id"] == "new" and "environment" not in line


def test_an_adopted_library_logger_writes_our_json_lines(capsys):
    jsonlog.bind(request_id="req-4")
    jsonlog.adopt("some.library")
    logging.getLogger("some.library").warning("Failed to get ticker 'AAPL'")
    logging.getLogger("some.library").info("chatter below WARNING is dropped")
    (line,) = _lines(capsys)
    assert line["message"] == "Failed to get ticker 'AAPL'" and line["request_id"] == "req-4"
