"""Lambda's log lines for an invocation, and writing them to CloudWatch Logs in the
emulator: one stream per execution environment, named as Lambda names them
(`YYYY/MM/DD/[version]<32 hex>`), in the function's log group.

The platform's lines follow the function's LoggingConfig, as on AWS. Text format:

    INIT_START Runtime Version: python:3.12.local<TAB>Runtime Version ARN: ...
    START RequestId: <id> Version: <version>
    <the function's lines>
    END RequestId: <id>
    REPORT RequestId: <id><TAB>Duration: 12.34 ms<TAB>Billed Duration: 150 ms<TAB>
      Memory Size: 512 MB<TAB>Max Memory Used: 61 MB<TAB>Init Duration: 137.21 ms<TAB>

JSON format: `platform.initStart`, `platform.start` and `platform.report` records, and
the function's JSON lines filtered by the application log level (a line below it is
dropped, as Lambda drops it).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from localcloud.registry import LoggingConfig

TAIL_BYTES = 4096  # what `LogType: Tail` returns: the last 4 KB
_LEVELS = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4, "FATAL": 5}
_EVENT_LIMIT = 256 * 1024 - 26  # CloudWatch's event size, less its per-event overhead
_BATCH_EVENTS = 10_000
_BATCH_BYTES = 1_048_576


@dataclass(frozen=True)
class LogLine:
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class Metrics:
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None  # set on a cold start only
    status: str | None = None  # None (success), "error" or "timeout": the platform's verdict
    error_type: str | None = None  # with status "error"

    @property
    def billed_ms(self) -> int:
        # Billed per millisecond; a cold start's init is billed too (since August 2025).
        return max(1, math.ceil(self.duration_ms + (self.init_duration_ms or 0.0)))


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


def stream_name(started_ms: int, version: str, env_id: str) -> str:
    day = datetime.fromtimestamp(started_ms / 1000, UTC).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{env_id}"


class Formatter:
    """The platform's lines in the function's log format."""

    def __init__(self, logging: LoggingConfig, runtime: str, region: str) -> None:
        self.json = logging.log_format.upper() == "JSON"
        self.app_level = _LEVELS.get((logging.application_level or "").upper())
        # The platform's own records are INFO; a WARN system level drops them.
        self.platform_on = not (self.json and (logging.system_level or "").upper() == "WARN")
        self.runtime_version = f"{runtime.replace('python', 'python:')}.local"
        self.runtime_arn = f"arn:aws:lambda:{region}::runtime:local-{runtime}"

    def _record(self, ms: int, kind: str, record: dict[str, Any]) -> list[LogLine]:
        if not self.platform_on:
            return []
        return [LogLine(ms, json.dumps({"time": iso(ms), "type": kind, "record": record}))]

    def init_start(self, ms: int) -> list[LogLine]:
        if self.json:
            return self._record(
                ms,
                "platform.initStart",
                {
                    "initializationType": "on-demand",
                    "phase": "init",
                    "runtimeVersion": self.runtime_version,
                    "runtimeVersionArn": self.runtime_arn,
                },
            )
        return [
            LogLine(
                ms,
                f"INIT_START Runtime Version: {self.runtime_version}\t"
                f"Runtime Version ARN: {self.runtime_arn}",
            )
        ]

    def init_report(self, ms: int, duration_ms: float, error_type: str) -> list[LogLine]:
        if self.json:
            return self._record(
                ms,
                "platform.initReport",
                {
                    "initializationType": "on-demand",
                    "phase": "init",
                    "status": "error",
                    "errorType": error_type,
                    "metrics": {"durationMs": round(duration_ms, 2)},
                },
            )
        return [
            LogLine(
                ms,
                f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\t"
                f"Status: error\tError Type: {error_type}",
            )
        ]

    def start(self, ms: int, request_id: str, version: str) -> list[LogLine]:
        if self.json:
            return self._record(ms, "platform.start", {"requestId": request_id, "version": version})
        return [LogLine(ms, f"START RequestId: {request_id} Version: {version}")]

    def end(self, ms: int, request_id: str) -> list[LogLine]:
        return [] if self.json else [LogLine(ms, f"END RequestId: {request_id}")]

    def report(self, ms: int, request_id: str, metrics: Metrics) -> list[LogLine]:
        if self.json:
            numbers: dict[str, float | int] = {
                "durationMs": round(metrics.duration_ms, 2),
                "billedDurationMs": metrics.billed_ms,
                "memorySizeMB": metrics.memory_mb,
                "maxMemoryUsedMB": metrics.max_memory_used_mb,
            }
            if metrics.init_duration_ms is not None:
                numbers["initDurationMs"] = round(metrics.init_duration_ms, 2)
            record: dict[str, Any] = {
                "requestId": request_id,
                "metrics": numbers,
                "status": metrics.status or "success",
            }
            if metrics.error_type:
                record["errorType"] = metrics.error_type
            return self._record(ms, "platform.report", record)
        fields = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {metrics.duration_ms:.2f} ms",
            f"Billed Duration: {metrics.billed_ms} ms",
            f"Memory Size: {metrics.memory_mb} MB",
            f"Max Memory Used: {metrics.max_memory_used_mb} MB",
        ]
        if metrics.init_duration_ms is not None:
            fields.append(f"Init Duration: {metrics.init_duration_ms:.2f} ms")
        if metrics.status:
            fields.append(f"Status: {metrics.status}")
        if metrics.error_type:
            fields.append(f"Error Type: {metrics.error_type}")
        return [LogLine(ms, "\t".join(fields) + "\t")]

    def keep(self, line: LogLine) -> bool:
        """Lambda's application log level filter (JSON format only): a line is at its
        JSON `level` if it also has a valid RFC 3339 `timestamp`, else at INFO."""
        if not self.json or self.app_level is None:
            return True
        return _line_level(line.message) >= self.app_level


def _line_level(message: str) -> int:
    info = _LEVELS["INFO"]
    if not message.startswith("{"):
        return info
    try:
        doc = json.loads(message)
    except ValueError:
        return info
    if not isinstance(doc, dict) or not isinstance(doc.get("timestamp"), str):
        return info
    try:
        datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
    except ValueError:
        return info
    return _LEVELS.get(str(doc.get("level", "")).upper(), info)


def tail(lines: Iterable[LogLine]) -> str:
    text = "".join(line.message.rstrip("\n") + "\n" for line in lines)
    data = text.encode()
    return data[-TAIL_BYTES:].decode("utf-8", "ignore")


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class LogWriter:
    """PutLogEvents into the emulator, creating the group (as Lambda does, given the
    role's logs:CreateLogGroup) and the stream on first use."""

    def __init__(self, logs: Any) -> None:
        self._logs = logs
        self._lock = threading.Lock()
        self._ready: set[tuple[str, str]] = set()

    def _ensure(self, group: str, stream: str) -> None:
        with self._lock:
            if (group, stream) in self._ready:
                return
        for call, params in (
            (self._logs.create_log_group, {"logGroupName": group}),
            (self._logs.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                call(**params)
            except Exception as exc:
                if _error_code(exc) != "ResourceAlreadyExistsException":
                    raise
        with self._lock:
            self._ready.add((group, stream))

    def write(self, group: str, stream: str, lines: list[LogLine]) -> None:
        if not lines:
            return
        self._ensure(group, stream)
        # CloudWatch wants a batch in time order; the lines are in the order they
        # happened, but two pipes' stamps can disagree by a millisecond.
        events, latest = [], 0
        for line in lines:
            latest = max(latest, line.timestamp_ms)
            events.append({"timestamp": latest, "message": line.message[:_EVENT_LIMIT]})
        batch: list[dict[str, Any]] = []
        size = 0
        for event in events:
            cost = len(str(event["message"]).encode()) + 26
            if batch and (len(batch) >= _BATCH_EVENTS or size + cost > _BATCH_BYTES):
                self._put(group, stream, batch)
                batch, size = [], 0
            batch.append(event)
            size += cost
        self._put(group, stream, batch)

    def _put(self, group: str, stream: str, batch: list[dict[str, Any]]) -> None:
        self._logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
