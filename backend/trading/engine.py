"""The engine: one step over the newly closed bars of one date, the same for the
backtester and the service.

For a step (the bars of one date, one per symbol) it does, in this order:
  1. corporate actions at the open (split, dividend) onto the ledger's positions and cash;
  2. the broker sees the bars (the paper broker fills pending orders at their open);
  3. reconcile: every open order in the ledger is looked up at the broker by client
     order id, and new fills and states are recorded (an intent the broker never got is
     sent again by its own bar's decision, or canceled once its bar has passed);
  4. mark to market at the closes; the daily-loss limit may halt the kill switch;
  5. per symbol: the strategy's target -> size -> risk limits -> order: the intent is
     recorded in the ledger first, then sent, then its broker state recorded;
  6. the day's equity, then the cursor (the bars this step consumed).
The cursor moves last, so a crash anywhere re-runs the whole step; every write above is
idempotent under re-run (docs/trading.md, "Crash recovery").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

from backend.models import Bar
from backend.trading import risk
from backend.trading.book import Holding, after_action, after_fill, cash_after_fill
from backend.trading.broker import Broker, BrokerError, BrokerOrder
from backend.trading.ledger import (
    EquityPoint,
    KillSwitch,
    Ledger,
    PositionRecord,
)
from backend.trading.orders import Fill, Order, OrderStatus, client_order_id
from backend.trading.paper import PaperBroker
from backend.trading.settings import TradingConfig


@dataclass(slots=True)
class BarEvent:
    """One symbol's newly closed bar: raw (as traded, what orders and marks use), with the
    strategy's view computed on the adjusted history up to it. Read-only by convention,
    not frozen: the backtester makes one per bar, and a frozen dataclass's __init__
    costs four times as much (0.3 s of a 252,000-bar backtest)."""

    bar: Bar
    direction: int | None  # +1, 0, -1; None: no view (hold)
    reason: str = ""
    values: Mapping[str, float] | None = None
    bars_behind: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """What happened for one symbol on one bar: the JSON log line's fields."""

    symbol: str
    bar_time: str
    action: str  # hold | order | refused | resent | already_placed
    direction: int | None
    reason: str
    position: int
    target: int
    values: Mapping[str, float]
    client_order_id: str = ""
    side: str = ""
    qty: int = 0
    status: str = ""
    refused_by: str = ""
    clipped_by: tuple[str, ...] = ()

    def to_log(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "symbol": self.symbol,
            "bar_time": self.bar_time,
            "action": self.action,
            "direction": self.direction,
            "reason": self.reason,
            "position": self.position,
            "target": self.target,
            "values": dict(self.values),
        }
        if self.client_order_id:
            doc.update(
                client_order_id=self.client_order_id,
                side=self.side,
                qty=self.qty,
                status=self.status,
            )
        if self.refused_by:
            doc["refused_by"] = self.refused_by
        if self.clipped_by:
            doc["clipped_by"] = list(self.clipped_by)
        return doc


@dataclass(frozen=True, slots=True)
class StepResult:
    day: str
    equity: float
    cash: float
    orders: int
    fills: int
    halted: bool
    decisions: tuple[Decision, ...]


@dataclass(frozen=True, slots=True)
class _Planned:
    """A new order decided for a bar, not yet recorded nor sent."""

    ev: BarEvent
    order: Order
    current: int
    target: int
    reason: str
    clipped: tuple[str, ...]


Sink = Callable[[Decision], None]
_BY_SYMBOL = attrgetter("bar.symbol")  # a C-level sort key: 252,000 calls in a backtest


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


