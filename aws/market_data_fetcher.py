"""Lambda entry point `aws.market_data_fetcher.handler`: a thin adapter over backend/.

Parse the event, read the settings, run the fetch (or the health check), shape the
response. Events, responses and the environment are documented in docs/runtime.md.
Importing this module imports no boto3, yfinance or pandas: clients and providers
are created on first use, so a cold start pays only for what the invocation needs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from backend import jsonlog
from backend.clients import AwsClients
from backend.events import EventError, FetchRequest, HealthRequest, parse_event
from backend.fetcher import MAX_WORKERS, FetchJob, SymbolResult, fetch_all, fetch_period
from backend.index import read_index, update_index
from backend.layout import index_key, run_record_key
from backend.market_calendar import MarketCalendar, get_calendar
from backend.providers import Provider, get_provider
from backend.settings import Settings, SettingsError
from backend.storage import DynamoTable, S3ObjectStore

FUNCTION = "market_data_fetcher"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# Per container: clients and the cached API key survive between warm invocations.
_container_clients: AwsClients | None = None


class AllSymbolsFailedError(RuntimeError):
    """Raised when no symbol succeeded, so that Lambda counts an error, retries
    asynchronous invocations and the Errors alarm fires."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, context, env=os.environ)


def _clients() -> AwsClients:
    global _container_clients  # noqa: PLW0603 - the per-container cache is the point
    if _container_clients is None:
        _container_clients = AwsClients(max_pool_connections=MAX_WORKERS + 4)
    return _container_clients


def _request_id(context: Any) -> str:
    rid = getattr(context, "aws_request_id", None)
    # It becomes part of an S3 key, so only a well-formed id is used as is.
    if isinstance(rid, str) and _REQUEST_ID_RE.match(rid):
        return rid
    return str(uuid.uuid4())


def _remaining_seconds(context: Any) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: remaining() / 1000.0) if callable(remaining) else None


def handle(
    event: Any,
    context: Any,
    *,
    env: Mapping[str, str],
    clients: AwsClients | None = None,
    provider: Provider | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_workers: int = MAX_WORKERS,
) -> dict[str, Any]:
    """The handler with its collaborators injectable, for tests and the benchmark."""
    started = time.monotonic()
    request_id = _request_id(context)
    jsonlog.configure()
    jsonlog.bind(request_id=request_id, function=FUNCTION)

    try:
        request = parse_event(event)
    except EventError as err:
        # A bad event will be just as bad on a retry: answer, do not raise.
        jsonlog.log(logging.WARNING, "bad event", field=err.field, error=str(err))
        return {
            "ok": False,
            "error": "bad_event",
            "field": err.field,
            "message": str(err),
            "request_id": request_id,
        }

    try:
        settings = Settings.from_env(env)
    except SettingsError as err:
        jsonlog.log(logging.ERROR, "invalid settings", problems=err.problems)
        if isinstance(request, HealthRequest):
            from backend import health

            checks = [health.Check("settings", health.ERROR, p) for p in err.problems]
            return health.report(checks, request_id=request_id)
        raise

    jsonlog.set_level(settings.log_level)
    jsonlog.bind(request_id=request_id, function=FUNCTION, environment=settings.environment)
    clients = clients or _clients()

    if isinstance(request, HealthRequest):
        objects = S3ObjectStore(client=clients.get("s3"), bucket=settings.bucket_name)
        table = DynamoTable(client=clients.get("dynamodb"), table_name=settings.table_name)
        return _health(settings, clients, objects, table, request_id)

    calendar = get_calendar()  # exchange_calendars (pandas) loads here, once per container
    if request.scheduled and not calendar.run_due(now()):
        # Nothing can have changed since the last close: no AWS client, no provider
        # call, no write (not even a run record); this answer and one log line.
        return _market_closed(settings, calendar, request_id, now(), started)

    return _fetch(
        request,
        settings,
        objects=S3ObjectStore(client=clients.get("s3"), bucket=settings.bucket_name),
        table=DynamoTable(client=clients.get("dynamodb"), table_name=settings.table_name),
        calendar=calendar,
        provider=provider or get_provider(settings.provider),
        request_id=request_id,
        context=context,
        now=now,
        started=started,
        max_workers=max_workers,
    )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _market(calendar: MarketCalendar, now: datetime) -> dict[str, Any]:
    return {
        "exchange": calendar.name,
        "calendar": calendar.source,
        "open": calendar.is_open(now),
        "last_closed_session": calendar.last_closed_session(now).isoformat(),
    }


def _market_closed(
    settings: Settings,
    calendar: MarketCalendar,
    request_id: str,
    now: datetime,
    started: float,
) -> dict[str, Any]:
    next_open = calendar.next_open(now)
    market = _market(calendar, now)
    response = {
        "ok": True,
        "mode": "fetch",
        "status": "market_closed",
        "request_id": request_id,
        "environment": settings.environment,
        "scheduled": True,
        "market": market,
        "next_open": _stamp(next_open) if next_open else None,
        "duration_ms": round((time.monotonic() - started) * 1000),
    }
    jsonlog.log(
        logging.INFO,
        "market closed",
        last_closed_session=market["last_closed_session"],
        next_open=response["next_open"],
    )
    return response


