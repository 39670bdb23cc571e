"""A local stand-in for Alpaca's trading API (v2), serving its real response shapes.

A threaded http.server on 127.0.0.1 and a free port: GET /v2/account, GET /v2/positions,
POST /v2/orders (a second order with the same client_order_id gets Alpaca's 422,
code 40010001), GET /v2/orders:by_client_order_id (404, code 40410000, when unknown).
Requests without the right APCA-API-KEY-ID / APCA-API-SECRET-KEY headers get 401.
`fill(cid, price)` fills an order, as the market would.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

T0 = "2024-03-15T20:05:01.123456Z"


def order_json(body: dict, status: str = "accepted") -> dict:
    return {
        "id": str(uuid.uuid4()),
        "client_order_id": body["client_order_id"],
        "created_at": T0,
        "updated_at": T0,
        "submitted_at": T0,
        "filled_at": None,
        "expired_at": None,
        "canceled_at": None,
        "failed_at": None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": body["symbol"],
        "asset_class": "us_equity",
        "notional": None,
        # Alpaca answers with the quantity as a decimal string ("250", not "250.0").
        "qty": format(float(body["qty"]), "g"),
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "",
        "order_type": "market",
        "type": "market",
        "side": body["side"],
        "time_in_force": body["time_in_force"],
        "limit_price": None,
        "stop_price": None,
        "status": status,
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "position_intent": "buy_to_open" if body["side"] == "buy" else "sell_to_close",
    }


class FakeAlpaca:
    def __init__(self, *, key_id: str, secret_key: str):
        self.key_id, self.secret_key = key_id, secret_key
        self.orders: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.reject_next = ""  # a message: the next order gets 403 with it
        self.cash = "100000"
        self.positions: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeAlpaca:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fill(self, cid: str, price: float, qty: int | None = None) -> None:
        with self._lock:
            order = self.orders[cid]
            filled = int(order["qty"]) if qty is None else qty
            order["filled_qty"] = str(filled)
            order["filled_avg_price"] = str(price)
            order["filled_at"] = "2024-03-18T13:30:00.5Z"
            order["status"] = "filled" if filled == int(order["qty"]) else "partially_filled"

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, doc) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                ok = (
                    self.headers.get("APCA-API-KEY-ID") == fake.key_id
                    and self.headers.get("APCA-API-SECRET-KEY") == fake.secret_key
                )
                if not ok:
                    self._send(401, {"code": 40110000, "message": "request is not authorized"})
                return ok

            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append(("GET", url.path))
                if not self._authorised():
                    return
                if url.path == "/v2/account":
                    self._send(200, account_json(fake.cash))
                elif url.path == "/v2/positions":
                    self._send(200, fake.positions)
                elif url.path == "/v2/orders:by_client_order_id":
                    cid = parse_qs(url.query).get("client_order_id", [""])[0]
                    with fake._lock:
                        order = fake.orders.get(cid)
                    if order is None:
                        self._send(404, {"code": 40410000, "message": "order not found"})
                    else:
                        self._send(200, order)
                else:
                    self._send(404, {"code": 40400000, "message": "endpoint not found"})

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if fake.reject_next:
                    message, fake.reject_next = fake.reject_next, ""
                    self._send(403, {"code": 40310000, "message": message})
                    return
                with fake._lock:
                    if body["client_order_id"] in fake.orders:
                        self._send(
                            422, {"code": 40010001, "message": "client_order_id must be unique"}
                        )
                        return
                    order = order_json(body)
                    fake.orders[body["client_order_id"]] = order
                self._send(200, order)

        return Handler


def account_json(cash: str) -> dict:
    return {
        "id": "904837e3-3b76-47ec-b432-046db621571b",
        "account_number": "PA3EXAMPLE",
        "status": "ACTIVE",
        "crypto_status": "ACTIVE",
        "currency": "USD",
        "buying_power": str(float(cash) * 2),
        "regt_buying_power": str(float(cash) * 2),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": cash,
        "cash": cash,
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": cash,
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "created_at": "2024-01-02T15:00:00.000000Z",
        "trade_suspended_by_user": False,
        "multiplier": "2",
        "shorting_enabled": True,
        "equity": cash,
        "last_equity": cash,
        "long_market_value": "0",
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "daytrade_count": 0,
    }


def position_json(symbol: str, qty: int, avg: float) -> dict:
    return {
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": symbol,
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": str(avg),
        "qty": str(qty),
        "qty_available": str(qty),
        "side": "long" if qty > 0 else "short",
        "market_value": str(qty * avg),
        "cost_basis": str(qty * avg),
        "unrealized_pl": "0",
        "unrealized_plpc": "0",
        "unrealized_intraday_pl": "0",
        "unrealized_intraday_plpc": "0",
        "current_price": str(avg),
        "lastday_price": str(avg),
        "change_today": "0",
    }
