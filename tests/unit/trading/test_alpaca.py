"""AlpacaBroker through alpaca-py against a local fake of Alpaca's API; no network."""

import io
import json
import logging
from contextlib import redirect_stderr, redirect_stdout

import pytest

from backend import jsonlog
from backend.secrets import Secret
from backend.trading.alpaca import AlpacaBroker, AlpacaCredentials, parse_credentials
from backend.trading.broker import BrokerConfigError, BrokerError
from backend.trading.engine import BarEvent, Engine
from backend.trading.ledger import Ledger, MemoryStore
from backend.trading.orders import Order, OrderStatus
from backend.trading.settings import parse_trading_config
from tests.unit.trading.fake_alpaca import FakeAlpaca, position_json
from tests.unit.trading.helpers import after_close, bars

KEY_ID = "PKTESTKEYID0001"
SECRET = "s3cr3t-alpaca-value-never-logged"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:alpaca-AbCdEf"


@pytest.fixture
def fake():
    with FakeAlpaca(key_id=KEY_ID, secret_key=SECRET) as server:
        yield server


def broker_for(fake, secret=SECRET):
    creds = AlpacaCredentials(KEY_ID, Secret(secret))
    return AlpacaBroker(credentials=creds, paper=True, url=fake.url)


def order(cid="cid-1", side="buy", qty=10):
    return Order(cid, "sma_crossover", "AAPL", "2024-03-15T14:30:00Z", side, qty)


def test_submit_then_get_by_client_order_id(fake):
    broker = broker_for(fake)
    placed = broker.submit(order())
    assert placed.status is OrderStatus.SUBMITTED
    assert (placed.symbol, placed.side, placed.qty) == ("AAPL", "buy", 10)
    assert fake.orders["cid-1"]["time_in_force"] == "day"
    fake.fill("cid-1", 171.25)
    got = broker.get_order("cid-1")
    assert got.status is OrderStatus.FILLED
    assert (got.filled_qty, got.filled_avg_price) == (10, 171.25)
    assert got.filled_at == "2024-03-18T13:30:00Z"
    assert broker.get_order("unknown") is None


def test_a_duplicate_client_order_id_returns_the_first_order(fake):
    broker = broker_for(fake)
    first = broker.submit(order())
    again = broker.submit(order(qty=99))
    assert again.broker_order_id == first.broker_order_id and again.qty == 10
    assert len(fake.orders) == 1
    assert fake.requests.count(("POST", "/v2/orders")) == 2  # Alpaca refused the second


def test_a_refused_order_is_rejected_not_an_outage(fake):
    fake.reject_next = "insufficient buying power"
    placed = broker_for(fake).submit(order())
    assert placed.status is OrderStatus.REJECTED
    assert placed.reason == "insufficient buying power"


def test_positions_and_account(fake):
    fake.positions = [position_json("MSFT", 5, 400.0), position_json("AAPL", -3, 170.0)]
    broker = broker_for(fake)
    assert [(p.symbol, p.qty, p.avg_price) for p in broker.positions()] == [
        ("AAPL", -3, 170.0),
        ("MSFT", 5, 400.0),
    ]
    account = broker.account()
    assert (account.cash, account.equity) == (100_000.0, 100_000.0)


def test_wrong_keys_are_an_error_without_the_keys(fake):
    with pytest.raises(BrokerError) as err:
        broker_for(fake, secret="wrong-secret").account()
    assert "401" in str(err.value) and "wrong-secret" not in str(err.value)


def test_engine_trades_through_alpaca_and_reconciles_fills(fake):
    """The same engine as the paper broker, against the fake: intent, order, fill."""
    config = parse_trading_config(
        {"environment": "dev", "tradingMode": "alpaca-paper", "riskLimits": {"maxOpenPositions": 1}}
    )
    broker = broker_for(fake)
    store = MemoryStore()
    x = bars("AAPL", [100.0, 101.0])
    engine = Engine(config=config, universe=4, ledger=Ledger(store), broker=broker, namespace="dev")
    assert engine.cash.cash == 100_000.0  # the account's cash, read at start
    engine.step([BarEvent(x[0], 1)], now=after_close(x[0]))
    (cid,) = fake.orders
    assert int(fake.orders[cid]["qty"]) == 250  # 100000 / 4 / 100
    fake.fill(cid, 100.5)
    engine.step([BarEvent(x[1], 1)], now=after_close(x[1]))
    ledger = Ledger(store)
    assert ledger.positions()["AAPL"].holding.qty == 250
    assert ledger.order(cid).status is OrderStatus.FILLED
    assert ledger.cash().cash == pytest.approx(100_000 - 250 * 100.5)


def test_partial_fills_are_booked_one_by_one(fake):
    broker = broker_for(fake)
    config = parse_trading_config({"environment": "dev", "tradingMode": "alpaca-paper"})
    engine = Engine(
        config=config, universe=4, ledger=Ledger(MemoryStore()), broker=broker, namespace="dev"
    )
    x = bars("AAPL", [100.0, 101.0, 102.0])
    engine.step([BarEvent(x[0], 1)], now=after_close(x[0]))
    (cid,) = fake.orders
    fake.fill(cid, 100.0, qty=100)
    engine.step([BarEvent(x[1], 1)], now=after_close(x[1]))
    fake.fill(cid, 100.6, qty=250)  # cumulative average: 150 more at 101.0
    engine.step([BarEvent(x[2], 1)], now=after_close(x[2]))
    fills = engine.ledger.fills()
    assert [(f.qty, f.price) for f in fills] == [(100, 100.0), (150, pytest.approx(101.0))]
    assert engine.positions["AAPL"].holding.avg_price == pytest.approx(100.6)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, f"BROKER_SECRET_ARN: secret {ARN} has no value;"),
        ("not json {", f"BROKER_SECRET_ARN: secret {ARN} is not JSON;"),
        ('["a"]', f"BROKER_SECRET_ARN: secret {ARN} is not a JSON object;"),
        ('{"key_id": "k"}', f"BROKER_SECRET_ARN: secret {ARN} has no `secret_key`"),
        ('{"key_id": "", "secret_key": "x"}', f"BROKER_SECRET_ARN: secret {ARN} has no `key_id`"),
    ],
)
def test_missing_or_malformed_secret_is_one_line_naming_the_field(value, message):
    with pytest.raises(BrokerConfigError) as err:
        parse_credentials(None if value is None else Secret(value), ARN)
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text
    if value:
        assert value not in text


def test_the_secret_never_appears_in_any_log_output(fake, caplog):
    """Every logger at DEBUG (urllib3's request lines included), stdout and stderr, while
    the broker works, fails and is printed."""
    caplog.set_level(logging.DEBUG)
    root = logging.getLogger()
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            creds = parse_credentials(
                Secret(json.dumps({"key_id": KEY_ID, "secret_key": SECRET})), ARN
            )
            broker = AlpacaBroker(credentials=creds, paper=True, url=fake.url)
            print(creds, repr(creds), broker)
            jsonlog.log(logging.INFO, "credentials", creds=creds)
            broker.submit(order())
            broker.submit(order())  # the duplicate path
            broker.get_order("missing")
            broker.positions()
            broker.account()
            with pytest.raises(BrokerError):
                broker_for(fake, secret=SECRET + "-bad").account()
    finally:
        root.removeHandler(handler)
    everything = out.getvalue() + err.getvalue() + caplog.text
    assert "/v2/orders" in caplog.text  # the capture did see the HTTP traffic
    assert SECRET not in everything
