"""The service's market data: final bars per symbol, read the way the fetcher writes
them (docs/CONTRACTS.md section 8), with as few requests as that layout allows.

- **Warm-up, once per process**: from S3, the history (final bars only). The index, then
  each symbol's newest objects until the strategy's warm-up is in hand, through the
  backtester's own reader (`backend.trading.history`). The table alone could not do
  it: a scheduled run writes only its period's bars there, and they expire after 90 days.
- **Every step**: one `BatchGetItem` of the symbols' `LATEST` items (up to 100 keys a
  request). `LATEST` is the newest *final* bar. A symbol whose `LATEST` is not newer
  than the newest bar held has nothing new: no other request. If `LATEST` is the session
  right after it (the exchange calendar says so), it *is* the new bar: no other request.
  Only a gap (the service was down, the fetcher dropped a bad row, a new symbol) costs a
  `Query` of the table for the final bars after the newest held, up to `LATEST`. An
  unfinished bar (`final: false`, the session in progress) never enters the history.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backend import jsonlog
from backend.index import Series
from backend.layout import LATEST_SK, bar_pk, bar_sk
from backend.models import Bar, BarError
from backend.storage import bar_from_item
from backend.trading.calendar import TradingCalendar, previous_session
from backend.trading.history import HistoryError, ObjectSource, load_index, read_series

READ_WORKERS = 16  # gap queries at once (the service's clients pool 32 connections)
KEEP_BARS = 1_000  # per symbol in memory: far more than any strategy's warm-up
BATCH_GET_KEYS = 100  # DynamoDB's BatchGetItem limit
MAX_ATTEMPTS = 8  # for UnprocessedKeys (throttling): botocore retries the request itself


class MarketData:
    def __init__(
        self,
        *,
        client: Any,
        table: str,
        interval: str = "1d",
        history: ObjectSource | None = None,
        index_key: str = "",
        calendar: TradingCalendar | None = None,
        keep: int = KEEP_BARS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table
        self._interval = interval
        self._history = history
        self._index_key = index_key
        self._calendar = calendar
        self._keep = keep
        self._sleep = sleep
        self._warmed = False
        self.bars: dict[str, list[Bar]] = {}
        self.skipped = 0  # items that were not valid bars
        self.queries = 0  # gap queries made (the steady state makes none)

    def history(self, symbol: str) -> Sequence[Bar]:
        return self.bars.get(symbol, [])

    def refresh(self, symbols: Iterable[str], *, warmup: int = 0) -> None:
        """Bring every symbol up to its newest final bar. The first call also reads the
        newest `warmup` bars of each symbol's S3 history."""
        symbols = list(symbols)
        if not self._warmed:
            self._warm_up(symbols, warmup)
            self._warmed = True
        gaps: list[tuple[str, Bar]] = []
        for symbol, item in self._latest(symbols).items():
            try:
                bar = bar_from_item(item)
            except (BarError, KeyError, TypeError, ValueError):
                self.skipped += 1
                continue
            have = self.bars.get(symbol)
            if have and bar.timestamp <= have[-1].timestamp:
                continue  # nothing new since the last step
            if not bar.final:
                self.skipped += 1  # LATEST is final by contract; never trade on one that is not
            elif have and self._follows(have[-1], bar):
                self._extend(symbol, [bar])
            else:
                gaps.append((symbol, bar))
        if gaps:
            with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(gaps))) as pool:
                found = list(pool.map(self._between, gaps))
            for (symbol, _), bars in zip(gaps, found, strict=True):
                self._extend(symbol, bars)

    # -- the history in S3 ---------------------------------------------------------------

    def _warm_up(self, symbols: list[str], warmup: int) -> None:
        if self._history is None or warmup <= 0:
            return
        source = self._history
        try:
            index = load_index(source, self._index_key)
        except HistoryError as err:
            # A new stack whose fetcher has not run yet: the table is all there is.
            jsonlog.log(logging.WARNING, "no stored history", error=str(err))
            return
        stored = [(s, index.get(s, self._interval)) for s in symbols]
        wanted = [(s, series) for s, series in stored if series is not None]

        def one(pair: tuple[str, Series]) -> tuple[str, list[Bar], str]:
            symbol, series = pair
            try:
                return symbol, read_series(source, series, newest=warmup), ""
            except HistoryError as err:
                return symbol, [], str(err)

        if not wanted:
            return
        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(wanted))) as pool:
            for symbol, bars, error in pool.map(one, wanted):
                if error:
                    # One unreadable object must not stop the other symbols: this one
                    # warms up from the table instead, and the line names the file to fix.
                    jsonlog.log(logging.ERROR, "history unreadable", symbol=symbol, error=error)
                self._extend(symbol, [b for b in bars if b.final])

    # -- the table -------------------------------------------------------------------------

    def _latest(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each symbol's LATEST item (absent: the fetcher has not stored a final bar)."""
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(symbols), BATCH_GET_KEYS):
            keys = [
                {"pk": {"S": bar_pk(s, self._interval)}, "sk": {"S": LATEST_SK}}
                for s in symbols[start : start + BATCH_GET_KEYS]
            ]
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311
                response = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
                for item in response.get("Responses", {}).get(self._table, []):
                    symbol = item.get("symbol", {}).get("S")
                    if isinstance(symbol, str):
                        out[symbol] = item
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not keys:
                    break
            else:
                raise RuntimeError(
                    f"DynamoDB left {len(keys)} LATEST reads unprocessed after {MAX_ATTEMPTS} "
                    f"attempts (table {self._table} is throttling)"
                )
        return out

    def _follows(self, newest: Bar, bar: Bar) -> bool:
        """Whether `bar` is the session right after `newest` (so nothing lies between)."""
        if self._calendar is None:
            return False
        try:
            return previous_session(self._calendar, bar.timestamp.date()) == newest.timestamp.date()
        except ValueError:  # a day the calendar does not know as a session: ask the table
            return False

    def _between(self, gap: tuple[str, Bar]) -> list[Bar]:
        """The final bars after the newest held, up to and including `latest` (the LATEST
        item's bar), oldest first. An unfinished bar is skipped: one older than LATEST is
        a bar whose final version the fetcher dropped as a bad row, and it stays out."""
        symbol, latest = gap
        have = self.bars.get(symbol)
        values: dict[str, Any] = {":pk": {"S": bar_pk(symbol, self._interval)}}
        kwargs: dict[str, Any] = {"TableName": self._table, "ExpressionAttributeValues": values}
        if have:
            kwargs["KeyConditionExpression"] = "pk = :pk AND sk > :after"
            values[":after"] = {"S": bar_sk(have[-1].iso_time)}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :ts)"
            values[":ts"] = {"S": bar_sk("")}
        self.queries += 1
        out: list[Bar] = []
        while True:
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                try:
                    bar = bar_from_item(item)
                except (BarError, KeyError, TypeError, ValueError):
                    self.skipped += 1
                    continue
                if bar.final and bar.timestamp <= latest.timestamp:
                    out.append(bar)
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        if not out or out[-1].timestamp < latest.timestamp:
            out.append(latest)  # its table item expired, or the fetcher wrote LATEST only
        return out

    def _extend(self, symbol: str, bars: list[Bar]) -> None:
        if not bars:
            return
        have = self.bars.get(symbol, [])
        newest = have[-1].timestamp if have else None
        merged = have + [b for b in bars if newest is None or b.timestamp > newest]
        self.bars[symbol] = merged[-self._keep :]
