"""Backtest figures, from the equity curve and the fills (docs/trading.md, "Conventions").

- total return: final equity / starting cash - 1;
- CAGR: (final / start) ** (365.25 / calendar days between the first and last bar) - 1;
- max drawdown: the largest fall from a running peak of the daily equity, as a fraction;
- Sharpe: mean / sample standard deviation of daily simple returns, x sqrt(252),
  risk-free rate 0; None with fewer than two returns or no variation;
- a trade: a position from flat to flat (a fill that crosses zero ends one and starts
  the next); P&L at average cost, fees included, pro rata when a fill is split.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from backend.trading.orders import Fill

TRADING_DAYS = 252


def total_return(start: float, end: float) -> float:
    return end / start - 1.0


def cagr(start: float, end: float, first: date, last: date) -> float | None:
    days = (last - first).days
    if days <= 0 or start <= 0 or end <= 0:
        return None
    return float((end / start) ** (365.25 / days) - 1.0)


def max_drawdown(equity: Iterable[float]) -> float:
    peak = -math.inf
    worst = 0.0
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, 1.0 - value / peak)
    return worst


def daily_returns(equity: Sequence[float]) -> list[float]:
    return [equity[i] / equity[i - 1] - 1.0 for i in range(1, len(equity)) if equity[i - 1]]


def sharpe(equity: Sequence[float]) -> float | None:
    returns = daily_returns(equity)
    if len(returns) < 2:
        return None
    sd = statistics.stdev(returns)
    if sd == 0:
        return None
    return statistics.fmean(returns) / sd * math.sqrt(TRADING_DAYS)


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    side: str  # long | short
    qty: int  # the largest size it reached
    entry_time: str
    entry_price: float  # average
    exit_time: str | None  # None: still open at the end
    exit_price: float  # average; the last mark while open
    pnl: float  # realised (open: at the last mark), after fees
    fees: float

    def to_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "qty": self.qty,
            "entry_time": self.entry_time,
            "entry_price": self.entry_price,
            "exit_time": self.exit_time,
            "exit_price": self.exit_price,
            "pnl": self.pnl,
            "fees": self.fees,
        }


class _Open:
    __slots__ = (
        "entry_cost",
        "entry_qty",
        "exit_qty",
        "exit_value",
        "fees",
        "opened",
        "qty",
        "side",
        "top",
    )

    def __init__(self, side: int, opened: str):
        self.side = side
        self.opened = opened
        self.qty = 0
        self.top = 0
        self.entry_qty = 0
        self.entry_cost = 0.0
        self.exit_qty = 0
        self.exit_value = 0.0
        self.fees = 0.0

    def trade(self, symbol: str, exit_time: str | None, mark: float | None = None) -> Trade:
        entry = self.entry_cost / self.entry_qty if self.entry_qty else 0.0
        closed_value = self.exit_value
        closed_qty = self.exit_qty
        if exit_time is None and mark is not None:
            closed_value += abs(self.qty) * mark
            closed_qty += abs(self.qty)
        exit_price = closed_value / closed_qty if closed_qty else 0.0
        pnl = self.side * (closed_value - closed_qty * entry) - self.fees
        return Trade(
            symbol=symbol,
            side="long" if self.side > 0 else "short",
            qty=self.top,
            entry_time=self.opened,
            entry_price=entry,
            exit_time=exit_time,
            exit_price=exit_price,
            pnl=pnl,
            fees=self.fees,
        )


def trades_from_fills(fills: Iterable[Fill], marks: Mapping[str, float]) -> list[Trade]:
    """Round trips per symbol, in fill order; open ones last, marked at `marks`."""
    state: dict[str, _Open] = {}
    done: list[Trade] = []
    for fill in sorted(fills, key=lambda f: (f.time, f.symbol, f.client_order_id, f.seq)):
        signed = fill.signed_qty
        side = 1 if signed > 0 else -1
        left = abs(signed)
        pos = state.get(fill.symbol)
        while left:
            if pos is None:
                pos = state[fill.symbol] = _Open(side, fill.time)
            share = fill.fee * left / abs(signed)
            if pos.side == side:
                pos.qty += side * left
                pos.top = max(pos.top, abs(pos.qty))
                pos.entry_qty += left
                pos.entry_cost += left * fill.price
                pos.fees += share
                left = 0
                continue
            closing = min(left, abs(pos.qty))
            pos.fees += fill.fee * closing / abs(signed)
            pos.exit_qty += closing
            pos.exit_value += closing * fill.price
            pos.qty += side * closing
            left -= closing
            if pos.qty == 0:
                done.append(pos.trade(fill.symbol, fill.time))
                del state[fill.symbol]
                pos = None
    still = [pos.trade(symbol, None, marks.get(symbol)) for symbol, pos in sorted(state.items())]
    return done + still
