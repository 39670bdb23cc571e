"""The broker interface: the paper broker and Alpaca answer the same four calls.

Modelled on alpaca-py's TradingClient (submit by client order id, look up by client
order id, positions, account), which is also how Lumibot's brokers look: the engine
never knows which one it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backend.models import Bar
from backend.trading.orders import Order, OrderStatus


class BrokerError(RuntimeError):
    """The broker could not be reached or gave an answer we cannot use. The step stops
    and is retried later; nothing is recorded for an order whose fate is unknown."""


class BrokerConfigError(ValueError):
    """The broker cannot be set up (credentials missing or malformed); one line naming
    the variable or secret field, never a secret's value."""


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    client_order_id: str
    broker_order_id: str
    symbol: str
    side: str
    qty: int
    status: OrderStatus
    filled_qty: int = 0
    filled_avg_price: float = 0.0
    fee: float = 0.0  # cumulative fees charged on the fills so far
    filled_at: str = ""  # ISO UTC of the latest fill
    reason: str = ""  # why the broker rejected or canceled it

    @classmethod
    def answer(
        cls, order: Order, *, broker_order_id: str, status: OrderStatus, reason: str = ""
    ) -> BrokerOrder:
        """A broker's first answer to an order (accepted or refused): nothing filled yet."""
        return cls(
            client_order_id=order.client_order_id,
            broker_order_id=broker_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            status=status,
            reason=reason,
        )


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    symbol: str
    qty: int
    avg_price: float


@dataclass(frozen=True, slots=True)
class Account:
    cash: float
    equity: float


class Broker(Protocol):
    name: str

    def submit(self, order: Order) -> BrokerOrder:
        """Send a market day order for `order.qty` shares. Idempotent by client order
        id: a second submit of the same id returns the first order, never a new one."""

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client order id, or None if the broker never got it."""

    def positions(self) -> list[BrokerPosition]: ...

    def account(self) -> Account: ...

    def on_bar(self, bar: Bar) -> None:
        """A new closed bar (raw prices). The paper broker fills its pending orders for
        that symbol at the bar's open; a real broker has nothing to do."""
