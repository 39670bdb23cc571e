"""Shared builders for the trading tests: bars, a fake exchange calendar, an exchange."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

from backend.models import Bar
from backend.trading.broker import Account, BrokerOrder, BrokerPosition
from backend.trading.orders import Order, OrderStatus

START = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)  # a Tuesday


def sessions(n: int, start: datetime = START) -> list[datetime]:
    """n weekday bar times from `start`."""
    out = []
    t = start
    while len(out) < n:
        if t.weekday() < 5:
            out.append(t)
        t += timedelta(days=1)
    return out


def bars(
    symbol: str,
    closes: list[float],
    *,
    opens: list[float] | None = None,
    start: datetime = START,
    splits: dict[int, float] | None = None,
    dividends: dict[int, float] | None = None,
) -> list[Bar]:
    """Daily bars with the given closes; each open is the previous close unless given."""
    out = []
    for i, (t, c) in enumerate(zip(sessions(len(closes), start), closes, strict=True)):
        o = opens[i] if opens else (closes[i - 1] if i else c)
        out.append(
            Bar.create(
                symbol=symbol,
                interval="1d",
                timestamp=t,
                open=o,
                high=max(o, c) * 1.01,
                low=min(o, c) * 0.99,
                close=c,
                volume=1000,
                split=(splits or {}).get(i, 1.0),
                dividend=(dividends or {}).get(i, 0.0),
            )
        )
    return out


class WeekdayCalendar:
    """Every weekday is a session closing at 21:00 UTC (no holidays): enough to count."""

    def session_close(self, day: date) -> datetime:
        return datetime.combine(day, time(21, 0), tzinfo=UTC)

    def last_closed_session(self, now: datetime) -> date:
        day = now.date()
        if now < self.session_close(day):
            day -= timedelta(days=1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day


def after_close(bar: Bar) -> datetime:
    return datetime.combine(bar.timestamp.date(), time(21, 5), tzinfo=UTC)


class Exchange:
    """A broker that outlives the process, like Alpaca: it keeps every order it was sent,
    refuses nothing twice (dedupe by client order id) and fills when told to."""

    name = "exchange"

    def __init__(self, cash: float = 100_000.0):
        self.orders: dict[str, BrokerOrder] = {}
        self.decided_at: dict[str, str] = {}
        self.submits = 0
        self.cash = cash

    def submit(self, order: Order) -> BrokerOrder:
        self.submits += 1
        if order.client_order_id in self.orders:
            return self.orders[order.client_order_id]
        placed = BrokerOrder.answer(
            order, broker_order_id=f"x-{len(self.orders) + 1}", status=OrderStatus.SUBMITTED
        )
        self.orders[order.client_order_id] = placed
        self.decided_at[order.client_order_id] = order.bar_time
        return placed

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self.orders.get(client_order_id)

    def positions(self) -> list[BrokerPosition]:
        return []

    def account(self) -> Account:
        return Account(cash=self.cash, equity=self.cash)

    def on_bar(self, bar: Bar) -> None:
        for cid, order in list(self.orders.items()):
            later = bar.iso_time > self.decided_at[cid]  # a market knows no past bars
            if order.symbol == bar.symbol and order.status is OrderStatus.SUBMITTED and later:
                self.orders[cid] = replace(
                    order,
                    status=OrderStatus.FILLED,
                    filled_qty=order.qty,
                    filled_avg_price=bar.open,
                    filled_at=bar.iso_time,
                )
