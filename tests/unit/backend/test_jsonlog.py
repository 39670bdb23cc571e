import json
import logging
import re
import threading
from datetime import datetime

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


def test_lines_use_the_keys_and_level_names_lambda_filters_on(capsys):
    # Lambda's application log-level filter reads `level` (TRACE DEBUG INFO WARN ERROR
    # FATAL) and `timestamp`; a line it cannot read counts as INFO, so a WARN-level
    # function would drop our warnings if they said WARNING.
    jsonlog.set_level("DEBUG")
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        jsonlog.log(level, "x")
    jsonlog.set_level("INFO")
    lines = _lines(capsys)
    assert [line["level"] for line in lines] == ["DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    stamp = lines[0]["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert datetime.fromisoformat(stamp).tzinfo is not None  # RFC 3339, UTC


def test_configure_caps_the_sdk_loggers_but_keeps_a_stricter_level():
    names = (*jsonlog.QUIET_LIBRARIES, "")  # "" is the root logger
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        for name in jsonlog.QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger("urllib3").setLevel(logging.ERROR)
        logging.getLogger().setLevel(logging.DEBUG)  # Lambda's runtime at DEBUG
        jsonlog.configure()
        assert logging.getLogger("botocore.parsers").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("urllib3").level == logging.ERROR
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
