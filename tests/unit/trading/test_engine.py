"""The engine: idempotent steps, crash recovery at every write, kill switch, staleness.

Crash tests raise at one point of a step, then "restart" (a new Engine over the same
ledger store and, for the exchange, the same broker), re-run the step and go on. The
ledger and the broker must end exactly as in a run without the crash: no order twice,
no fill lost or doubled.
"""

from dataclasses import replace

import pytest

from backend.trading.broker import BrokerError
from backend.trading.engine import BarEvent, Engine
from backend.trading.ledger import Ledger, MemoryStore
from backend.trading.orders import OrderStatus
from backend.trading.paper import PaperBroker
from backend.trading.settings import parse_trading_config
from tests.unit.trading.helpers import Exchange, after_close, bars

CONFIG = parse_trading_config(
    {
        "environment": "test",
        "paperCash": 10_000,
        "paperSlippageBps": 0,
        "riskLimits": {"maxPositionNotional": 1e9, "maxDailyLossPct": 0},
    }
)
# Day 0 says long, day 1 fills it at its open (and says long again: hold), day 2 flat.
DAYS = list(zip(bars("X", [100.0, 110.0, 120.0, 130.0]), [1, 1, -1, -1], strict=True))


class Crash(Exception):
    pass


class CrashingStore:
    """Raises Crash once, before (or after) the first write matching `what`."""

    def __init__(self, inner, what, *, after=False):
        self.inner, self.what, self.after, self.armed = inner, what, after, False

    def get(self, pk, sk):
        return self.inner.get(pk, sk)

    def query(self, pk, **kwargs):
        return self.inner.query(pk, **kwargs)

    def write(self, ops):
        hit = self.armed and any(
            getattr(op, "item", {}).get("pk") == self.what[0]
            and (self.what[1] is None or getattr(op, "item", {}).get("sk") == self.what[1])
            for op in ops
        )
        if hit and not self.after:
            self.armed = False
            raise Crash(f"before writing {self.what}")
        self.inner.write(ops)
        if hit:
            self.armed = False
            raise Crash(f"after writing {self.what}")


class CrashingBroker:
    def __init__(self, inner, *, after_send):
        self.inner, self.after_send, self.armed = inner, after_send, False
        self.name = inner.name

    def submit(self, order):
        if self.armed and not self.after_send:
            self.armed = False
            raise Crash("before sending")
        placed = self.inner.submit(order)
        if self.armed:
            self.armed = False
            raise Crash("after sending, before recording")
        return placed

    def __getattr__(self, name):
        return getattr(self.inner, name)


def engine_for(store, broker):
    return Engine(config=CONFIG, universe=1, ledger=Ledger(store), broker=broker, namespace="t")


def run(store_factory, broker_kind, crash=None, crash_day=0):
    """Run DAYS; `crash` arms a fault on `crash_day`; then restart and carry on."""
    base = store_factory()
    exchange = Exchange(cash=10_000.0)

    def new_broker():
        if broker_kind == "exchange":
            return exchange  # the broker outlives our process
        return PaperBroker(cash=CONFIG.paper_cash)  # the paper book dies with it

    store, broker = base, new_broker()
    kind, point = crash if crash else (None, None)
    if kind == "store":
        store = CrashingStore(base, point[0:2], after=point[2])
    elif kind == "broker":
        broker = CrashingBroker(broker, after_send=point)
    engine = engine_for(store, broker)
    crashed = False
    for day, (bar, direction) in enumerate(DAYS):
        if day == crash_day and crash:
            (store if kind == "store" else broker).armed = True
        try:
            engine.step([BarEvent(bar, direction)], now=after_close(bar))
        except Crash:
            crashed = True
            engine = engine_for(base, new_broker())  # the restart
            engine.step([BarEvent(bar, direction)], now=after_close(bar))
    ledger = Ledger(base)
    return ledger, exchange, crashed