def _fetch(
    request: FetchRequest,
    settings: Settings,
    *,
    objects: S3ObjectStore,
    table: DynamoTable,
    calendar: MarketCalendar,
    provider: Provider,
    request_id: str,
    context: Any,
    now: Callable[[], datetime],
    started: float,
    max_workers: int,
) -> dict[str, Any]:
    started_at = now()
    key = index_key(settings.data_prefix)
    job = FetchJob(
        symbols=request.symbols or settings.symbols,
        interval=request.interval,
        period=request.period,
        data_prefix=settings.data_prefix,
        index=read_index(objects, key),
    )
    jsonlog.log(
        logging.INFO,
        "fetch started",
        symbols=len(job.symbols),
        interval=job.interval,
        period=job.period,
        fetch_period=fetch_period(job.interval, job.period),
        scheduled=request.scheduled,
        provider=settings.provider,
    )
    results = fetch_all(
        job,
        provider=provider,
        objects=objects,
        table=table,
        calendar=calendar,
        now=now,
        remaining_seconds=_remaining_seconds(context),
        max_workers=max_workers,
    )
    index_written = _write_index(objects, key, results, now())
    failures = [r for r in results if r.status != "ok"]
    summary = {
        "request_id": request_id,
        "environment": settings.environment,
        "provider": settings.provider,
        "interval": job.interval,
        "period": job.period,
        "fetch_period": fetch_period(job.interval, job.period),
        "scheduled": request.scheduled,
        "market": _market(calendar, started_at),
        "started_at": _stamp(started_at),
        "duration_ms": round((time.monotonic() - started) * 1000),
        "symbols": list(job.symbols),
        "counts": {
            "requested": len(results),
            "succeeded": len(results) - len(failures),
            "failed": len(failures),
        },
        "dropped_rows": sum(r.dropped for r in results),
        "failures": [r.to_dict() for r in failures],
        "results": [r.to_dict() for r in results],
        "index": key if index_written is not None else None,
    }
    record_key = _write_run_record(objects, settings, started_at, request_id, summary)

    level = logging.INFO if not failures else logging.WARNING
    jsonlog.log(
        level,
        "fetch finished",
        counts=summary["counts"],
        dropped_rows=summary["dropped_rows"],
        duration_ms=summary["duration_ms"],
    )
    if len(failures) == len(results):
        reasons = "; ".join(f"{r.symbol}: {r.reason}" for r in failures[:10])
        raise AllSymbolsFailedError(f"all {len(results)} symbols failed ({reasons})")

    shown = (
        "request_id", "environment", "provider", "interval", "period", "fetch_period",
        "scheduled", "market", "counts", "dropped_rows", "results", "index",
    )  # fmt: skip
    return {
        "ok": not failures,
        "mode": "fetch",
        "status": "ok" if not failures else "partial",
        **{k: summary[k] for k in shown},
        "run_record": record_key,
        "duration_ms": summary["duration_ms"],
    }


def _write_index(
    objects: S3ObjectStore, key: str, results: list[SymbolResult], now: datetime
) -> bool | None:
    """Update the index with what the run stored. None: it could not be written; the
    bars are stored, and the next run's index update covers them again."""
    updates = [r.series for r in results if r.series is not None]
    try:
        return update_index(objects, key, updates, now=now)
    except Exception as err:
        jsonlog.log(
            logging.ERROR, "index not written", key=key, error=f"{type(err).__name__}: {err}"
        )
        return None


def _write_run_record(
    objects: S3ObjectStore,
    settings: Settings,
    started_at: datetime,
    request_id: str,
    summary: dict[str, Any],
) -> str | None:
    key = run_record_key(settings.logs_prefix, started_at.date(), request_id)
    body = json.dumps(summary, sort_keys=True, indent=1).encode()
    try:
        objects.put(key, body, content_type="application/json")
    except Exception as err:
        # The bars are stored; losing the record must not turn the run into a failure
        # (a retry would refetch everything). The error line is what alarms watch.
        jsonlog.log(
            logging.ERROR, "run record not written", key=key, error=f"{type(err).__name__}: {err}"
        )
        return None
    return key


def _health(
    settings: Settings,
    clients: AwsClients,
    objects: S3ObjectStore,
    table: DynamoTable,
    request_id: str,
) -> dict[str, Any]:
    from backend import health

    secret = (
        clients.secret_reader(settings.api_key_secret_arn) if settings.api_key_secret_arn else None
    )
    checks = health.run_checks(settings, objects=objects, table=table, secret=secret)
    result = health.report(checks, request_id=request_id, environment=settings.environment)
    jsonlog.log(
        logging.INFO if result["ok"] else logging.ERROR,
        "health check",
        ok=result["ok"],
        checks={c.name: c.status for c in checks},
    )
    return result
