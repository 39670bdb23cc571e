"""Orders: idempotent client order ids, and an explicit order state machine.

A client order id is a pure function of (namespace, strategy, symbol, bar time): the
engine places at most one order per (strategy, symbol, bar), so a retry, a repeated step
or a restart computes the same id, and both the ledger (a conditional put) and the broker
(Alpaca refuses a second order with the same client_order_id) refuse the duplicate.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

MAX_CLIENT_ORDER_ID = 48  # Alpaca's limit (docs/CONTRACTS.md section 9)
_UNSAFE = re.compile(r"[^A-Za-z0-9.]")


class OrderStatus(StrEnum):
    INTENT = "intent"  # recorded in the ledger, not yet known to be at the broker
    SUBMITTED = "submitted"  # the broker has it, nothing filled yet
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)
# Every legal move. An intent may jump straight to any broker state: after a crash
# between sending and recording, the first look at the broker may find it filled.
# An intent is canceled when it was never sent and its bar has passed.
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.INTENT: frozenset(
        {
            OrderStatus.SUBMITTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.SUBMITTED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        }
    ),
    OrderStatus.PARTIALLY_FILLED: frozenset(
        {
            OrderStatus.PARTIALLY_FILLED,  # another partial fill
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
    ),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
}


class IllegalTransition(ValueError):
    """An order was asked to move between two states the machine does not connect."""


def check_transition(current: OrderStatus, new: OrderStatus) -> None:
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"order status {current.value} -> {new.value} is not allowed")


def bar_stamp(bar_time: datetime) -> str:
    t = bar_time  # YYYYMMDDHHMM; formatted by hand: strftime is the slower path
    return f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}"


def client_order_id(namespace: str, strategy: str, symbol: str, bar_time: datetime) -> str:
    """`<strategy>-<symbol>-<bar time>-<hash>`, at most 48 characters.

    Strategy and symbol are shortened to 10 characters each for reading; the hash (of the
    full values and the namespace, the stack's environment, so two stacks sharing a
    paper account never collide) keeps the id unique."""
    stamp = bar_stamp(bar_time)
    digest = hashlib.sha256(f"{namespace}|{strategy}|{symbol}|{stamp}".encode()).hexdigest()
    short_strategy = _UNSAFE.sub("", strategy.replace("_", ""))[:10]
    short_symbol = _UNSAFE.sub("_", symbol)[:10]
    cid = f"{short_strategy}-{short_symbol}-{stamp}-{digest[:12]}"
    assert len(cid) <= MAX_CLIENT_ORDER_ID  # noqa: S101 - 10+1+10+1+12+1+12 = 47
    return cid


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the ledger records it. `qty` is signed by `side`: always positive."""

    client_order_id: str
    strategy: str
    symbol: str
    bar_time: str  # ISO UTC of the bar the decision was made on
    side: str  # "buy" or "sell"
    qty: int
    status: OrderStatus = OrderStatus.INTENT
    filled_qty: int = 0
    filled_avg_price: float = 0.0
    fee: float = 0.0  # fees booked on its fills so far
    broker_order_id: str = ""
    reason: str = ""
    version: int = 0  # the ledger's optimistic lock; 0: not stored yet

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "buy" else -self.qty

    @property
    def remaining(self) -> int:
        """Signed shares still to fill (0 once terminal)."""
        if self.status.terminal:
            return 0
        left = self.qty - self.filled_qty
        return left if self.side == "buy" else -left

    def moved(
        self,
        status: OrderStatus,
        *,
        filled_qty: int | None = None,
        filled_avg_price: float | None = None,
        fee: float | None = None,
        broker_order_id: str | None = None,
    ) -> Order:
        """A copy in `status`, refusing an illegal move; staying put is always allowed."""
        if status != self.status:
            check_transition(self.status, status)
        return replace(
            self,
            status=status,
            filled_qty=self.filled_qty if filled_qty is None else filled_qty,
            filled_avg_price=(
                self.filled_avg_price if filled_avg_price is None else filled_avg_price
            ),
            fee=self.fee if fee is None else fee,
            broker_order_id=self.broker_order_id if broker_order_id is None else broker_order_id,
        )


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: str
    # The order's cumulative filled shares after this fill: unique per fill of an order,
    # and the same whichever run records it, so the ledger refuses a fill booked twice.
    seq: int
    symbol: str
    side: str
    qty: int
    price: float
    fee: float
    time: str  # ISO UTC: the bar whose open it filled at (paper) or the broker's time

    @property
    def signed_qty(self) -> int:
        return self.qty if self.side == "buy" else -self.qty
