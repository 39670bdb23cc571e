"""The fetch run: every symbol fetched, validated, marked final or not, analysed and
stored, concurrently.

Per symbol (docs/runtime.md "What a run does"):
  1. fetch at least the indicators' warm-up (`fetch_period`), whatever period was asked;
  2. drop and count the rows that fail validation;
  3. mark each bar final or not on the exchange calendar;
  4. write what the store lacks and the requested period: final bars into their S3
     objects (merged, conditionally; a series the index does not know yet gets all
     it fetched), the same bars plus the unfinished one into the table;
  5. LATEST: the newest final bar with indicators over every fetched final bar,
     back-adjusted, so each is within 0.01 of its full-history value.
Each symbol is independent. Whatever goes wrong with one (provider error, no data, a
failed write) becomes that symbol's failure and the others go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from backend import jsonlog
from backend.adjust import back_adjust
from backend.analytics import WARMUP_BARS, summarise
from backend.index import Index, Series
from backend.layout import bar_object_key
from backend.market_calendar import CalendarError, MarketCalendar
from backend.models import PERIOD_SECONDS, Bar
from backend.providers import Batch, Provider, ProviderError, Rejected
from backend.storage import DynamoTable, S3ObjectStore, bar_items, latest_item

MAX_WORKERS = 16
# Below this much remaining Lambda time, a symbol not yet started is skipped rather
# than started and cut off half-written by the timeout.
MIN_SECONDS_TO_START = 5.0
# Rejected rows listed per symbol in the response and the run record (all are counted).
MAX_REJECTED_SHOWN = 10

# The period fetched for each interval so that at least WARMUP_BARS bars precede the
# newest one, within what Yahoo serves (backend.models._INTRADAY_PERIODS). 90m bars are
# served for a month only, about 105 bars: the one interval short of the warm-up.
WARMUP_PERIOD = {
    "1m": "5d",
    "2m": "1mo",
    "5m": "1mo",
    "15m": "1mo",
    "30m": "1mo",
    "90m": "1mo",
    "60m": "3mo",
    "1h": "3mo",
    "1d": "1y",
    "5d": "5y",
    "1wk": "5y",
    "1mo": "max",
    "3mo": "max",
}

# Failure reasons, as they appear in the response and the run record.
PROVIDER_ERROR = "provider_error"
NO_DATA = "no_data"
INVALID_DATA = "invalid_data"
STORAGE_ERROR = "storage_error"
OUT_OF_TIME = "out_of_time"


def _span(period: str) -> float:
    if period == "max":
        return float("inf")
    if period == "ytd":
        return PERIOD_SECONDS["1y"] - 1  # never more than a year
    return PERIOD_SECONDS[period]


def fetch_period(interval: str, period: str) -> str:
    """The longer of the requested period and the interval's warm-up period."""
    return max(period, WARMUP_PERIOD[interval], key=_span)


# Yahoo counts these periods in sessions ("5d" is the last five trading days).
_SESSION_PERIODS = {"1d": 1, "5d": 5}


def requested_days(period: str, days: Sequence[date], now: datetime) -> set[date] | None:
    """The bar dates (oldest first in `days`) a requested period covers; None: all."""
    if period == "max":
        return None
    sessions = _SESSION_PERIODS.get(period)
    if sessions is not None:
        return set(sorted(set(days))[-sessions:])
    first = (
        date(now.year, 1, 1)
        if period == "ytd"
        else (now - timedelta(seconds=PERIOD_SECONDS[period])).date()
    )
    return {d for d in days if d >= first}


@dataclass(frozen=True, slots=True)
class SymbolResult:
    symbol: str
    status: str  # "ok" or "failed"
    reason: str | None = None
    error: str | None = None
    bars: int = 0  # bars written to the table (the requested period and what is new)
    added: int = 0  # final bars added to the S3 history
    fetched: int = 0  # valid bars received, the warm-up included
    dropped: int = 0  # rows that failed validation
    objects: int = 0  # S3 objects rewritten
    last_bar: str | None = None  # the newest bar, final or not
    last_final: str | None = None  # the newest final bar
    latest: str | None = None  # "written", or why the LATEST item was left as it was
    rejected: tuple[Rejected, ...] = ()
    series: Series | None = field(default=None, compare=False)  # for the index

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"symbol": self.symbol, "status": self.status}
        if self.reason is not None:
            doc["reason"] = self.reason
            doc["error"] = self.error
        else:
            doc.update(
                bars=self.bars,
                added=self.added,
                fetched=self.fetched,
                dropped=self.dropped,
                objects=self.objects,
                last_bar=self.last_bar,
                last_final=self.last_final,
                latest=self.latest,
            )
        if self.rejected:
            doc["dropped"] = self.dropped
            doc["rejected"] = [r.to_dict() for r in self.rejected[:MAX_REJECTED_SHOWN]]
        return doc


