"""The paper broker (the default): an in-process exchange for backtests and the service.

Fill convention, the same as backtesting.py's default: a market order placed on a bar's
close fills, whole, at the *next* bar's open of its symbol, moved against us by
`slippage_bps`, and pays `fee_rate` x notional. Nothing fills at the decision bar's own
close, so no backtest can trade on a price it used to decide.

A split taking effect at the open cancels the symbol's pending orders (they were sized at
the old price); the engine re-decides on that bar. Splits and dividends move the paper
account's shares and cash as a real broker's would (backend.trading.book.after_action).

In the service the paper account's book *is* the ledger: at start the broker is restored
from it (`restore`), and every fill it makes is recorded there by the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from backend.models import Bar
from backend.trading.book import (
    Holding,
    after_action,
    after_fill,
    cash_after_fill,
    fill_fee,
    fill_price,
)
from backend.trading.broker import Account, BrokerOrder, BrokerPosition
from backend.trading.orders import Order, OrderStatus


class PaperBroker:
    name = "paper"

    def __init__(self, *, cash: float, slippage_bps: float = 0.0, fee_rate: float = 0.0):
        self._cash = cash
        self._slippage_bps = slippage_bps
        self._fee_rate = fee_rate
        self._holdings: dict[str, Holding] = {}
        self._marks: dict[str, float] = {}
        self._orders: dict[str, BrokerOrder] = {}
        self._pending: dict[str, list[str]] = {}
        self._decided_at: dict[str, str] = {}  # client order id -> its decision bar's time

    def restore(
        self, *, cash: float, holdings: Mapping[str, Holding], open_orders: Iterable[Order]
    ) -> None:
        """Reload the account from the ledger: cash, holdings, and the orders it had
        accepted and not yet filled (intents were never sent, so they are not here)."""
        self._cash = cash
        self._holdings = {s: h for s, h in holdings.items() if h.qty}
        self._orders.clear()
        self._pending.clear()
        for order in open_orders:
            if order.status is OrderStatus.INTENT:
                continue
            self._accept(order)

    # -- the Broker protocol -------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        known = self._orders.get(order.client_order_id)
        if known is not None:
            return known
        if order.qty <= 0 or order.side not in ("buy", "sell"):
            rejected = BrokerOrder.answer(
                order,
                broker_order_id=f"paper-{order.client_order_id}",
                status=OrderStatus.REJECTED,
                reason="qty must be a positive whole number of shares",
            )
            self._orders[order.client_order_id] = rejected
            return rejected
        return self._accept(order)

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        return self._orders.get(client_order_id)

    def positions(self) -> list[BrokerPosition]:
        return [
            BrokerPosition(symbol, h.qty, h.avg_price)
            for symbol, h in sorted(self._holdings.items())
            if h.qty
        ]

    def account(self) -> Account:
        value = sum(
            h.qty * self._marks.get(symbol, h.avg_price) for symbol, h in self._holdings.items()
        )
        return Account(cash=self._cash, equity=self._cash + value)

    def on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        if bar.split != 1.0 or bar.dividend:
            held = self._holdings.get(symbol)
            if held is not None:
                result = after_action(held, bar.split, bar.dividend, bar.open)
                self._holdings[symbol] = result.holding
                self._cash += result.cash_delta
            if bar.split != 1.0:
                for cid in self._pending.pop(symbol, []):
                    self._orders[cid] = replace(
                        self._orders[cid],
                        status=OrderStatus.CANCELED,
                        reason=f"split {bar.split:g}:1 at {bar.iso_time} before it filled",
                    )
        self._marks[symbol] = bar.close
        pending = self._pending.pop(symbol, None)
        if not pending:
            return
        for cid in pending:
            if bar.iso_time <= self._decided_at.get(cid, ""):
                # The decision bar itself (a step re-run after a restart): an order never
                # fills at a bar it was decided on, only at a later bar's open.
                self._pending.setdefault(symbol, []).append(cid)
                continue
            order = self._orders[cid]
            qty = order.qty - order.filled_qty
            signed = qty if order.side == "buy" else -qty
            price = fill_price(bar.open, signed, self._slippage_bps)
            fee = fill_fee(signed, price, self._fee_rate)
            self._cash = cash_after_fill(self._cash, signed, price, fee)
            self._holdings[symbol] = after_fill(
                self._holdings.get(symbol, Holding()), signed, price
            )
            self._orders[cid] = replace(
                order,
                status=OrderStatus.FILLED,
                filled_qty=order.qty,
                filled_avg_price=price,
                fee=order.fee + fee,
                filled_at=bar.iso_time,
            )

    # -- internals -------------------------------------------------------------------

    def _accept(self, order: Order) -> BrokerOrder:
        accepted = BrokerOrder.answer(
            order, broker_order_id=f"paper-{order.client_order_id}", status=OrderStatus.SUBMITTED
        )
        self._orders[order.client_order_id] = accepted
        self._pending.setdefault(order.symbol, []).append(order.client_order_id)
        self._decided_at[order.client_order_id] = order.bar_time
        return accepted
