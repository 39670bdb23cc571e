"""Lambda's platform log lines, in both log formats, read back by the project's own
cold-start reader (ops.coldstarts) and by CloudWatch's filter in the emulator."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from localcloud.lambda_logs import (
    Formatter,
    LogLine,
    LogWriter,
    Metrics,
    now_ms,
    stream_name,
    tail,
)
from localcloud.registry import LoggingConfig
from ops.coldstarts import ReportLine, parse_report, summarise

TEXT = Formatter(LoggingConfig(), "python3.12", "us-east-1")
JSON = Formatter(LoggingConfig("JSON", None, "WARN", "INFO"), "python3.12", "us-east-1")
COLD = Metrics(duration_ms=12.345, memory_mb=512, max_memory_used_mb=61, init_duration_ms=137.21)
WARM = Metrics(duration_ms=3.2, memory_mb=512, max_memory_used_mb=61, init_duration_ms=None)


def test_text_report_is_lambdas_and_coldstarts_reads_it():
    (cold,) = TEXT.report(0, "rid", COLD)
    assert cold.message == (
        "REPORT RequestId: rid\tDuration: 12.35 ms\tBilled Duration: 150 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 61 MB\tInit Duration: 137.21 ms\t"
    )
    (warm,) = TEXT.report(0, "rid", WARM)
    assert parse_report(cold.message) == ReportLine(12.35, 137.21)
    assert parse_report(warm.message) == ReportLine(3.2, None)


def test_json_report_is_a_platform_record_coldstarts_reads():
    (cold,) = JSON.report(0, "rid", COLD)
    doc = json.loads(cold.message)
    assert doc["type"] == "platform.report" and doc["record"]["status"] == "success"
    assert doc["record"]["metrics"]["billedDurationMs"] == 150
    assert parse_report(cold.message) == ReportLine(12.35, 137.21)


def test_billed_duration_rounds_up_and_includes_a_cold_starts_init():
    assert Metrics(0.2, 128, 10, None).billed_ms == 1
    assert Metrics(10.01, 128, 10, None).billed_ms == 11
    assert Metrics(10.0, 128, 10, 100.5).billed_ms == 111


def test_failures_carry_their_status_and_error_type():
    (line,) = TEXT.report(0, "r", Metrics(3000.0, 128, 20, None, "timeout"))
    assert line.message.endswith("\tStatus: timeout\t")
    (line,) = TEXT.report(0, "r", Metrics(5.0, 128, 20, None, "error", "Runtime.ExitError"))
    assert "\tStatus: error\tError Type: Runtime.ExitError\t" in line.message
    (line,) = JSON.report(0, "r", Metrics(5.0, 128, 20, None, "error", "Runtime.ExitError"))
    assert json.loads(line.message)["record"]["errorType"] == "Runtime.ExitError"


def test_start_end_and_init_lines():
    assert TEXT.start(0, "rid", "3")[0].message == "START RequestId: rid Version: 3"
    assert TEXT.end(0, "rid")[0].message == "END RequestId: rid"
    assert TEXT.init_start(0)[0].message.startswith("INIT_START Runtime Version: python:3.12.")
    assert json.loads(JSON.start(0, "rid", "3")[0].message)["record"] == {
        "requestId": "rid",
        "version": "3",
    }
    assert JSON.end(0, "rid") == []  # JSON has no END record


def test_a_warn_system_level_drops_the_platform_records():
    quiet = Formatter(LoggingConfig("JSON", None, None, "WARN"), "python3.12", "us-east-1")
    assert quiet.start(0, "r", "1") == [] and quiet.report(0, "r", WARM) == []


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        ('{"timestamp": "2026-01-01T00:00:00Z", "level": "ERROR", "m": 1}', True),
        ('{"timestamp": "2026-01-01T00:00:00Z", "level": "WARN", "m": 1}', True),
        ('{"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "m": 1}', False),
        ('{"timestamp": "2026-01-01T00:00:00Z", "level": "DEBUG"}', False),
        # Without a valid timestamp or level, Lambda counts a line as INFO.
        ('{"level": "ERROR"}', False),
        ('{"timestamp": "yesterday", "level": "ERROR"}', False),
        ("a plain print()", False),
    ],
)
def test_the_application_log_level_filters_json_lines_as_lambda_does(message, kept):
    assert JSON.keep(LogLine(0, message)) is kept
    assert TEXT.keep(LogLine(0, message)) is True  # Text format: nothing is filtered


def test_stream_names_and_the_tail():
    # 2026-12-02T00:00:00Z in ms
    assert stream_name(1796169600000, "$LATEST", "ab" * 16) == f"2026/12/02/[$LATEST]{'ab' * 16}"
    lines = [LogLine(0, "x" * 3000), LogLine(0, "y" * 3000)]
    assert len(tail(lines).encode()) == 4096 and tail(lines).endswith("y\n")


def test_written_lines_are_found_by_cloudwatchs_report_filter():
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        writer = LogWriter(logs)
        t = now_ms()  # CloudWatch refuses events older than 14 days
        stream = stream_name(t, "1", "c" * 32)
        lines = [
            *TEXT.init_start(t),
            *TEXT.start(t + 100, "r1", "1"),
            LogLine(t + 99, "written a millisecond 'earlier' on the other pipe"),
            *TEXT.end(t + 200, "r1"),
            *TEXT.report(t + 200, "r1", COLD),
        ]
        # WHEN written twice (the group and stream are created once)
        writer.write("/aws/lambda/fn", stream, lines)
        writer.write(
            "/aws/lambda/fn",
            stream,
            [*TEXT.start(t + 300, "r2", "1"), *TEXT.report(t + 400, "r2", WARM)],
        )
        # THEN the seed's filter finds both REPORT lines and coldstarts counts one cold start
        found = logs.filter_log_events(logGroupName="/aws/lambda/fn", filterPattern="REPORT")[
            "events"
        ]
        assert [e["logStreamName"] for e in found] == [stream, stream]
        result = summarise([e["message"] for e in found], "/aws/lambda/fn", 3600)
        assert (result.invocations, result.init.count) == (2, 1)
        # AND timestamps never go backwards within a stream (CloudWatch's rule)
        stamps = [
            e["timestamp"]
            for e in logs.get_log_events(logGroupName="/aws/lambda/fn", logStreamName=stream)[
                "events"
            ]
        ]
        assert stamps == sorted(stamps)
