"""Client order ids and the order state machine."""

from datetime import UTC, datetime

import pytest

from backend.trading.orders import (
    MAX_CLIENT_ORDER_ID,
    IllegalTransition,
    Order,
    OrderStatus,
    client_order_id,
)

T = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)


def test_client_order_id_is_deterministic_and_readable():
    cid = client_order_id("dev", "sma_crossover", "AAPL", T)
    assert cid == client_order_id("dev", "sma_crossover", "AAPL", T)
    assert cid.startswith("smacrossov-AAPL-202403151430-")


def test_client_order_id_differs_by_every_input():
    base = client_order_id("dev", "sma_crossover", "AAPL", T)
    others = {
        client_order_id("prod", "sma_crossover", "AAPL", T),
        client_order_id("dev", "rsi_mean_reversion", "AAPL", T),
        client_order_id("dev", "sma_crossover", "MSFT", T),
        client_order_id("dev", "sma_crossover", "AAPL", T.replace(day=18)),
    }
    assert base not in others and len(others) == 4


def test_client_order_id_fits_alpacas_limit_for_the_longest_names():
    cid = client_order_id("environment-long", "rsi_mean_reversion", "AAPL250117C00150000", T)
    assert len(cid) <= MAX_CLIENT_ORDER_ID
    # Long symbols that share their first 10 characters still get different ids.
    a = client_order_id("dev", "rsi_mean_reversion", "AAPL250117C00150000", T)
    b = client_order_id("dev", "rsi_mean_reversion", "AAPL250117C00155000", T)
    assert a != b
    assert set(client_order_id("dev", "sma_crossover", "^GSPC", T)) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"
    )


def order(status=OrderStatus.INTENT):
    return Order("cid", "sma_crossover", "AAPL", "2024-03-15T14:30:00Z", "buy", 10, status)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (OrderStatus.INTENT, OrderStatus.SUBMITTED),
        (OrderStatus.INTENT, OrderStatus.FILLED),  # found filled after a crash
        (OrderStatus.INTENT, OrderStatus.CANCELED),  # never sent; its bar passed
        (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.PARTIALLY_FILLED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED),
        (OrderStatus.SUBMITTED, OrderStatus.REJECTED),
        (OrderStatus.SUBMITTED, OrderStatus.EXPIRED),
    ],
)
def test_legal_transitions(start, end):
    assert order(start).moved(end).status is end


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (OrderStatus.FILLED, OrderStatus.SUBMITTED),
        (OrderStatus.FILLED, OrderStatus.CANCELED),
        (OrderStatus.CANCELED, OrderStatus.FILLED),
        (OrderStatus.REJECTED, OrderStatus.SUBMITTED),
        (OrderStatus.SUBMITTED, OrderStatus.INTENT),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED),
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.REJECTED),
    ],
)
def test_illegal_transitions_are_refused(start, end):
    with pytest.raises(IllegalTransition, match=f"{start.value} -> {end.value}"):
        order(start).moved(end)


def test_remaining_is_signed_and_zero_once_terminal():
    partial = order().moved(OrderStatus.PARTIALLY_FILLED, filled_qty=4)
    assert partial.remaining == 6
    sell = Order("c", "s", "X", "t", "sell", 10).moved(OrderStatus.SUBMITTED)
    assert sell.remaining == -10
    assert partial.moved(OrderStatus.CANCELED).remaining == 0
