"""The two halves as one product, in moto: the real fetcher (its handler, the fixture's
market with splits, dividends and bad rows) writes, and the service and the backtester
read and trade on what it wrote: adjusted, final bars only, and a split is no trade.

The service is run two ways: a step every evening after the scheduled fetch (the steady
state: one BatchGetItem per step, no Query), and `--replay 30` once at the end. Both, and
the backtester over the same sessions, must book the same fills and end at the same
equity (tests/trading_support.py has the timeline)."""

import json
from datetime import timedelta

import pytest
from moto import mock_aws

from backend.adjust import back_adjust
from backend.layout import index_key
from backend.service.__main__ import main, make_runner
from backend.service.settings import ServiceSettings
from backend.trading.backtest import backtest_stored
from backend.trading.dynamo import DynamoStore
from backend.trading.history import S3Source, load_history
from backend.trading.ledger import Ledger
from backend.trading.strategies import SmaCrossover
from tests.runtime_support import deploy
from tests.trading_support import (
    FIRST_REPLAYED,
    LEDGER,
    REPLAY,
    SPLIT_DAY,
    SYMBOLS,
    fetch_all,
    service_env,
    trading_config,
)

BUCKET = "ctb-trading-on-fetched-data"
SPLIT_BAR = f"{SPLIT_DAY.isoformat()}T00:00:00Z"


@pytest.fixture
def deployment():
    with mock_aws():
        yield deploy(bucket=BUCKET, symbols=SYMBOLS)


def fills_of(fills):
    return [(f.symbol, f.side, f.qty, round(f.price, 6), f.time) for f in fills]


def backtest(deployment):
    source = S3Source(client=deployment.s3, bucket=BUCKET)
    key = index_key(deployment.env["DATA_PREFIX"])
    return backtest_stored(source, key, trading_config(), start=FIRST_REPLAYED)


def test_each_evening_the_service_trades_the_bar_the_fetcher_just_stored(deployment, tmp_path):
    settings = ServiceSettings.from_env(service_env(deployment, str(tmp_path / "hb.json")))
    runner = make_runner(settings)  # the real exchange calendar: holidays, DST
    steps = []

    def step(when, response):
        if response["status"] == "market_closed":
            return
        runner.clock = lambda: when + timedelta(minutes=30)
        steps.append(runner.step())

    responses = fetch_all(deployment, after_each=step)
    # The fetcher dropped the bad rows and stored every session of the window once.
    assert responses[0]["dropped_rows"] >= 2
    assert [r["status"] for r in responses].count("market_closed") == 2  # two holidays
    assert len(steps) == REPLAY
    assert [(s.dates, s.bars) for s in steps] == [(1, 3)] * REPLAY
    # The steady state: each new bar came from the LATEST items alone.
    assert runner.market.queries == 0
    ledger = Ledger(DynamoStore(client=deployment.dynamodb, table_name=LEDGER))
    orders = ledger.orders()
    assert len(orders) >= 4

    # A split is no trade: AAPL was held through its 4:1 split, the ledger multiplied the
    # shares (the ACTION item), and no order was decided on that bar ...
    assert ledger.action_applied("AAPL", SPLIT_BAR)
    assert not [o for o in orders if o.symbol == "AAPL" and o.bar_time == SPLIT_BAR]
    # ... where the raw prices would have turned the crossover short.
    history = load_history(
        S3Source(client=deployment.s3, bucket=BUCKET),
        index_key(deployment.env["DATA_PREFIX"]),
        symbols=["AAPL"],
    )["AAPL"]
    upto = [b for b in history if b.timestamp.date() <= SPLIT_DAY]
    strategy = SmaCrossover({"fast": 5, "slow": 20})
    raw, adjusted = strategy.signal(), strategy.signal()
    for bar, adj in zip(upto, back_adjust(upto), strict=True):
        raw_view, adjusted_view = raw.update(bar.close), adjusted.update(adj.close)
    assert (raw_view, adjusted_view) == (-1, 1)
    # Only final bars are stored in S3; the table's unfinished bar (none here: every
    # fetch ran after the close) would never have reached the history.
    assert all(b.final for b in history)

    # The backtester over the same sessions books the same fills and ends at the same
    # equity as the service's thirty evening steps.
    result = backtest(deployment)
    assert result.start == FIRST_REPLAYED.isoformat() and result.bars == 3 * REPLAY
    assert fills_of(result.executions) == fills_of(ledger.fills())
    assert ledger.equity_curve(newest=1)[0].equity == pytest.approx(result.final_equity)


def test_replay_trades_the_same_as_the_evening_steps_and_prints_the_summary(
    deployment, tmp_path, capsys
):
    fetch_all(deployment)
    env = service_env(deployment, str(tmp_path / "hb.json"))
    assert main(["--replay", str(REPLAY)], env=env) == 0
    capsys.readouterr()
    assert main(["summary"], env=env) == 0
    summary = json.loads(capsys.readouterr().out)
    result = backtest(deployment)
    ledger = Ledger(DynamoStore(client=deployment.dynamodb, table_name=LEDGER))
    assert fills_of(ledger.fills()) == fills_of(result.executions)
    assert summary["orders"] == result.orders
    assert summary["equity"] == pytest.approx(result.final_equity)
    assert summary["equity_day"] == result.end
    held = {p["symbol"]: p["qty"] for p in summary["positions"]}
    assert held and set(held) <= set(SYMBOLS)
    # Again: nothing new (the cursor), the same summary.
    assert main(["--replay", str(REPLAY)], env=env) == 0
    capsys.readouterr()
    assert main(["summary"], env=env) == 0
    assert json.loads(capsys.readouterr().out) == summary
