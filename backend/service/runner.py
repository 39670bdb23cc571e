"""The strategy service's work: find newly closed bars, run the engine on them, report.

A step brings the market data up to date (backend.service.market: S3 history once, then
the table's LATEST items), and for each date that has bars past the ledger's cursor
(oldest first) hands the engine one BarEvent per symbol: the raw bar, the strategy's
target on the adjusted history up to it, and how many sessions behind the calendar it
is. The engine records everything in the ledger and moves the cursor last, so a step cut
short anywhere is simply done again (docs/trading.md).

The strategy's view is kept per symbol as an incremental Signal fed with adjusted
closes, so a step costs O(1) per symbol instead of re-adjusting and re-reading the whole
history. A bar carrying a split or dividend rescales every earlier adjusted close, so on
such a bar (or any bar that is not the next one fed) the view is rebuilt from the
adjusted history, exactly as `Strategy.target` computes it.

Which bars are "new": those after the cursor. With no cursor yet (a first start) only the
newest closed bar is traded: history is for warming up, not for trading late. A replay
(`--replay N`) trades the newest N closed bars instead, each at its own close's time (so
staleness is measured against the bar, not the wall clock): the rehearsal's way to trade
a few dozen fixture bars in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backend import jsonlog
from backend.adjust import back_adjust
from backend.models import INTERVAL_SECONDS, Bar
from backend.service.market import MarketData
from backend.trading.broker import Broker
from backend.trading.calendar import TradingCalendar, bars_behind
from backend.trading.engine import BarEvent, Decision, Engine
from backend.trading.ledger import Ledger
from backend.trading.settings import TradingConfig
from backend.trading.strategies import Position, Signal, Target


@dataclass(frozen=True, slots=True)
class StepReport:
    dates: int  # dates processed
    bars: int
    orders: int
    fills: int
    equity: float
    halted: bool
    halt_reason: str
    stale: tuple[str, ...]  # symbols whose newest bar is too old to trade on

    def to_json(self) -> dict[str, Any]:
        return {
            "dates": self.dates,
            "bars": self.bars,
            "orders": self.orders,
            "fills": self.fills,
            "equity": self.equity,
            "halted": self.halted,
            "halt_reason": self.halt_reason,
            "stale": list(self.stale),
        }


class Records:
    """Decision records under `logs/<env>/strategy/`: one JSON-lines object per date,
    at a key derived from the date, so a re-run of a step overwrites its own record."""

    def __init__(self, *, client: Any, bucket: str, logs_prefix: str):
        self._client = client
        self._bucket = bucket
        self._prefix = f"{logs_prefix}strategy/"

    def key(self, day: str) -> str:
        return f"{self._prefix}date={day}/decisions.jsonl"

    def write(self, day: str, decisions: Sequence[Decision]) -> None:
        body = "".join(
            json.dumps(d.to_log(), sort_keys=True, separators=(",", ":")) + "\n" for d in decisions
        ).encode()
        self._client.put_object(
            Bucket=self._bucket,
            Key=self.key(day),
            Body=body,
            ContentType="application/x-ndjson",
        )


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Temp file and os.replace: a reader (the health check) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@dataclass(slots=True)
class _View:
    """A symbol's incremental Signal: fed `bars` adjusted closes, the last at `last`."""

    signal: Signal
    direction: int | None
    bars: int
    last: datetime


