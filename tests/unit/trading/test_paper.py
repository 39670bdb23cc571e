"""The paper broker and the P&L arithmetic, against hand-computed values."""

import pytest

from backend.trading.book import Holding, after_action, after_fill
from backend.trading.orders import Order, OrderStatus
from backend.trading.paper import PaperBroker
from tests.unit.trading.helpers import bars


def order(cid, side, qty, symbol="X"):
    return Order(cid, "sma_crossover", symbol, "2000-01-01T00:00:00Z", side, qty)


def test_average_cost_realised_and_unrealised_pnl():
    h = after_fill(Holding(), 100, 10.0)  # buy 100 @ 10
    h = after_fill(h, 100, 12.0)  # buy 100 @ 12 -> avg 11
    assert (h.qty, h.avg_price) == (200, 11.0)
    h = after_fill(h, -50, 15.0)  # sell 50 @ 15: +4 x 50
    assert (h.qty, h.avg_price, h.realised_pnl) == (150, 11.0, 200.0)
    assert h.unrealised(13.0) == pytest.approx(300.0)  # (13 - 11) x 150
    h = after_fill(h, -200, 9.0)  # sell 200 @ 9: closes 150 (-2 x 150), opens 50 short @ 9
    assert (h.qty, h.avg_price, h.realised_pnl) == (-50, 9.0, -100.0)
    h = after_fill(h, 50, 8.0)  # cover 50 @ 8: +1 x 50
    assert (h.qty, h.realised_pnl) == (0, -50.0)


def test_paper_fill_at_next_open_with_slippage_and_fee():
    # GIVEN 20 bps of slippage and a 0.1% fee
    broker = PaperBroker(cash=10_000.0, slippage_bps=20.0, fee_rate=0.001)
    day1, day2, day3 = bars("X", [100.0, 110.0, 121.0], opens=[99.0, 105.0, 120.0])
    broker.on_bar(day1)
    # WHEN a buy of 10 is placed on day 1's close
    placed = broker.submit(order("b1", "buy", 10))
    assert placed.status is OrderStatus.SUBMITTED
    # THEN nothing fills on the decision bar; it fills at day 2's open: 105 x 1.002
    assert broker.get_order("b1").filled_qty == 0
    broker.on_bar(day2)
    filled = broker.get_order("b1")
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_avg_price == pytest.approx(105.21)
    assert filled.fee == pytest.approx(1.0521)  # 0.001 x 10 x 105.21
    assert broker.account().cash == pytest.approx(10_000 - 1052.1 - 1.0521)
    assert broker.account().equity == pytest.approx(10_000 - 1052.1 - 1.0521 + 10 * 110.0)
    # A sell fills below the open: 120 x 0.998
    broker.submit(order("s1", "sell", 10))
    broker.on_bar(day3)
    sold = broker.get_order("s1")
    assert sold.filled_avg_price == pytest.approx(119.76)
    assert broker.positions() == []
    expected = 10_000 - 1052.1 - 1.0521 + 1197.6 - 1.1976
    assert broker.account().cash == pytest.approx(expected)


def test_submit_is_idempotent_by_client_order_id():
    broker = PaperBroker(cash=1000.0)
    first = broker.submit(order("same", "buy", 1))
    again = broker.submit(order("same", "buy", 5))
    assert again == first
    broker.on_bar(bars("X", [10.0])[0])
    assert broker.positions()[0].qty == 1


def test_split_cancels_pending_orders_and_moves_shares_dividend_pays_cash():
    broker = PaperBroker(cash=0.0)
    history = bars("X", [400.0, 400.0, 100.0, 101.0], splits={2: 4.0}, dividends={3: 0.5})
    broker.on_bar(history[0])
    broker.submit(order("b", "buy", 3))
    broker.on_bar(history[1])  # bought 3 @ 400 (open = previous close)
    broker.submit(order("b2", "buy", 1))
    broker.on_bar(history[2])  # 4:1 split at the open: 12 shares @ 100, b2 canceled
    assert broker.positions()[0].qty == 12
    assert broker.positions()[0].avg_price == pytest.approx(100.0)
    assert broker.get_order("b2").status is OrderStatus.CANCELED
    broker.on_bar(history[3])  # dividend 0.50 on 12 shares
    assert broker.account().cash == pytest.approx(-1200.0 + 6.0)


def test_fractional_split_pays_cash_in_lieu():
    result = after_action(Holding(101, 30.0), 1.5, 0.0, 20.0)
    assert result.holding.qty == 151  # 151.5 -> 151
    assert result.holding.avg_price == pytest.approx(20.0)
    assert result.cash_delta == pytest.approx(0.5 * 20.0)