class Engine:
    """Strategy -> risk -> broker -> ledger, for one account. Holds an in-memory mirror
    of the ledger, loaded at construction and kept by every write (each conditional on
    the version it mirrors, so a second writer is refused rather than overwritten)."""

    def __init__(
        self,
        *,
        config: TradingConfig,
        universe: int,
        ledger: Ledger,
        broker: Broker,
        namespace: str,
        marks: Mapping[str, float] | None = None,
        sink: Sink | None = None,
        log_holds: bool = True,
        track_cursor: bool = True,
    ):
        self.config = config
        self.ledger = ledger
        self.broker = broker
        self._namespace = namespace
        self._universe = max(1, universe)
        self._sink = sink
        self._log_holds = log_holds
        self._track_cursor = track_cursor
        self._strategy = config.strategy
        self.marks: dict[str, float] = dict(marks or {})
        self.orders_placed = 0
        self.fills_recorded = 0
        self._stale: set[str] = set()  # symbols whose exposure entry must be recomputed
        self._must_reload = False
        self.reload()

    def reload(self) -> None:
        """Read the ledger afresh (at start, and after a LedgerConflict)."""
        self._must_reload = False
        self._book = None
        self._stale.clear()
        ledger = self.ledger
        self.cash = ledger.open_account(self._starting_cash())
        self.positions: dict[str, PositionRecord] = ledger.positions()
        self.open: dict[str, Order] = {}
        self._open_by_symbol: dict[str, set[str]] = {}
        for order in ledger.open_orders():
            self._track(order)
        self.kill: KillSwitch = ledger.kill_switch()
        self.cursor = ledger.cursor()
        curve = ledger.equity_curve(newest=2)
        self._last_equity: EquityPoint | None = curve[-1] if curve else None
        self._before_last: EquityPoint | None = curve[-2] if len(curve) > 1 else None
        if isinstance(self.broker, PaperBroker):
            # The paper account's book is the ledger (docs/trading.md).
            self.broker.restore(
                cash=self.cash.cash,
                holdings={s: p.holding for s, p in self.positions.items()},
                open_orders=self.open.values(),
            )

    def _starting_cash(self) -> float:
        if self.config.trading_mode == "paper":
            return self.config.paper_cash
        return self.broker.account().cash

    # -- the step ----------------------------------------------------------------------

    def step(
        self,
        events: Sequence[BarEvent],
        *,
        now: datetime,
        before_commit: Callable[[str, Sequence[Decision]], None] | None = None,
    ) -> StepResult:
        """Process one date's bars (see the module docstring). `before_commit` gets the
        decisions after they are made and before the equity and cursor are written (the
        service writes its decision record there, so a crash before it re-runs it).

        The step's ledger writes are batched (backend.trading.ledger, "Batching"): new
        orders are written, with what came before them, before any is sent; the rest
        with the equity and the cursor at the end. A step that raises still writes what
        it had done (as unbatched writes would have); if that cannot be written, the
        next step first reads the ledger again."""
        if self._must_reload:
            self.reload()
        self.ledger.begin()
        try:
            result = self._step(events, now, before_commit)
            self.ledger.flush()
        except BaseException as err:
            if not self.ledger.failed and self.ledger.kept:
                try:
                    self.ledger.flush()
                except BaseException as lost:
                    err.add_note(f"and its writes were not stored: {type(lost).__name__}: {lost}")
            if self.ledger.failed:
                self._must_reload = True  # the mirror is ahead of the ledger
            raise
        finally:
            self.ledger.end()
        return result

    def _step(
        self,
        events: Sequence[BarEvent],
        now: datetime,
        before_commit: Callable[[str, Sequence[Decision]], None] | None,
    ) -> StepResult:
        events = sorted(events, key=_BY_SYMBOL)
        day = max(e.bar.timestamp for e in events).strftime("%Y-%m-%d") if events else ""
        fills_before = self.fills_recorded
        orders_before = self.orders_placed
        decisions: list[Decision] = []
        # 1, 2 and the marks in one pass: each touches only its own symbol (and the
        # cash), so the order between symbols does not matter (the backtest's hot loop).
        marks, on_bar = self.marks, self.broker.on_bar
        for ev in events:
            bar = ev.bar
            if bar.split != 1.0 or bar.dividend:
                self._corporate_action(bar)
            on_bar(bar)
            marks[bar.symbol] = bar.close
        if self.open:
            self._reconcile(events)
        equity, gross, held = self._mark()
        self._daily_loss(day, equity, now)
        self._book = None
        self._stale.clear()  # the book is rebuilt from the marks just taken
        fills_before_decisions = self.fills_recorded
        outcomes: list[Decision | _Planned] = []
        planned: list[_Planned] = []
        decide = self._decide
        for ev in events:
            outcome = decide(ev, equity)
            if outcome is not None:  # a backtest's holds are None: most bars end here
                outcomes.append(outcome)
                if type(outcome) is _Planned:
                    planned.append(outcome)
        placed = iter(self._place(planned))
        for outcome in outcomes:
            decision = next(placed) if isinstance(outcome, _Planned) else outcome
            decisions.append(decision)
            if self._sink is not None:
                self._sink(decision)
        if before_commit is not None:
            before_commit(day, decisions)
        if self.fills_recorded != fills_before_decisions:
            # A broker that filled at once: the book moved since the marks above.
            equity, gross, held = self._mark()
        self._close_step(day, equity, gross, held, events)
        return StepResult(
            day=day,
            equity=equity,
            cash=self.cash.cash,
            orders=self.orders_placed - orders_before,
            fills=self.fills_recorded - fills_before,
            halted=self.kill.halted,
            decisions=tuple(decisions),
        )

    # -- 1. corporate actions ------------------------------------------------------------

    def _corporate_action(self, bar: Bar) -> None:
        record = self.positions.get(bar.symbol)
        if record is None or record.holding.qty == 0:
            return
        if self.ledger.action_applied(bar.symbol, bar.iso_time):
            return  # a re-run of a step that had applied it
        result = after_action(record.holding, bar.split, bar.dividend, bar.open)
        cash = replace(
            self.cash,
            cash=self.cash.cash + result.cash_delta,
            dividends=self.cash.dividends + record.holding.qty * bar.dividend,
        )
        self.positions[bar.symbol], self.cash = self.ledger.record_action(
            symbol=bar.symbol,
            bar_time=bar.iso_time,
            split=bar.split,
            dividend=bar.dividend,
            position=replace(record, holding=result.holding),
            cash=cash,
        )

    # -- 3. reconcile --------------------------------------------------------------------

    def _reconcile(self, events: Sequence[BarEvent]) -> None:
        bars_now: dict[str, str] | None = None
        for cid in sorted(self.open):
            order = self.open[cid]
            known = self.broker.get_order(cid)
            if known is None:
                if order.status is not OrderStatus.INTENT:
                    # The broker lost an order it had acknowledged: never guess.
                    raise BrokerError(
                        f"order {cid} is {order.status.value} in the ledger but unknown "
                        f"to the {self.broker.name} broker"
                    )
                if bars_now is None:
                    bars_now = {ev.bar.symbol: ev.bar.iso_time for ev in events}
                if bars_now.get(order.symbol) == order.bar_time:
                    continue  # a re-run of its own bar: _decide sends it
                self._store_order(order.moved(OrderStatus.CANCELED))
                continue
            self._apply(order, known)

    def _apply(self, order: Order, known: BrokerOrder) -> Order:
        """Bring the ledger's order up to the broker's: new fills first (one transaction
        each), then the state."""
        if known.filled_qty > order.filled_qty:
            order = self._record_fill(order, known)
        if known.status != order.status:
            status = known.status
            if status is OrderStatus.SUBMITTED and order.status is OrderStatus.PARTIALLY_FILLED:
                return order  # a stale read; the fills already say more
            order = self._store_order(
                order.moved(status, broker_order_id=known.broker_order_id or None)
            )
        elif known.broker_order_id and not order.broker_order_id:
            order = self._store_order(
                order.moved(order.status, broker_order_id=known.broker_order_id)
            )
        return order

    def _record_fill(self, order: Order, known: BrokerOrder) -> Order:
        qty = known.filled_qty - order.filled_qty
        # The broker reports the cumulative average price and fees; the new shares'
        # price and fee are what the new totals add.
        total = known.filled_avg_price * known.filled_qty
        price = (total - order.filled_avg_price * order.filled_qty) / qty
        fee = max(known.fee - order.fee, 0.0)
        signed = qty if order.side == "buy" else -qty
        status = (
            OrderStatus.FILLED if known.filled_qty >= order.qty else OrderStatus.PARTIALLY_FILLED
        )
        moved = order.moved(
            status,
            filled_qty=known.filled_qty,
            filled_avg_price=known.filled_avg_price,
            fee=order.fee + fee,
            broker_order_id=known.broker_order_id or None,
        )
        record = self.positions.get(order.symbol, PositionRecord(order.symbol, Holding()))
        position = replace(record, holding=after_fill(record.holding, signed, price))
        cash = replace(
            self.cash,
            cash=cash_after_fill(self.cash.cash, signed, price, fee),
            fees=self.cash.fees + fee,
        )
        fill = Fill(
            client_order_id=order.client_order_id,
            seq=known.filled_qty,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            fee=fee,
            time=known.filled_at,
        )
        stored, self.positions[order.symbol], self.cash = self.ledger.record_fill(
            fill, moved, position, cash
        )
        self.fills_recorded += 1
        self._track(stored)
        return stored

    def _store_order(self, order: Order) -> Order:
        stored = self.ledger.update_order(order)
        self._track(stored)
        return stored

    def _track(self, order: Order) -> None:
        cid = order.client_order_id
        if order.status.terminal:
            self.open.pop(cid, None)
            ids = self._open_by_symbol.get(order.symbol)
            if ids is not None:
                ids.discard(cid)
                if not ids:
                    del self._open_by_symbol[order.symbol]
        else:
            self.open[cid] = order
            self._open_by_symbol.setdefault(order.symbol, set()).add(cid)

    # -- 4. marks and the kill switch ----------------------------------------------------

    def mark(self) -> tuple[float, float, int]:
        """Equity, gross exposure and positions held, at the latest marks."""
        return self._mark()

    def _mark(self) -> tuple[float, float, int]:
        value = 0.0
        gross = 0.0
        held = 0
        values: dict[str, float] = {}  # |position value| per symbol: the book's start
        marks = self.marks
        for symbol, record in self.positions.items():
            qty = record.holding.qty
            if qty:
                worth = qty * marks.get(symbol, record.holding.avg_price)
                value += worth
                values[symbol] = size = abs(worth)
                gross += size
                held += 1
        self._values = values
        return self.cash.cash + value, gross, held

    def _previous_close(self, day: str) -> float | None:
        """The equity recorded for the last day before `day`."""
        for point in (self._last_equity, self._before_last):
            if point is not None and point.day < day:
                return point.equity
        return None

    def _daily_loss(self, day: str, equity: float, now: datetime) -> None:
        previous = self._previous_close(day)
        if self.kill.halted or previous is None or day <= self.kill.resumed_through:
            return
        limit = self.config.risk.max_daily_loss_pct
        if risk.daily_loss_breached(equity, previous, limit):
            loss = 100.0 * (1.0 - equity / previous)
            self.kill = self.ledger.set_kill_switch(
                self.kill,
                halted=True,
                reason=(
                    f"daily loss {loss:.2f}% on {day} exceeds riskLimits.maxDailyLossPct "
                    f"{limit:g}% (equity {equity:.2f}, previous close {previous:.2f})"
                ),
                since=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )

    # -- 5. decide and send --------------------------------------------------------------

    def _pending(self, symbol: str) -> int:
        ids = self._open_by_symbol.get(symbol)
        if not ids:
            return 0
        return sum(self.open[cid].remaining for cid in ids)

    def _decide(  # noqa: PLR0911 - one exit per outcome: hold, refused, resent, placed, order
        self, ev: BarEvent, equity: float
    ) -> Decision | _Planned | None:
        """What to do about one bar: a decision made (hold, refused, an intent resent),
        or a new order planned (tracked as pending, so the next symbols' limits see it;
        `_place` records and sends them all)."""
        bar = ev.bar
        symbol = bar.symbol
        position = self.positions.get(symbol)
        held = position.holding.qty if position is not None else 0
        pending = 0
        cid = ""
        if symbol in self._open_by_symbol:
            cid = client_order_id(self._namespace, self._strategy, symbol, bar.timestamp)
            existing = self.open.get(cid)
            if existing is not None:
                target = held + existing.remaining
                if existing.status is OrderStatus.INTENT:
                    sent = self._send(existing)
                    return self._decision(ev, "resent", held, target, sent)
                return self._decision(ev, "already_placed", held, target, existing)
            pending = self._pending(symbol)
        current = held + pending
        reason = ev.reason
        direction = ev.direction
        if direction is not None and direction < 0 and not self.config.risk.allow_short:
            # A strategy's "short" means flat where shorting is off (docs/trading.md).
            direction = 0
        risk_limits = self.config.risk
        if self.kill.halted and risk_limits.flatten_on_halt and current != 0:
            desired, reason = 0, "kill switch halted: flatten"
        elif direction is None or direction == (current > 0) - (current < 0):
            if not self._log_holds:
                return None
            return self._decision(ev, "hold", current, current, None)
        else:
            desired = direction * self._size(bar.close, equity)
            reason = reason or {1: "long", 0: "flat", -1: "short"}[direction]
        exposure = self._exposure(symbol, equity)
        if (
            desired
            and not self._log_holds
            and risk.no_room(current, exposure.open_other, risk_limits)
        ):
            return None  # the same refusal risk.check gives, without sizing it first
        verdict = risk.check(
            current=current,
            desired=desired,
            price=bar.close,
            limits=self.config.risk,
            exposure=exposure,
            halted=self.kill.halted,
            bars_behind=ev.bars_behind,
        )
        if verdict.refused:
            if not self._log_holds:
                return None
            return replace(
                self._decision(ev, "refused", current, current, None, reason=reason),
                refused_by=verdict.refused,
                clipped_by=verdict.clipped,
            )
        delta = verdict.target - current
        cid = cid or client_order_id(self._namespace, self._strategy, symbol, bar.timestamp)
        self._stale.add(symbol)  # its pending quantity changes: its book entry too
        order = Order(
            client_order_id=cid,
            strategy=self._strategy,
            symbol=symbol,
            bar_time=bar.iso_time,
            side="buy" if delta > 0 else "sell",
            qty=abs(delta),
            reason=reason,
        )
        self._track(order)
        return _Planned(ev, order, current, verdict.target, reason, verdict.clipped)

    def _place(self, planned: Sequence[_Planned]) -> list[Decision]:
        """Record every new order (one write with what the step kept), then send each."""
        if not planned:
            return []
        out = []
        recorded = self.ledger.record_intents([p.order for p in planned])
        for p, (stored, created) in zip(planned, recorded, strict=True):
            if not created and stored.status is not OrderStatus.INTENT:
                # Decided before, by an earlier attempt: the stored order stands.
                self._track(stored)
                out.append(self._decision(p.ev, "already_placed", p.current, p.target, stored))
                continue
            self.orders_placed += 1
            sent = self._send(stored)
            decision = self._decision(p.ev, "order", p.current, p.target, sent, reason=p.reason)
            out.append(replace(decision, clipped_by=p.clipped))
        return out

    def _send(self, order: Order) -> Order:
        """Send a recorded intent and record what the broker says. The broker dedupes by
        client order id, so sending an intent that did reach it returns that order."""
        self._track(order)
        return self._apply(order, self.broker.submit(order))

    def _size(self, price: float, equity: float) -> int:
        """Equal weight: each symbol of the universe may use 1/N of equity (then the risk
        limits clip it)."""
        if price <= 0 or equity <= 0:
            return 0
        return math.floor(equity / self._universe / price)

    def _exposure(self, symbol: str, equity: float) -> risk.Exposure:
        """The book without `symbol`. The per-symbol values are computed once per step
        and again only after an order (a refused entry is re-checked on every bar, so
        this is on the backtest's hot path)."""
        book = self._book
        if book is None:
            # The positions as the step's marks valued them, then every symbol with an
            # open order or an order since (its pending shares count, its fills moved it).
            book = dict(self._values)
            for other in self._stale.union(self._open_by_symbol):
                self._book_entry(book, other, self._pending(other))
            self._book = book
            self._book_gross = sum(book.values())
            self._stale.clear()
        elif self._stale:
            # Only the symbols that ordered since: O(orders), not O(book), per order.
            for other in self._stale:
                self._book_entry(book, other, self._pending(other))
            self._stale.clear()
            self._book_gross = sum(book.values())
        own = book.get(symbol)
        if own is None:
            return risk.Exposure(equity, self._book_gross, len(book))
        return risk.Exposure(equity, self._book_gross - own, len(book) - 1)

    def _book_entry(self, book: dict[str, float], symbol: str, pending: int) -> None:
        record = self.positions.get(symbol)
        qty = (record.holding.qty if record else 0) + pending
        if qty:
            mark = self.marks.get(symbol, record.holding.avg_price if record else 0.0)
            book[symbol] = abs(qty) * mark
        else:
            book.pop(symbol, None)

    _book: dict[str, float] | None = None
    _book_gross = 0.0
    _values: dict[str, float] = {}  # noqa: RUF012 - replaced whole by every _mark, never mutated

    def _decision(
        self,
        ev: BarEvent,
        action: str,
        position: int,
        target: int,
        order: Order | None,
        *,
        reason: str = "",
    ) -> Decision:
        return Decision(
            symbol=ev.bar.symbol,
            bar_time=ev.bar.iso_time,
            action=action,
            direction=ev.direction,
            reason=reason or ev.reason,
            position=position,
            target=target,
            values=ev.values or {},
            client_order_id=order.client_order_id if order else "",
            side=order.side if order else "",
            qty=order.qty if order else 0,
            status=order.status.value if order else "",
        )

    # -- 6. equity -----------------------------------------------------------------------

    def _close_step(
        self, day: str, equity: float, gross: float, held: int, events: Sequence[BarEvent]
    ) -> None:
        """The day's equity, then the cursor: one transaction in the service."""
        if not day:
            return
        last = self._last_equity
        if last is not None and last.day == day:
            version = last.version
        else:
            version = 0
            self._before_last = last
        point = EquityPoint(day, equity, self.cash.cash, gross, held, version)
        if self._track_cursor:
            bars = {ev.bar.symbol: ev.bar.iso_time for ev in events}
            self._last_equity, self.cursor = self.ledger.close_step(point, self.cursor, bars)
        else:
            self._last_equity = self.ledger.record_equity(point)