class Runner:
    def __init__(
        self,
        *,
        config: TradingConfig,
        environment: str,
        symbols: Sequence[str],
        market: MarketData,
        ledger: Ledger,
        broker: Broker,
        calendar: TradingCalendar,
        records: Records | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config = config
        self.symbols = tuple(symbols)
        self.market = market
        self.calendar = calendar
        self.records = records
        self.clock = clock
        self.strategy = config.make_strategy()
        self._views: dict[str, _View] = {}
        self._step_seconds = INTERVAL_SECONDS[config.bar_interval]
        self.engine = Engine(
            config=config,
            universe=len(self.symbols),
            ledger=ledger,
            broker=broker,
            namespace=environment,
            sink=self._log,
        )

    @staticmethod
    def _log(decision: Decision) -> None:
        level = logging.INFO if decision.action != "refused" else logging.WARNING
        jsonlog.log(level, "decision", **decision.to_log())

    def _pending(self, replay: int | None) -> dict[str, list[Bar]]:
        """Per date (ISO), the bars past the cursor to process, one per symbol."""
        cursor = self.engine.cursor.bars
        by_day: dict[str, list[Bar]] = {}
        for symbol in self.symbols:
            bars = self.market.history(symbol)
            if not bars:
                continue
            last_done = cursor.get(symbol)
            if last_done is None:
                new = list(bars[-(replay or 1) :])
            else:
                new = [b for b in bars if b.iso_time > last_done]
                if replay is not None:
                    new = new[-replay:]
            for bar in new:
                by_day.setdefault(bar.timestamp.date().isoformat(), []).append(bar)
        return by_day

    def target(self, bar: Bar, position: Position) -> Target:
        """The strategy's target on the adjusted history up to `bar`: the kept view fed
        one more close when `bar` follows it and carries no action, else rebuilt."""
        bars = self.market.history(bar.symbol)
        i = len(bars) - 1
        while i >= 0 and bars[i].timestamp > bar.timestamp:
            i -= 1
        view = self._views.get(bar.symbol)
        plain = bar.split == 1.0 and not bar.dividend
        if view is not None and plain and i > 0 and bars[i - 1].timestamp == view.last:
            # The newest bar of an adjusted series is its own raw value.
            view.direction = view.signal.update(bar.close)
            view.bars += 1
            view.last = bar.timestamp
        else:
            signal = self.strategy.signal()
            direction = None
            for adjusted in back_adjust(bars[: i + 1]):
                direction = signal.update(adjusted.close)
            view = _View(signal, direction, i + 1, bar.timestamp)
            self._views[bar.symbol] = view
        return self.strategy.conclude(view.direction, view.signal.values(), view.bars, position)

    def _event(self, bar: Bar, now: datetime) -> BarEvent:
        record = self.engine.positions.get(bar.symbol)
        position = Position(bar.symbol, record.holding.qty if record else 0)
        target = self.target(bar, position)
        behind = bars_behind(bar.timestamp, now, self.calendar, self.config.risk.max_stale_bars)
        return BarEvent(bar, target.direction, target.reason, target.values, behind)

    def step(self, *, replay: int | None = None) -> StepReport:
        # Enough history that each view equals the full-history one (Strategy.lookback),
        # before the oldest bar a replay trades.
        self.market.refresh(self.symbols, warmup=self.strategy.lookback + (replay or 0))
        if not self.engine.marks:
            self._initial_marks()
        pending = self._pending(replay)
        orders = fills = bars = 0
        equity = self.engine.cash.cash
        for day in sorted(pending):
            day_bars = pending[day]
            if replay is not None:
                latest = max(b.timestamp for b in day_bars)
                now = latest + timedelta(seconds=self._step_seconds)
            else:
                now = self.clock()
            events = [self._event(bar, now) for bar in day_bars]
            result = self.engine.step(
                events,
                now=now,
                before_commit=self.records.write if self.records else None,
            )
            orders += result.orders
            fills += result.fills
            bars += len(events)
            equity = result.equity
        if not pending:
            equity, _, _ = self.engine.mark()
        return StepReport(
            dates=len(pending),
            bars=bars,
            orders=orders,
            fills=fills,
            equity=equity,
            halted=self.engine.kill.halted,
            halt_reason=self.engine.kill.reason,
            stale=self.stale(),
        )

    def _initial_marks(self) -> None:
        cursor = self.engine.cursor.bars
        for symbol in self.symbols:
            done = cursor.get(symbol)
            for bar in reversed(self.market.history(symbol)):
                if done is None or bar.iso_time <= done:
                    self.engine.marks[symbol] = bar.close
                    break

    def stale(self, now: datetime | None = None) -> tuple[str, ...]:
        """Symbols whose newest final bar is more than maxStaleBars sessions behind."""
        if now is None:
            now = self.clock()
        limit = self.config.risk.max_stale_bars
        out = []
        for symbol in self.symbols:
            bars = self.market.history(symbol)
            if not bars or bars_behind(bars[-1].timestamp, now, self.calendar, limit) > limit:
                out.append(symbol)
        return tuple(out)


class Heartbeat:
    """What the health check reads: written after every loop iteration."""

    def __init__(self, path: Path, poll_seconds: float):
        self.path = path
        self.poll_seconds = poll_seconds
        self.failures = 0

    def beat(self, report: StepReport | None, error: str = "") -> None:
        self.failures = 0 if report is not None else self.failures + 1
        doc: dict[str, Any] = {
            "time": time.time(),
            "pid": os.getpid(),
            "poll_seconds": self.poll_seconds,
            "consecutive_failures": self.failures,
            "last_error": error,
        }
        if report is not None:
            doc["last_step"] = report.to_json()
            doc["halted"] = report.halted
            doc["halt_reason"] = report.halt_reason
            doc["stale"] = list(report.stale)
        elif self.path.exists():
            # Keep the last known trading state beside the failure.
            try:
                previous = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                previous = {}
            for key in ("last_step", "halted", "halt_reason", "stale"):
                if key in previous:
                    doc[key] = previous[key]
        write_json_atomic(self.path, doc)
