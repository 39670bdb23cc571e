"""The ledger's conditional writes: the same semantics in memory and on DynamoDB."""

from dataclasses import replace

import pytest

from backend.trading.book import Holding
from backend.trading.ledger import (
    CashRecord,
    Cursor,
    Delete,
    EquityPoint,
    Ledger,
    LedgerConflict,
    MemoryStore,
    PositionRecord,
    Put,
    pack,
)
from backend.trading.orders import Fill, Order, OrderStatus


def new_order(cid="c1"):
    return Order(cid, "sma_crossover", "AAPL", "2024-01-02T14:30:00Z", "buy", 10)


def test_an_intent_is_recorded_once(ledger):
    stored, created = ledger.record_intent(new_order())
    assert created and stored.version == 1
    again, created = ledger.record_intent(new_order())
    assert not created and again == stored
    assert [o.client_order_id for o in ledger.open_orders()] == ["c1"]


def test_an_order_update_needs_the_version_it_read(ledger):
    stored, _ = ledger.record_intent(new_order())
    submitted = ledger.update_order(stored.moved(OrderStatus.SUBMITTED))
    assert ledger.order("c1").status is OrderStatus.SUBMITTED
    with pytest.raises(LedgerConflict):  # a second writer with the old read
        ledger.update_order(stored.moved(OrderStatus.CANCELED))
    ledger.update_order(submitted.moved(OrderStatus.CANCELED))
    assert ledger.open_orders() == []  # terminal: the open marker went in the same write


def test_a_fill_is_one_transaction_and_cannot_be_booked_twice(ledger, store):
    cash = ledger.open_account(1000.0)
    stored, _ = ledger.record_intent(new_order())
    fill = Fill("c1", 10, "AAPL", "buy", 10, 50.0, 0.5, "2024-01-03T14:30:00Z")
    position = PositionRecord("AAPL", Holding(10, 50.0))
    filled = stored.moved(OrderStatus.FILLED, filled_qty=10, filled_avg_price=50.0)
    after = CashRecord(cash=1000.0 - 500.0 - 0.5, fees=0.5, version=cash.version)
    ledger.record_fill(fill, filled, position, after)
    assert ledger.positions()["AAPL"].holding == Holding(10, 50.0)
    assert ledger.cash().cash == pytest.approx(499.5)
    assert ledger.open_orders() == []
    # The same fill again (a repeated step with the same reads): refused, nothing moves.
    with pytest.raises(LedgerConflict):
        ledger.record_fill(fill, filled, position, after)
    assert len(ledger.fills()) == 1
    assert ledger.cash().cash == pytest.approx(499.5)


def test_a_failed_transaction_writes_nothing(ledger):
    cash = ledger.open_account(1000.0)
    stored, _ = ledger.record_intent(new_order())
    fill = Fill("c1", 10, "AAPL", "buy", 10, 50.0, 0.0, "t")
    stale_cash = CashRecord(cash=500.0, version=cash.version + 7)  # a version nobody has
    with pytest.raises(LedgerConflict):
        ledger.record_fill(
            fill,
            stored.moved(OrderStatus.FILLED, filled_qty=10),
            PositionRecord("AAPL", Holding(10, 50.0)),
            stale_cash,
        )
    assert ledger.fills() == [] and ledger.positions() == {}
    assert ledger.order("c1").status is OrderStatus.INTENT


def test_cursor_kill_switch_and_equity_are_versioned(ledger):
    cursor = ledger.advance_cursor(Cursor(), {"AAPL": "2024-01-02T14:30:00Z"})
    with pytest.raises(LedgerConflict):
        ledger.advance_cursor(Cursor(), {"AAPL": "2024-01-03T14:30:00Z"})
    cursor = ledger.advance_cursor(cursor, {"MSFT": "2024-01-02T14:30:00Z"})
    assert ledger.cursor().bars == {
        "AAPL": "2024-01-02T14:30:00Z",
        "MSFT": "2024-01-02T14:30:00Z",
    }
    kill = ledger.set_kill_switch(ledger.kill_switch(), halted=True, reason="r", since="s")
    assert ledger.kill_switch().halted and kill.version == 1
    point = ledger.record_equity(EquityPoint("2024-01-02", 1.5, 1.0, 0.5, 1))
    ledger.record_equity(EquityPoint("2024-01-02", 2.5, 1.0, 1.5, 1, point.version))
    assert [p.equity for p in ledger.equity_curve()] == [2.5]


def test_open_account_never_resets_an_existing_account(ledger):
    ledger.open_account(1000.0)
    ledger.store.write(
        [Put({"pk": "ACCOUNT", "sk": "CASH", "cash": 5.0, "fees": 0.0, "dividends": 0.0}, expect=1)]
    )
    assert ledger.open_account(1000.0).cash == 5.0


def test_floats_and_ints_round_trip_exactly(ledger):
    ledger.open_account(0.1 + 0.2)
    assert ledger.cash().cash == 0.1 + 0.2