def state(ledger):
    return {
        "orders": [replace(o, version=0) for o in ledger.orders()],
        "fills": ledger.fills(),
        "positions": {s: p.holding for s, p in ledger.positions().items()},
        "cash": ledger.cash().cash,
        "equity": [(p.day, p.equity) for p in ledger.equity_curve()],
        "cursor": ledger.cursor().bars,
    }


CRASHES = [
    ("store", ("ORDER", None, False), 0),  # before the intent is recorded
    ("broker", False, 0),  # intent recorded, not sent
    ("broker", True, 0),  # sent, not recorded
    ("store", ("ORDER", None, True), 0),  # intent written, then the process dies
    ("store", ("FILL", None, False), 1),  # mid-fill: before the fill transaction
    ("store", ("FILL", None, True), 1),  # mid-fill: after it, before anything else
    ("store", ("EQUITY", None, False), 0),  # decided and sent; equity not recorded
    # Equity and cursor are one transaction: before it, everything but the two; after
    # it, the whole step (the restart has nothing left to do for that day).
    ("store", ("ACCOUNT", "CURSOR", False), 1),
    ("store", ("ACCOUNT", "CURSOR", True), 1),
]


@pytest.mark.parametrize("broker_kind", ["exchange", "paper"])
@pytest.mark.parametrize(("kind", "point", "day"), CRASHES)
def test_a_crash_at_any_point_recovers_without_duplicate_or_gap(
    request, broker_kind, kind, point, day
):
    factory = lambda: request.getfixturevalue("dynamo_store")  # noqa: E731 - one table per test
    baseline, baseline_exchange, _ = run(MemoryStore, broker_kind)
    ledger, exchange, crashed = run(factory, broker_kind, (kind, point), day)
    assert crashed
    assert state(ledger) == state(baseline)
    orders = ledger.orders()
    assert len(orders) == 2  # one buy, one sell
    assert len({o.client_order_id for o in orders}) == 2
    assert all(o.status is OrderStatus.FILLED for o in orders[:1])
    if broker_kind == "exchange":
        assert len(exchange.orders) == len(baseline_exchange.orders) == 2


def test_the_same_step_twice_places_one_order():
    exchange = Exchange()
    store = MemoryStore()
    bar = DAYS[0][0]
    for _ in range(2):
        engine_for(store, exchange).step([BarEvent(bar, 1)], now=after_close(bar))
    engine = engine_for(store, exchange)
    result = engine.step([BarEvent(bar, 1)], now=after_close(bar))
    assert len(exchange.orders) == 1
    assert len(Ledger(store).orders()) == 1
    assert result.decisions[0].action == "already_placed"


def test_fill_pnl_and_equity_match_hand_computed_values():
    config = replace(CONFIG, paper_slippage_bps=10.0, paper_fee_rate=0.001)
    store = MemoryStore()
    broker = PaperBroker(cash=10_000.0, slippage_bps=10.0, fee_rate=0.001)
    engine = Engine(config=config, universe=1, ledger=Ledger(store), broker=broker, namespace="t")
    for bar, direction in DAYS[:2]:
        engine.step([BarEvent(bar, direction)], now=after_close(bar))
    # Day 0: size = floor(10000 / 1 / 100) = 100 shares; fills at day 1's open 100 x 1.001
    ledger = Ledger(store)
    (fill,) = ledger.fills()
    assert (fill.qty, fill.price) == (100, pytest.approx(100.1))
    assert fill.fee == pytest.approx(10.01)
    assert ledger.cash().cash == pytest.approx(10_000 - 10_010 - 10.01)
    # Equity at day 1's close: cash + 100 x 110
    assert ledger.equity_curve()[-1].equity == pytest.approx(10_000 - 10_010 - 10.01 + 11_000)