@dataclass(frozen=True, slots=True)
class FetchJob:
    symbols: Sequence[str]
    interval: str
    period: str  # what to store at least; the fetch reaches back to the warm-up
    data_prefix: str
    index: Index = field(default_factory=Index)  # what the store held when the run began


def _failed(
    symbol: str, reason: str, error: str, *, rejected: Sequence[Rejected] = ()
) -> SymbolResult:
    jsonlog.log(logging.WARNING, "symbol failed", symbol=symbol, reason=reason, error=error)
    return SymbolResult(
        symbol=symbol,
        status="failed",
        reason=reason,
        error=error,
        dropped=len(rejected),
        rejected=tuple(rejected),
    )


class _SymbolFailure(Exception):
    def __init__(self, reason: str, error: str, rejected: Sequence[Rejected] = ()):
        super().__init__(error)
        self.reason = reason
        self.error = error
        self.rejected = rejected


def _fetch(symbol: str, job: FetchJob, provider: Provider) -> Batch:
    period = fetch_period(job.interval, job.period)
    try:
        batch = provider.fetch(symbol, job.interval, period)
    except ProviderError as err:
        raise _SymbolFailure(PROVIDER_ERROR, str(err)) from None
    except Exception as err:  # a provider bug must not sink the other symbols
        raise _SymbolFailure(PROVIDER_ERROR, f"{type(err).__name__}: {err}") from None
    # Check the provider answered the question we asked: a wrong answer is no bad row.
    if not isinstance(batch, Batch) or not all(isinstance(b, Bar) for b in batch.bars):
        raise _SymbolFailure(INVALID_DATA, "the provider did not return a batch of bars")
    for bar in batch.bars:
        if bar.symbol != symbol or bar.interval != job.interval:
            raise _SymbolFailure(
                INVALID_DATA, f"got a {bar.symbol}/{bar.interval} bar for {symbol}/{job.interval}"
            )
    if not batch.bars:
        if batch.rejected:
            first = batch.rejected[0]
            raise _SymbolFailure(
                INVALID_DATA,
                f"all {len(batch.rejected)} rows failed validation "
                f"(first: {first.timestamp}: {first.reason})",
                batch.rejected,
            )
        raise _SymbolFailure(NO_DATA, "the provider returned no bars")
    if batch.rejected:
        first = batch.rejected[0]
        jsonlog.log(
            logging.WARNING,
            "rows dropped",
            symbol=symbol,
            dropped=len(batch.rejected),
            first=f"{first.timestamp}: {first.reason}",
        )
    # Oldest first, whatever the provider did: the indicators and `last_bar` need it.
    return Batch(bars=sorted(batch.bars, key=lambda b: b.timestamp), rejected=batch.rejected)


