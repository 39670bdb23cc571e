"""Alpaca behind the Broker interface, through its official SDK (alpaca-py).

alpaca-py is imported when a broker is made, never with this module, so the paper mode
and the backtester run without it. Market day orders only, sized in whole shares, each
with our client order id: Alpaca refuses a second order with the same id (HTTP 422), and
`submit` then returns the first one, so a resend after a crash cannot double an order.

The keys come from Secrets Manager by ARN (`parse_credentials`); they live in a `Secret`
whose repr hides them, and no message here ever includes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from backend.models import Bar
from backend.secrets import Secret
from backend.trading.broker import (
    Account,
    BrokerConfigError,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
)
from backend.trading.orders import Order, OrderStatus

# Alpaca's order states -> ours. Everything still working at the exchange is SUBMITTED;
# we never replace orders, so a replaced one is as good as canceled for us.
_STATUS = {
    "new": OrderStatus.SUBMITTED,
    "accepted": OrderStatus.SUBMITTED,
    "pending_new": OrderStatus.SUBMITTED,
    "accepted_for_bidding": OrderStatus.SUBMITTED,
    "held": OrderStatus.SUBMITTED,
    "calculated": OrderStatus.SUBMITTED,
    "suspended": OrderStatus.SUBMITTED,
    "stopped": OrderStatus.SUBMITTED,
    "pending_cancel": OrderStatus.SUBMITTED,
    "pending_replace": OrderStatus.SUBMITTED,
    "done_for_day": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}
DUPLICATE_CLIENT_ORDER_ID = 40010001  # Alpaca's error code, with HTTP 422
SECRET_SHAPE = '{"key_id": "...", "secret_key": "..."}'  # noqa: S105 - a shape, not a key


@dataclass(frozen=True, slots=True)
class AlpacaCredentials:
    key_id: str
    secret_key: Secret

    def __repr__(self) -> str:
        return "AlpacaCredentials(***)"


def parse_credentials(secret: Secret | None, arn: str) -> AlpacaCredentials:
    """The broker keys from the secret's value, or one line saying what is wrong with it
    (naming the ARN and the field, never the value)."""
    if secret is None:
        raise BrokerConfigError(
            f"BROKER_SECRET_ARN: secret {arn} has no value; store the Alpaca keys in it as "
            f"JSON {SECRET_SHAPE} (aws secretsmanager put-secret-value --secret-id {arn} "
            "--secret-string file://alpaca.json)"
        )
    problem = ""
    doc: Any = None
    try:
        doc = json.loads(secret.reveal())
    except ValueError:
        problem = "is not JSON"  # the decoder's message quotes the text: never shown
    if not problem and not isinstance(doc, dict):
        problem = "is not a JSON object"
    if not problem:
        for field in ("key_id", "secret_key"):
            value = doc.get(field)
            if not isinstance(value, str) or not value.strip():
                problem = f"has no `{field}` (a non-empty string)"
                break
    if problem:
        raise BrokerConfigError(
            f"BROKER_SECRET_ARN: secret {arn} {problem}; it must be {SECRET_SHAPE}"
        )
    return AlpacaCredentials(
        key_id=doc["key_id"].strip(), secret_key=Secret(doc["secret_key"].strip())
    )


def _number(value: Any) -> float:
    return 0.0 if value in (None, "") else float(value)


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


class AlpacaBroker:
    name = "alpaca"

    def __init__(
        self,
        *,
        credentials: AlpacaCredentials,
        paper: bool = True,
        url: str | None = None,
        client: Any = None,
    ):
        self.paper = paper
        if client is None:
            from alpaca.trading.client import TradingClient

            client = TradingClient(
                api_key=credentials.key_id,
                secret_key=credentials.secret_key.reveal(),
                paper=paper,
                url_override=url,
            )
        self._client = client

    def _convert(self, raw: Any) -> BrokerOrder:
        status = _enum_value(raw.status)
        side = _enum_value(raw.side)
        filled_at = raw.filled_at.strftime("%Y-%m-%dT%H:%M:%SZ") if raw.filled_at else ""
        return BrokerOrder(
            client_order_id=str(raw.client_order_id),
            broker_order_id=str(raw.id),
            symbol=str(raw.symbol),
            side=side,
            qty=int(_number(raw.qty)),
            status=_STATUS.get(status, OrderStatus.SUBMITTED),
            filled_qty=int(_number(raw.filled_qty)),
            filled_avg_price=_number(raw.filled_avg_price),
            filled_at=filled_at,
            reason=status if status in ("rejected", "canceled", "expired") else "",
        )

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        """Run one SDK call; its failures become BrokerError (or an APIError to inspect)."""
        import requests
        from alpaca.common.exceptions import APIError

        try:
            return fn(*args)
        except APIError:
            raise
        except requests.RequestException as err:
            raise BrokerError(f"alpaca: {what}: {type(err).__name__}") from None

    @staticmethod
    def _error(err: Any) -> tuple[int | None, int | None, str]:
        status = err.status_code
        try:
            code = int(err.code)
            message = str(err.message)
        except (ValueError, KeyError, TypeError):
            code, message = None, str(err)[:200]
        return status, code, message

    def submit(self, order: Order) -> BrokerOrder:
        from alpaca.common.exceptions import APIError
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        request = MarketOrderRequest(
            symbol=order.symbol,
            qty=order.qty,
            side=OrderSide.BUY if order.side == "buy" else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            client_order_id=order.client_order_id,
        )
        try:
            return self._convert(self._call("submit", self._client.submit_order, request))
        except APIError as err:
            status, code, message = self._error(err)
            if code == DUPLICATE_CLIENT_ORDER_ID or (
                status == 422 and "client_order_id" in message
            ):
                existing = self.get_order(order.client_order_id)
                if existing is not None:
                    return existing
            if status in (403, 422):
                # The order itself was refused (buying power, an untradable symbol...).
                return BrokerOrder.answer(
                    order, broker_order_id="", status=OrderStatus.REJECTED, reason=message
                )
            raise BrokerError(
                f"alpaca: submit {order.client_order_id}: HTTP {status} {message}"
            ) from None

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        from alpaca.common.exceptions import APIError

        try:
            raw = self._call("get order", self._client.get_order_by_client_id, client_order_id)
        except APIError as err:
            status, _, message = self._error(err)
            if status == 404:
                return None
            raise BrokerError(
                f"alpaca: get order {client_order_id}: HTTP {status} {message}"
            ) from None
        return self._convert(raw)

    def positions(self) -> list[BrokerPosition]:
        from alpaca.common.exceptions import APIError

        try:
            raw = self._call("positions", self._client.get_all_positions)
        except APIError as err:
            status, _, message = self._error(err)
            raise BrokerError(f"alpaca: positions: HTTP {status} {message}") from None
        out = []
        for p in raw:
            qty = int(_number(p.qty))
            out.append(BrokerPosition(str(p.symbol), qty, _number(p.avg_entry_price)))
        return sorted(out, key=lambda p: p.symbol)

    def account(self) -> Account:
        from alpaca.common.exceptions import APIError

        try:
            raw = self._call("account", self._client.get_account)
        except APIError as err:
            status, _, message = self._error(err)
            raise BrokerError(f"alpaca: account: HTTP {status} {message}") from None
        return Account(cash=_number(raw.cash), equity=_number(raw.equity))

    def on_bar(self, bar: Bar) -> None:
        """Alpaca fills on its own; the engine reconciles by client order id."""
