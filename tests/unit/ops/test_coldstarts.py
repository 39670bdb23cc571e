"""Cold starts from REPORT lines put into moto's CloudWatch Logs."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.stub import Stubber

from lambda_pkg.errors import UserError
from ops.cli import main
from ops.coldstarts import ReportLine, parse_report, parse_since, percentile, read_reports

FUNCTION = "market_data_fetcher-dev"
GROUP = f"/aws/lambda/{FUNCTION}"


def report(duration: float, init: float | None = None) -> str:
    line = (
        f"REPORT RequestId: 8f5e0c1e-0000-0000-0000-000000000000\tDuration: {duration} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: 512 MB\tMax Memory Used: 90 MB\t"
    )
    if init is not None:
        line += f"Init Duration: {init} ms\t"
    return line + "\n"


def test_parse_text_report_lines():
    assert parse_report(report(102.25, 350.5)) == ReportLine(102.25, 350.5)
    assert parse_report(report(7.0)) == ReportLine(7.0, None)
    assert parse_report("START RequestId: x Version: $LATEST") is None
    assert parse_report("INFO fetched 3 symbols; Duration: 5 ms") is None


def test_parse_json_platform_report():
    record = {
        "time": "2026-01-01T00:00:00Z",
        "type": "platform.report",
        "record": {"requestId": "r", "metrics": {"durationMs": 12.5, "initDurationMs": 300.0}},
    }
    assert parse_report(json.dumps(record)) == ReportLine(12.5, 300.0)
    record["record"]["metrics"].pop("initDurationMs")
    assert parse_report(json.dumps(record)) == ReportLine(12.5, None)
    assert parse_report(json.dumps({"type": "platform.start"})) is None


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([3.0], 95) == 3.0


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_since(text, seconds):
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["24", "1w", "0h", "-5m", "h", "100d"])
def test_bad_since(text):
    with pytest.raises(UserError, match="--since"):
        parse_since(text)


@pytest.fixture
def log_group(aws):
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s1")
    now = int(time.time() * 1000)
    old = now - 3 * 86400 * 1000
    messages = [
        (old, report(999.0, 5000.0)),  # older than the window
        (now - 5000, "START RequestId: a Version: 3\n"),
        (now - 4000, report(120.0, 400.0)),
        (now - 3000, report(80.0)),
        (now - 2000, report(100.0)),
        (now - 1000, report(60.0, 300.0)),
        (now - 500, "END RequestId: a\n"),
    ]
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s1",
        logEvents=[{"timestamp": t, "message": m} for t, m in messages],
    )
    return logs


def test_coldstarts_counts_and_percentiles(log_group, capsys):
    assert main(["coldstarts", "--function", FUNCTION, "--since", "24h", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["invocations"] == 4
    assert data["cold_starts"] == 2
    assert data["init_duration_ms"] == {"count": 2, "p50": 300.0, "p95": 400.0, "max": 400.0}
    assert data["duration_ms"] == {"count": 4, "p50": 80.0, "p95": 120.0, "max": 120.0}


def test_coldstarts_window_includes_older_reports_when_wider(log_group, capsys):
    assert main(["coldstarts", "--function", FUNCTION, "--since", "7d", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["invocations"] == 5 and data["init_duration_ms"]["max"] == 5000.0


def test_coldstarts_table(log_group, capsys):
    assert main(["coldstarts", "--function", FUNCTION]) == 0
    out = capsys.readouterr().out
    assert "4 invocations, 2 cold starts (50.0%)" in out
    assert "last 24h" in out  # the default window, as the user would write it
    assert "Init Duration        2     300.0     400.0     400.0" in out


def test_coldstarts_missing_log_group(aws, capsys):
    assert main(["coldstarts", "--function", "never-ran"]) == 2
    assert "log group /aws/lambda/never-ran not found" in capsys.readouterr().err


def test_coldstarts_bad_since_fails_before_any_call(capsys, monkeypatch):
    monkeypatch.setattr("ops.session.AwsSession.logs", pytest.fail)
    assert main(["coldstarts", "--function", FUNCTION, "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err


def test_reports_are_read_from_every_page():
    client = boto3.client("logs", region_name="us-east-1")
    with Stubber(client) as stub:
        first = {
            "logGroupName": GROUP,
            "startTime": 1000,
            "filterPattern": '?REPORT ?"platform.report"',
        }
        stub.add_response(
            "filter_log_events", {"events": [{"message": report(1.0)}], "nextToken": "t"}, first
        )
        stub.add_response(
            "filter_log_events",
            {"events": [{"message": report(2.0, 9.0)}]},
            {**first, "nextToken": "t"},
        )
        messages = read_reports(client, GROUP, 1, now=2.0)
    assert [parse_report(m) for m in messages] == [ReportLine(1.0), ReportLine(2.0, 9.0)]