def _mark_final(bars: list[Bar], calendar: MarketCalendar, now: datetime) -> list[Bar]:
    def final(bar: Bar) -> bool:
        try:
            return calendar.is_final(bar.timestamp, bar.interval, now)
        except CalendarError:
            # A date the calendar does not cover (a bar from the future): not final is
            # the safe answer, it only keeps the bar out of the history for now.
            return False

    return [bar if final(bar) else replace(bar, final=False) for bar in bars]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a run writes for one symbol."""

    history: list[Bar]  # final bars for S3: what it may lack, and the requested period
    recent: list[Bar]  # bars for the table: the requested period, and what is new


def _plan(bars: list[Bar], job: FetchJob, previous: Series | None, now: datetime) -> _Plan:
    days = requested_days(job.period, [b.timestamp.date() for b in bars], now)
    known = previous.last_final if previous else None

    def requested(bar: Bar) -> bool:
        return days is None or bar.timestamp.date() in days

    def new(bar: Bar) -> bool:
        return known is not None and bar.iso_time > known

    return _Plan(
        # A series the index does not know yet gets its whole fetched history (a year
        # of daily bars on the first scheduled run), so the warm-up is stored too.
        history=[b for b in bars if b.final and (known is None or new(b) or requested(b))],
        recent=[b for b in bars if requested(b) or new(b)],
    )


def _latest(
    finals: list[Bar], job: FetchJob, previous: Series | None, fetched_at: datetime
) -> tuple[dict[str, Any] | None, str]:
    """The LATEST item, or None and why it is kept as it is."""
    if not finals:
        return None, "kept: no final bar fetched"
    newest = finals[-1]
    if previous and previous.last_final and newest.iso_time < previous.last_final:
        return None, f"kept: the provider's newest final bar is older than {previous.last_final}"
    whole_history = (
        previous is None or previous.first is None or finals[0].iso_time <= previous.first
    )
    if len(finals) < WARMUP_BARS and not whole_history:
        # Fewer bars than the warm-up, and the store has older ones: the indicators
        # would be off, so LATEST keeps the values of the last complete run.
        return None, f"kept: only {len(finals)} final bars fetched (warm-up {WARMUP_BARS})"
    indicators = summarise([b.close for b in back_adjust(finals)])
    item = latest_item(
        newest, period=job.period, indicators=indicators, history=len(finals), fetched_at=fetched_at
    )
    return item, "written"


@dataclass(frozen=True, slots=True)
class _Stored:
    bars: int  # items written to the table
    added: int  # bars the S3 history did not hold before
    objects: int  # S3 objects rewritten
    latest: str
    series: Series | None


def _store(
    bars: list[Bar],
    job: FetchJob,
    *,
    objects: S3ObjectStore,
    table: DynamoTable,
    fetched_at: datetime,
) -> _Stored:
    """S3 first, then the table, so a reader that sees a bar in the table (or LATEST
    move) finds it in S3 too; the index comes after every symbol."""
    symbol = bars[0].symbol
    previous = job.index.get(symbol, job.interval)
    plan = _plan(bars, job, previous, fetched_at)
    latest, note = _latest([b for b in bars if b.final], job, previous, fetched_at)
    by_object: dict[str, list[Bar]] = defaultdict(list)
    for bar in plan.history:
        by_object[bar_object_key(job.data_prefix, symbol, job.interval, bar.timestamp)].append(bar)
    try:
        merged = [objects.merge_bars(key, group) for key, group in sorted(by_object.items())]
        items = bar_items(plan.recent)
        if latest is not None:
            items.append(latest)
        if items:
            table.put_items(items)
    except Exception as err:  # botocore errors, throttling that outlasted the retries
        raise _SymbolFailure(STORAGE_ERROR, f"{type(err).__name__}: {err}") from None
    written = sorted({*plan.history, *plan.recent}, key=lambda b: b.timestamp)
    series = None
    if written:
        series = Series(
            symbol=symbol,
            interval=job.interval,
            first=plan.history[0].iso_time if plan.history else None,
            last=written[-1].iso_time,
            last_final=plan.history[-1].iso_time if plan.history else None,
            object_bars={m.key: m.bars for m in merged},
        )
    return _Stored(
        bars=len(items) - (latest is not None),
        added=sum(m.added for m in merged),
        objects=sum(m.written for m in merged),
        latest=note,
        series=series,
    )


@dataclass(frozen=True)
class FetchDeps:
    """What a fetch talks to: one value, handed from the handler to each symbol's fetch."""

    provider: Provider
    objects: S3ObjectStore
    table: DynamoTable
    calendar: MarketCalendar
    now: Callable[[], datetime]
    remaining_seconds: Callable[[], float] | None = None  # None: no deadline


def fetch_one(symbol: str, job: FetchJob, deps: FetchDeps) -> SymbolResult:
    if deps.remaining_seconds is not None and deps.remaining_seconds() < MIN_SECONDS_TO_START:
        return _failed(symbol, OUT_OF_TIME, "skipped: the Lambda timeout is near")
    # The time before asking: a bar is final only if its session had closed (and
    # settled) before the data was requested.
    asked_at = deps.now()
    try:
        batch = _fetch(symbol, job, deps.provider)
        bars = _mark_final(batch.bars, deps.calendar, asked_at)
        stored = _store(bars, job, objects=deps.objects, table=deps.table, fetched_at=asked_at)
    except _SymbolFailure as failure:
        return _failed(symbol, failure.reason, failure.error, rejected=failure.rejected)
    finals = [b for b in bars if b.final]
    jsonlog.log(
        logging.DEBUG,
        "symbol stored",
        symbol=symbol,
        bars=stored.bars,
        added=stored.added,
        fetched=len(bars),
        dropped=len(batch.rejected),
        objects=stored.objects,
    )
    return SymbolResult(
        symbol=symbol,
        status="ok",
        bars=stored.bars,
        added=stored.added,
        fetched=len(bars),
        dropped=len(batch.rejected),
        objects=stored.objects,
        last_bar=bars[-1].iso_time,
        last_final=finals[-1].iso_time if finals else None,
        latest=stored.latest,
        rejected=tuple(batch.rejected),
        series=stored.series,
    )


def fetch_all(
    job: FetchJob, deps: FetchDeps, *, max_workers: int = MAX_WORKERS
) -> list[SymbolResult]:
    """Results in the order of `job.symbols`. The pool is bounded: fetching is mostly
    waiting on the network, but an unbounded pool would open one connection per symbol."""
    workers = max(1, min(max_workers, len(job.symbols)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(lambda symbol: fetch_one(symbol, job, deps), job.symbols))
