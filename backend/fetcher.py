"""The fetch run: every symbol fetched, validated, analysed and stored, concurrently.

Each symbol is independent. Whatever goes wrong with one (provider error, no data,
an invalid bar, a failed write) becomes that symbol's failure and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime

from backend import jsonlog
from backend.analytics import summarise
from backend.models import Bar, BarError
from backend.providers import Provider, ProviderError
from backend.storage import DynamoTable, S3ObjectStore, bar_items, latest_item

MAX_WORKERS = 16
# Below this much remaining Lambda time, a symbol not yet started is skipped rather
# than started and cut off half-written by the timeout.
MIN_SECONDS_TO_START = 5.0

# Failure reasons, as they appear in the response and the run record.
PROVIDER_ERROR = "provider_error"
NO_DATA = "no_data"
INVALID_DATA = "invalid_data"
STORAGE_ERROR = "storage_error"
OUT_OF_TIME = "out_of_time"


@dataclass(frozen=True, slots=True)
class SymbolResult:
    symbol: str
    status: str  # "ok" or "failed"
    reason: str | None = None
    error: str | None = None
    bars: int = 0
    objects: int = 0
    last_bar: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class FetchJob:
    symbols: Sequence[str]
    interval: str
    period: str
    data_prefix: str


def _failed(symbol: str, reason: str, error: str) -> SymbolResult:
    jsonlog.log(logging.WARNING, "symbol failed", symbol=symbol, reason=reason, error=error)
    return SymbolResult(symbol=symbol, status="failed", reason=reason, error=error)


def _own_bars(symbol: str, job: FetchJob, bars: object) -> list[Bar]:
    # The provider validated each bar; check it answered the question we asked.
    if not isinstance(bars, list) or not all(isinstance(b, Bar) for b in bars):
        raise BarError("the provider did not return a list of bars")
    for bar in bars:
        if bar.symbol != symbol or bar.interval != job.interval:
            raise BarError(f"got a {bar.symbol}/{bar.interval} bar for {symbol}/{job.interval}")
    # Oldest first, whatever the provider did: the indicators and `last_bar` need it.
    return sorted(bars, key=lambda b: b.timestamp)


class _SymbolFailure(Exception):
    def __init__(self, reason: str, error: str):
        super().__init__(error)
        self.reason = reason
        self.error = error


def _fetch(symbol: str, job: FetchJob, provider: Provider) -> list[Bar]:
    try:
        bars = _own_bars(symbol, job, provider.fetch(symbol, job.interval, job.period))
    except BarError as err:
        raise _SymbolFailure(INVALID_DATA, str(err)) from None
    except ProviderError as err:
        raise _SymbolFailure(PROVIDER_ERROR, str(err)) from None
    except Exception as err:  # a provider bug must not sink the other symbols
        raise _SymbolFailure(PROVIDER_ERROR, f"{type(err).__name__}: {err}") from None
    if not bars:
        raise _SymbolFailure(NO_DATA, "the provider returned no bars")
    return bars


def _store(
    bars: list[Bar],
    job: FetchJob,
    *,
    objects: S3ObjectStore,
    table: DynamoTable,
    fetched_at: datetime,
) -> int:
    indicators = summarise([b.close for b in bars])
    try:
        keys = objects.put_bars(job.data_prefix, bars[0].symbol, job.interval, bars)
        items = bar_items(bars)
        items.append(
            latest_item(bars, period=job.period, indicators=indicators, fetched_at=fetched_at)
        )
        table.put_items(items)
    except Exception as err:  # botocore errors, throttling that outlasted the retries
        raise _SymbolFailure(STORAGE_ERROR, f"{type(err).__name__}: {err}") from None
    return len(keys)


def fetch_one(
    symbol: str,
    job: FetchJob,
    *,
    provider: Provider,
    objects: S3ObjectStore,
    table: DynamoTable,
    now: Callable[[], datetime],
    remaining_seconds: Callable[[], float] | None = None,
) -> SymbolResult:
    if remaining_seconds is not None and remaining_seconds() < MIN_SECONDS_TO_START:
        return _failed(symbol, OUT_OF_TIME, "skipped: the Lambda timeout is near")
    try:
        bars = _fetch(symbol, job, provider)
        written = _store(bars, job, objects=objects, table=table, fetched_at=now())
    except _SymbolFailure as failure:
        return _failed(symbol, failure.reason, failure.error)
    jsonlog.log(logging.DEBUG, "symbol stored", symbol=symbol, bars=len(bars), objects=written)
    return SymbolResult(
        symbol=symbol, status="ok", bars=len(bars), objects=written, last_bar=bars[-1].iso_time
    )


def fetch_all(
    job: FetchJob,
    *,
    provider: Provider,
    objects: S3ObjectStore,
    table: DynamoTable,
    now: Callable[[], datetime],
    remaining_seconds: Callable[[], float] | None = None,
    max_workers: int = MAX_WORKERS,
) -> list[SymbolResult]:
    """Results in the order of `job.symbols`. The pool is bounded: fetching is mostly
    waiting on the network, but an unbounded pool would open one connection per symbol."""

    def one(symbol: str) -> SymbolResult:
        return fetch_one(
            symbol,
            job,
            provider=provider,
            objects=objects,
            table=table,
            now=now,
            remaining_seconds=remaining_seconds,
        )

    workers = max(1, min(max_workers, len(job.symbols)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(one, job.symbols))
