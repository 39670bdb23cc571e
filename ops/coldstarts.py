"""Cold starts from a function's REPORT log lines: the seed's "monitor cold start times".

Lambda ends every invocation with a REPORT line; only the first invocation in a
new execution environment (a cold start) carries "Init Duration". Both the text
format and the JSON log format ("platform.report" records) are read.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lambda_pkg.errors import UserError
from ops.session import error_code

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

_SINCE = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?<!Billed )(?<!Init )Duration: ([\d.]+) ms")
_INIT = re.compile(r"Init Duration: ([\d.]+) ms")


def parse_since(text: str) -> int:
    """'30m', '24h', '7d' -> seconds."""
    match = _SINCE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise UserError(f"--since {text!r}: use a number and a unit m, h or d, e.g. 30m, 24h, 7d")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > 90 * 86400:
        raise UserError(f"--since {text!r}: at most 90d")
    return seconds


@dataclass(frozen=True)
class ReportLine:
    """One invocation's REPORT: its duration, and its Init Duration on a cold start."""

    duration_ms: float
    init_duration_ms: float | None = None


def parse_report(message: str) -> ReportLine | None:
    """The ReportLine in one log event, or None if it is not a REPORT record."""
    text = message.strip()
    if text.startswith("{"):
        return _parse_json_report(text)
    if not text.startswith("REPORT "):
        return None
    duration = _DURATION.search(text)
    if not duration:
        return None
    init = _INIT.search(text)
    return ReportLine(float(duration.group(1)), float(init.group(1)) if init else None)


def _parse_json_report(text: str) -> ReportLine | None:
    """Lambda's JSON log format: {"type": "platform.report", "record": {"metrics": ...}}."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("type") != "platform.report":
        return None
    metrics = (record.get("record") or {}).get("metrics") or {}
    if "durationMs" not in metrics:
        return None
    init = metrics.get("initDurationMs")
    return ReportLine(float(metrics["durationMs"]), float(init) if init is not None else None)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: always one of the observed values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Stats:
    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        if not values:
            return cls(0, None, None, None)
        return cls(len(values), percentile(values, 50), percentile(values, 95), max(values))


@dataclass
class ColdStarts:
    log_group: str
    since_seconds: int
    invocations: int
    init: Stats
    duration: Stats

    def to_json(self) -> dict[str, Any]:
        return {
            "log_group": self.log_group,
            "since_seconds": self.since_seconds,
            "invocations": self.invocations,
            "cold_starts": self.init.count,
            "init_duration_ms": asdict(self.init),
            "duration_ms": asdict(self.duration),
        }


def summarise(messages: list[str], log_group: str, since_seconds: int) -> ColdStarts:
    reports = [r for r in map(parse_report, messages) if r is not None]
    durations = [r.duration_ms for r in reports]
    inits = [r.init_duration_ms for r in reports if r.init_duration_ms is not None]
    return ColdStarts(
        log_group, since_seconds, len(durations), Stats.of(inits), Stats.of(durations)
    )


def read_reports(
    logs: CloudWatchLogsClient, log_group: str, since_seconds: int, *, now: float | None = None
) -> list[str]:
    """Every REPORT message in the log group since `since_seconds` ago. The filter
    pattern narrows the transfer; parse_report still checks each line. botocore's
    paginator follows nextToken, and each page gets the client's retries."""
    start_ms = int(((now if now is not None else time.time()) - since_seconds) * 1000)
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=log_group,
        startTime=start_ms,
        # Text REPORT lines or JSON-format platform.report records.
        filterPattern='?REPORT ?"platform.report"',
    )
    try:
        return [event.get("message", "") for page in pages for event in page.get("events", [])]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise UserError(
                f"log group {log_group} not found: the function has not run yet, or the name "
                "or --region is wrong (pass --log-group to override)"
            ) from None
        raise


def coldstarts(
    logs: CloudWatchLogsClient, function: str, *, since: str = "24h", log_group: str | None = None
) -> ColdStarts:
    seconds = parse_since(since)
    group = log_group or f"/aws/lambda/{function}"
    return summarise(read_reports(logs, group, seconds), group, seconds)


def format_table(result: ColdStarts) -> str:
    share = f" ({100 * result.init.count / result.invocations:.1f}%)" if result.invocations else ""
    lines = [
        f"{result.log_group}, last {_human(result.since_seconds)}: "
        f"{result.invocations} invocations, {result.init.count} cold starts{share}",
        f"{'':<15}{'count':>7}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}",
    ]
    for name, stats in (("Init Duration", result.init), ("Duration", result.duration)):
        cells = [f"{v:.1f}" if v is not None else "-" for v in (stats.p50, stats.p95, stats.max)]
        lines.append(f"{name:<15}{stats.count:>7}{cells[0]:>10}{cells[1]:>10}{cells[2]:>10}")
    return "\n".join(lines)


def _human(seconds: int) -> str:
    # Days only from 2 days on, so `--since 24h` reads back as "24h", not "1d".
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and (unit != "d" or seconds >= 2 * size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