def test_daily_loss_halts_new_entries_and_flattens_when_configured():
    config = parse_trading_config(
        {
            "environment": "test",
            "paperCash": 10_000,
            "paperSlippageBps": 0,
            "riskLimits": {"maxDailyLossPct": 5, "flattenOnHalt": True, "maxOpenPositions": 5},
        }
    )
    x = bars("X", [100.0, 100.0, 80.0, 80.0])
    y = bars("Y", [50.0, 50.0, 50.0, 50.0])
    store = MemoryStore()
    engine = Engine(
        config=config,
        universe=2,
        ledger=Ledger(store),
        broker=PaperBroker(cash=10_000.0),
        namespace="t",
    )
    engine.step([BarEvent(x[0], 1), BarEvent(y[0], None)], now=after_close(x[0]))
    engine.step([BarEvent(x[1], 1), BarEvent(y[1], None)], now=after_close(x[1]))
    # Day 2: X falls 20% on 5000 of 10000: equity -10% -> halted; Y wants in: refused;
    # X is flattened although the strategy still says long.
    result = engine.step([BarEvent(x[2], 1), BarEvent(y[2], 1)], now=after_close(x[2]))
    assert result.halted and "maxDailyLossPct" in engine.kill.reason
    by_symbol = {d.symbol: d for d in result.decisions}
    assert by_symbol["Y"].refused_by == "kill_switch"
    assert by_symbol["X"].action == "order" and by_symbol["X"].side == "sell"
    assert by_symbol["X"].reason == "kill switch halted: flatten"
    engine.step([BarEvent(x[3], 1), BarEvent(y[3], 1)], now=after_close(x[3]))
    assert Ledger(store).positions()["X"].holding.qty == 0
    # The halt is in the ledger: a restart does not clear it.
    assert Ledger(store).kill_switch().halted


def test_without_flatten_a_halt_only_stops_entries():
    config = replace(CONFIG, risk=replace(CONFIG.risk, max_daily_loss_pct=5.0))
    x = bars("X", [100.0, 100.0, 80.0])
    engine = Engine(
        config=config,
        universe=1,
        ledger=Ledger(MemoryStore()),
        broker=PaperBroker(cash=10_000.0),
        namespace="t",
    )
    for bar in x:
        result = engine.step([BarEvent(bar, 1)], now=after_close(bar))
    assert result.halted
    assert engine.positions["X"].holding.qty == 100  # kept
    assert result.decisions[0].action == "hold"


def test_stale_bar_is_not_traded():
    bar = DAYS[0][0]
    engine = engine_for(MemoryStore(), Exchange())
    result = engine.step([BarEvent(bar, 1, bars_behind=2)], now=after_close(bar))
    assert result.decisions[0].refused_by == "stale_data"
    assert result.orders == 0


def test_max_open_positions_through_the_engine():
    config = replace(CONFIG, risk=replace(CONFIG.risk, max_open_positions=1))
    a, b = bars("A", [10.0, 10.0]), bars("B", [10.0, 10.0])
    engine = Engine(
        config=config, universe=2, ledger=Ledger(MemoryStore()), broker=Exchange(), namespace="t"
    )
    result = engine.step([BarEvent(a[0], 1), BarEvent(b[0], 1)], now=after_close(a[0]))
    assert [d.action for d in result.decisions] == ["order", "refused"]
    assert result.decisions[1].refused_by == "max_open_positions"


def test_a_strategy_short_is_flat_unless_shorting_is_allowed():
    bar = DAYS[0][0]
    engine = engine_for(MemoryStore(), Exchange())
    assert engine.step([BarEvent(bar, -1)], now=after_close(bar)).orders == 0
    short = replace(CONFIG, risk=replace(CONFIG.risk, allow_short=True))
    engine = Engine(
        config=short, universe=1, ledger=Ledger(MemoryStore()), broker=Exchange(), namespace="t"
    )
    result = engine.step([BarEvent(bar, -1)], now=after_close(bar))
    assert result.decisions[0].side == "sell" and result.decisions[0].qty == 100


