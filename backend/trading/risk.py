"""Risk limits: every proposed order passes `check` before it leaves.

The strategy proposes a new position for one symbol; `check` returns the position the
limits allow (clipped toward the current one) or refuses. Limits only ever reduce what
an order does; they never create a trade of their own (flattening on a halted kill switch
is the engine's decision, which these checks then let through).

Order of the checks, each named in the decision's log line:
  stale_data          the bar is more than maxStaleBars sessions old: nothing trades
  kill_switch         halted: only orders that reduce a position pass
  no_short            allowShort false: a position below zero is clipped to flat
  max_position_shares |position| <= maxPositionShares
  max_position_notional |position| x price <= maxPositionNotional
  max_gross_exposure  sum of |position value| <= maxGrossExposure x equity
  max_open_positions  a new position needs a free slot
The daily-loss limit is what halts the kill switch (`daily_loss_breached`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from backend.trading.settings import RiskLimits


@dataclass(frozen=True, slots=True)
class Exposure:
    """The book around the order, at the decision's prices."""

    equity: float
    gross_other: float  # sum of |position value| of every other symbol (pending included)
    open_other: int  # other symbols with a position (or a pending order opening one)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    target: int  # the position the limits allow
    refused: str = ""  # the limit that stopped the order altogether, if one did
    clipped: tuple[str, ...] = ()  # limits that made it smaller


def no_room(current: int, open_other: int, limits: RiskLimits) -> bool:
    """A new position (from flat) with every slot taken: max_open_positions refuses it."""
    return current == 0 and open_other >= limits.max_open_positions


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def check(  # noqa: PLR0911, PLR0912 - a checklist: each limit returns or clips in turn
    *,
    current: int,
    desired: int,
    price: float,
    limits: RiskLimits,
    exposure: Exposure,
    halted: bool,
    bars_behind: int,
) -> RiskDecision:
    """The position allowed instead of `desired`, given `current` (position plus pending
    orders, signed shares) and the book. `target == current` means no order."""
    if desired == current:
        return RiskDecision(current)
    if bars_behind > limits.max_stale_bars:
        return RiskDecision(current, refused="stale_data")
    clipped: list[str] = []
    target = desired
    if halted:
        # Only toward zero: never a new position, a bigger one, or the other side.
        if _sign(target) != _sign(current) or abs(target) > abs(current):
            target = 0 if _sign(target) != _sign(current) else current
        if target == current:
            return RiskDecision(current, refused="kill_switch")
    if target < 0 and not limits.allow_short:
        target = 0
        clipped.append("no_short")
        if target == current:
            return RiskDecision(current, refused="no_short")

    # The size limits apply to the part of the position on the target's side that is
    # new: a reduction always passes, and a position already above a limit (prices
    # moved) is never forced smaller by these checks.
    side = _sign(target)
    kept = abs(current) if _sign(current) == side else 0
    size = abs(target)
    if size > kept:
        cap = size
        if cap > limits.max_position_shares:
            cap = limits.max_position_shares
            clipped.append("max_position_shares")
        by_notional = math.floor(limits.max_position_notional / price) if price > 0 else 0
        if cap > by_notional:
            cap = by_notional
            clipped.append("max_position_notional")
        room = limits.max_gross_exposure * exposure.equity - exposure.gross_other
        by_gross = math.floor(room / price) if price > 0 and room > 0 else 0
        if cap > by_gross:
            cap = by_gross
            clipped.append("max_gross_exposure")
        size = max(cap, kept)
        target = side * size
        if target != 0 and no_room(current, exposure.open_other, limits):
            return RiskDecision(current, refused="max_open_positions")
    if target == current:
        return RiskDecision(current, refused=clipped[-1] if clipped else "no_change")
    return RiskDecision(target, clipped=tuple(clipped))


def daily_loss_breached(equity: float, previous_close_equity: float, max_loss_pct: float) -> bool:
    """True when equity has fallen more than max_loss_pct % below the previous day's
    closing equity. 0 switches the check off."""
    if max_loss_pct <= 0 or previous_close_equity <= 0:
        return False
    return equity < previous_close_equity * (1.0 - max_loss_pct / 100.0)
