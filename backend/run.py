"""One fetch invocation, after the handler has parsed the event and the settings: the
market gate's answer, or the symbols fetched, the index updated and the run record
written (docs/runtime.md "Events and responses", "Where data goes").

The handler imports this module only when a fetch runs, so test mode's cold start does
not pay for the fetch path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from backend import jsonlog
from backend.events import FetchRequest
from backend.fetcher import FetchDeps, FetchJob, SymbolResult, fetch_all, fetch_period
from backend.index import read_index, update_index
from backend.layout import index_key, run_record_key
from backend.market_calendar import MarketCalendar
from backend.providers import Provider
from backend.settings import Settings
from backend.storage import DynamoTable, S3ObjectStore


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _market(calendar: MarketCalendar, now: datetime) -> dict[str, Any]:
    return {
        "exchange": calendar.name,
        "calendar": calendar.source,
        "open": calendar.is_open(now),
        "last_closed_session": calendar.last_closed_session(now).isoformat(),
    }


def market_closed(
    settings: Settings,
    calendar: MarketCalendar,
    *,
    request_id: str,
    now: datetime,
    started: float,
) -> dict[str, Any]:
    """The answer to a scheduled run with nothing to fetch (MarketCalendar.run_due)."""
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


def fetch(
    request: FetchRequest,
    settings: Settings,
    *,
    objects: S3ObjectStore,
    table: DynamoTable,
    calendar: MarketCalendar,
    provider: Provider,
    request_id: str,
    remaining_seconds: Callable[[], float] | None,
    now: Callable[[], datetime],
    started: float,
    max_workers: int,
) -> tuple[dict[str, Any], str | None]:
    """Fetch every symbol, then the index, then the run record. Returns the response
    and, when every symbol failed, the message the handler raises with (the record is
    written first either way)."""
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
    deps = FetchDeps(provider, objects, table, calendar, now, remaining_seconds)
    results = fetch_all(job, deps, max_workers=max_workers)
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
    all_failed = None
    if len(failures) == len(results):
        reasons = "; ".join(f"{r.symbol}: {r.reason}" for r in failures[:10])
        all_failed = f"all {len(results)} symbols failed ({reasons})"

    shown = (
        "request_id", "environment", "provider", "interval", "period", "fetch_period",
        "scheduled", "market", "counts", "dropped_rows", "results", "index",
    )  # fmt: skip
    response = {
        "ok": not failures,
        "mode": "fetch",
        "status": "ok" if not failures else "partial",
        **{k: summary[k] for k in shown},
        "run_record": record_key,
        "duration_ms": summary["duration_ms"],
    }
    return response, all_failed


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