def test_equity_and_cursor_close_a_step_together_or_not_at_all(ledger):
    point, cursor = ledger.close_step(
        EquityPoint("2024-01-02", 100.0, 100.0, 0.0, 0), Cursor(), {"AAPL": "2024-01-02T00:00:00Z"}
    )
    assert (point.version, cursor.version) == (1, 1)
    assert ledger.cursor().bars == {"AAPL": "2024-01-02T00:00:00Z"}
    # A second writer whose cursor read is stale: its equity does not land either.
    with pytest.raises(LedgerConflict):
        ledger.close_step(
            EquityPoint("2024-01-03", 90.0, 90.0, 0.0, 0), Cursor(), {"AAPL": "2024-01-03"}
        )
    assert [p.day for p in ledger.equity_curve()] == ["2024-01-02"]
    assert ledger.cursor().bars == {"AAPL": "2024-01-02T00:00:00Z"}


def test_the_newest_equity_points_are_read_without_the_whole_curve(ledger, store):
    for day in range(1, 8):
        ledger.record_equity(EquityPoint(f"2024-01-0{day}", float(day), 0.0, 0.0, 0))
    assert [p.day for p in ledger.equity_curve(newest=2)] == ["2024-01-06", "2024-01-07"]
    assert len(ledger.equity_curve()) == 7
    assert ledger.equity_curve(newest=0) == []


def test_pack_merges_puts_of_one_item_and_splits_at_a_delete_or_the_limit():
    a0 = Put({"pk": "POS", "sk": "A", "qty": 1}, expect=3)
    a1 = Put({"pk": "POS", "sk": "A", "qty": 2}, expect=4)
    cash = Put({"pk": "ACCOUNT", "sk": "CASH", "cash": 1.0}, expect=7)
    ((ops, groups),) = pack([[a0, cash], [a1]])
    # One write of A: conditioned on the version first read, storing the last one's.
    assert groups == 2
    assert ops == [Put({"pk": "POS", "sk": "A", "qty": 2}, expect=3, writes=5), cash]
    marker = Put({"pk": "OPEN", "sk": "c1", "symbol": "A"}, expect=0)
    gone = Delete("OPEN", "c1")
    assert [count for _, count in pack([[marker], [gone]])] == [1, 1]
    many = [[Put({"pk": "FILL", "sk": str(i)}, expect=0)] for i in range(250)]
    assert [len(ops) for ops, _ in pack(many)] == [100, 100, 50]


def test_a_batched_step_stores_what_unbatched_writes_would(store):
    def book(ledger):
        cash = ledger.open_account(1000.0)
        stored, _ = ledger.record_intent(new_order())
        submitted = ledger.update_order(stored.moved(OrderStatus.SUBMITTED))
        fill = Fill("c1", 10, "AAPL", "buy", 10, 50.0, 0.5, "t")
        filled = submitted.moved(OrderStatus.FILLED, filled_qty=10, filled_avg_price=50.0)
        after = CashRecord(cash=499.5, fees=0.5, version=cash.version)
        _, position, cash = ledger.record_fill(
            fill, filled, PositionRecord("AAPL", Holding(10, 50.0)), after
        )
        ledger.record_action(
            symbol="AAPL",
            bar_time="t2",
            split=2.0,
            dividend=0.0,
            position=replace(position, holding=Holding(20, 25.0)),
            cash=cash,
        )
        ledger.close_step(
            EquityPoint("2024-01-02", 999.5, 499.5, 500.0, 1), Cursor(), {"AAPL": "t2"}
        )

    plain = Ledger(MemoryStore())
    book(plain)
    batched = Ledger(store)
    batched.begin()
    book(batched)
    assert store.get("POS", "AAPL") is None  # kept, not written yet
    batched.flush()
    batched.end()
    for pk in ("ACCOUNT", "ORDER", "OPEN", "FILL", "POS", "ACTION", "EQUITY"):
        assert store.query(pk) == plain.store.query(pk), pk
    # The stored versions are the ones the engine's mirror holds.
    assert batched.cash().version == plain.cash().version == 3


def test_new_orders_are_written_at_once_and_one_that_exists_is_not_written_again(ledger):
    # GIVEN an order decided by an earlier attempt that is already done
    first, _ = ledger.record_intent(new_order("c1"))
    ledger.update_order(first.moved(OrderStatus.CANCELED))
    ledger.begin()
    cash = ledger.open_account(10.0)  # kept, written with the intents
    # WHEN the step records it again with a new one
    got = ledger.record_intents([new_order("c1"), new_order("c2")])
    # THEN the existing one stands, the new one and what was kept are written
    assert [(o.client_order_id, o.status, created) for o, created in got] == [
        ("c1", OrderStatus.CANCELED, False),
        ("c2", OrderStatus.INTENT, True),
    ]
    assert ledger.kept == 0
    ledger.end()
    assert ledger.cash() == cash
    assert [o.client_order_id for o in ledger.open_orders()] == ["c2"]
