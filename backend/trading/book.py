"""Position and cash arithmetic, shared by the paper broker and the ledger's mirror of
any broker, so the two can never book a fill differently.

Conventions (docs/trading.md, "P&L"): average-cost positions; realised P&L is booked
when a fill reduces a position, at (fill price - average price) x shares closed, signed
for shorts; fees are kept apart from it (they come out of cash); a fill that crosses
zero closes the old side and opens the new one at the fill price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Holding:
    qty: int = 0
    avg_price: float = 0.0
    realised_pnl: float = 0.0

    def unrealised(self, mark: float) -> float:
        return (mark - self.avg_price) * self.qty


def after_fill(held: Holding, qty: int, price: float) -> Holding:
    """`held` after a fill of `qty` signed shares (positive: bought) at `price`."""
    if qty == 0:
        return held
    new_qty = held.qty + qty
    if held.qty == 0 or (held.qty > 0) == (qty > 0):
        avg = (held.avg_price * abs(held.qty) + price * abs(qty)) / abs(new_qty)
        return Holding(new_qty, avg, held.realised_pnl)
    closed = min(abs(qty), abs(held.qty))
    side = 1 if held.qty > 0 else -1
    realised = held.realised_pnl + (price - held.avg_price) * closed * side
    if new_qty == 0:
        return Holding(0, 0.0, realised)
    if (new_qty > 0) == (held.qty > 0):
        return Holding(new_qty, held.avg_price, realised)
    return Holding(new_qty, price, realised)  # crossed zero: the rest opens at the fill


def cash_after_fill(cash: float, qty: int, price: float, fee: float) -> float:
    return cash - qty * price - fee


def fill_price(open_price: float, qty: int, slippage_bps: float) -> float:
    """The paper fill: the next bar's open, moved against us by the slippage."""
    slip = slippage_bps / 10_000.0
    return open_price * (1.0 + slip) if qty > 0 else open_price * (1.0 - slip)


def fill_fee(qty: int, price: float, fee_rate: float) -> float:
    return abs(qty) * price * fee_rate


@dataclass(frozen=True, slots=True)
class ActionResult:
    holding: Holding
    cash_delta: float  # dividends received (paid, when short) plus cash in lieu


def after_action(held: Holding, split: float, dividend: float, open_price: float) -> ActionResult:
    """A split (shares x ratio, price / ratio; a fractional share is paid out in cash at
    the open) and a cash dividend per share, effective at a bar's open."""
    cash = held.qty * dividend
    if split == 1.0 or held.qty == 0:
        return ActionResult(held, cash)
    exact = held.qty * split
    whole = math.trunc(exact)
    cash += (exact - whole) * open_price
    return ActionResult(Holding(whole, held.avg_price / split, held.realised_pnl), cash)