def test_a_split_moves_the_ledger_position_once():
    x = bars("X", [400.0, 400.0, 100.0], splits={2: 4.0})
    store = MemoryStore()
    engine = engine_for(store, PaperBroker(cash=10_000.0))
    for bar in x[:2]:
        engine.step([BarEvent(bar, 1)], now=after_close(bar))
    assert Ledger(store).positions()["X"].holding.qty == 25
    for _ in range(2):  # the split's step, run twice (a re-run after a crash)
        engine_for(store, PaperBroker(cash=10_000.0)).step(
            [BarEvent(x[2], 1)], now=after_close(x[2])
        )
    holding = Ledger(store).positions()["X"].holding
    assert (holding.qty, holding.avg_price) == (100, pytest.approx(100.0))


class FlakyStore:
    """A store whose next write fails once (a network error after botocore's retries)."""

    def __init__(self, inner):
        self.inner, self.fail = inner, False

    def get(self, pk, sk):
        return self.inner.get(pk, sk)

    def query(self, pk, **kwargs):
        return self.inner.query(pk, **kwargs)

    def write(self, ops):
        if self.fail:
            self.fail = False
            raise OSError("connection reset")
        self.inner.write(ops)


def test_a_failed_write_makes_the_next_step_read_the_ledger_again():
    # GIVEN a step whose batched writes cannot be stored (the mirror ran ahead)
    base = MemoryStore()
    flaky = FlakyStore(base)
    exchange = Exchange(cash=10_000.0)
    engine = engine_for(flaky, exchange)
    (bar0, d0), (bar1, d1) = DAYS[:2]
    engine.step([BarEvent(bar0, d0)], now=after_close(bar0))
    flaky.fail = True
    with pytest.raises(OSError, match="connection reset"):
        engine.step([BarEvent(bar1, d1)], now=after_close(bar1))
    # WHEN the same engine goes on (the service's loop keeps it after a failed step)
    for bar, direction in DAYS[1:]:
        engine.step([BarEvent(bar, direction)], now=after_close(bar))
    # THEN the ledger is the one a run without the failure leaves
    baseline, _, _ = run(MemoryStore, "exchange")
    assert state(Ledger(base)) == state(baseline)


class HalfDownExchange(Exchange):
    """A broker that stops answering about Y's orders while X's still come in."""

    down = False

    def get_order(self, client_order_id):
        if self.down and "-Y-" in client_order_id:
            raise BrokerError("alpaca: 503")
        return super().get_order(client_order_id)


def test_a_broker_error_mid_step_keeps_what_the_step_had_booked():
    # GIVEN a buy of X and of Y placed on day 0
    store = MemoryStore()
    exchange = HalfDownExchange(cash=10_000.0)
    engine = Engine(config=CONFIG, universe=2, ledger=Ledger(store), broker=exchange, namespace="t")
    x, y = bars("X", [100.0, 110.0]), bars("Y", [50.0, 55.0])
    engine.step([BarEvent(x[0], 1), BarEvent(y[0], 1)], now=after_close(x[0]))
    # WHEN both fill at day 1's open, X's fill is booked, then asking about Y fails
    exchange.down = True
    with pytest.raises(BrokerError):
        engine.step([BarEvent(x[1], 1), BarEvent(y[1], 1)], now=after_close(x[1]))
    # THEN X's fill is stored (as an unbatched write would have been), Y's is not yet,
    # and the day is not done: the next step does it again
    ledger = Ledger(store)
    assert [(f.symbol, f.qty) for f in ledger.fills()] == [("X", 50)]
    assert ledger.positions()["X"].holding.qty == 50
    assert ledger.cursor().bars == {"X": x[0].iso_time, "Y": y[0].iso_time}
    exchange.down = False
    engine.step([BarEvent(x[1], 1), BarEvent(y[1], 1)], now=after_close(x[1]))
    assert sorted((f.symbol, f.qty) for f in Ledger(store).fills()) == [("X", 50), ("Y", 100)]
