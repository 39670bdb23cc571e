"""The service's market-data reader against the layout the fetcher writes (moto): the
warm-up from S3, one BatchGetItem per step in the steady state, a Query only for a gap,
unfinished bars never in the history, and the incremental strategy view equal to the
strategy's own answer on the adjusted history, across a split and a dividend."""

from collections import Counter
from dataclasses import replace

import pytest

from backend.adjust import back_adjust
from backend.layout import index_key
from backend.service.market import MarketData
from backend.service.runner import Records, Runner
from backend.storage import DynamoTable, bar_items
from backend.trading.dynamo import DynamoStore
from backend.trading.history import S3Source
from backend.trading.ledger import Ledger, memory_ledger
from backend.trading.paper import PaperBroker
from backend.trading.settings import parse_trading_config
from backend.trading.strategies import Position
from tests.unit.service.helpers import (
    BUCKET,
    DATA_PREFIX,
    LEDGER,
    MARKET,
    put_bars,
    wave_closes,
)
from tests.unit.trading.helpers import WeekdayCalendar, after_close, bars

CAL = WeekdayCalendar()


def count_requests(client):
    sent = []
    client.meta.events.register(
        "before-send.dynamodb", lambda request, **_: sent.append(request.headers["X-Amz-Target"])
    )
    return sent


def market(ddb, s3, *, calendar=CAL):
    return MarketData(
        client=ddb,
        table=MARKET,
        history=S3Source(client=s3, bucket=BUCKET),
        index_key=index_key(DATA_PREFIX),
        calendar=calendar,
    )


def operations(sent):
    return [bytes(target).decode().split(".")[-1] for target in sent]


def test_the_warm_up_comes_from_s3_when_the_table_holds_only_recent_bars(world):
    ddb, s3 = world
    history = bars("AAA", wave_closes(80))
    put_bars(ddb, s3, history)
    # A scheduled run's table: its period's bars only (the rest expired or never written).
    for item in bar_items(history[:-5]):
        ddb.delete_item(TableName=MARKET, Key={"pk": item["pk"], "sk": item["sk"]})
    data = market(ddb, s3)
    data.refresh(["AAA"], warmup=60)
    assert [b.iso_time for b in data.history("AAA")] == [b.iso_time for b in history[-60:]]
    assert data.queries == 0  # LATEST is the newest bar S3 holds: nothing else to ask


def test_a_steady_step_is_one_batch_get_and_the_latest_item_is_the_new_bar(world):
    ddb, s3 = world
    symbols = ["AAA", "BBB", "CCC"]
    history = {s: bars(s, wave_closes(41)) for s in symbols}
    put_bars(ddb, s3, [b for s in symbols for b in history[s][:40]])
    data = market(ddb, s3)
    data.refresh(symbols, warmup=100)
    sent = count_requests(ddb)
    # GIVEN the fetcher stored the next session's bar of every symbol
    put_bars(ddb, s3, [history[s][40] for s in symbols])
    sent.clear()
    # WHEN the service steps
    data.refresh(symbols, warmup=100)
    # THEN one request found all three new bars, and a step with nothing new costs the same
    assert operations(sent) == ["BatchGetItem"]
    assert {s: data.history(s)[-1] for s in symbols} == {s: history[s][40] for s in symbols}
    sent.clear()
    data.refresh(symbols, warmup=100)
    assert operations(sent) == ["BatchGetItem"]
    assert all(len(data.history(s)) == 41 for s in symbols)


def test_a_gap_costs_one_query_for_that_symbol_only(world):
    ddb, s3 = world
    history = {s: bars(s, wave_closes(44)) for s in ("AAA", "BBB")}
    put_bars(ddb, s3, history["AAA"][:40] + history["BBB"][:40])
    data = market(ddb, s3)
    data.refresh(["AAA", "BBB"], warmup=100)
    # AAA: three sessions while the service was away; BBB: the next one only.
    put_bars(ddb, s3, history["AAA"][40:43] + history["BBB"][40:41])
    sent = count_requests(ddb)
    data.refresh(["AAA", "BBB"], warmup=100)
    assert sorted(operations(sent)) == ["BatchGetItem", "Query"]
    assert data.history("AAA")[-3:] == history["AAA"][40:43]
    assert data.history("BBB")[-1] == history["BBB"][40]


def test_unfinished_bars_never_enter_the_history_nor_block_later_ones(world):
    ddb, s3 = world
    history = bars("AAA", wave_closes(45))
    put_bars(ddb, s3, history[:40])
    data = market(ddb, s3)
    data.refresh(["AAA"], warmup=100)
    # The session in progress: in the table with final=false, LATEST unchanged.
    put_bars(ddb, s3, [replace(history[40], final=False)])
    data.refresh(["AAA"], warmup=100)
    assert data.history("AAA")[-1] == history[39]
    # Its final version was dropped as a bad row; the fetcher stored the next sessions.
    put_bars(ddb, s3, history[41:43])
    data.refresh(["AAA"], warmup=100)
    assert [b.iso_time for b in data.history("AAA")[-3:]] == [
        history[39].iso_time,
        history[41].iso_time,
        history[42].iso_time,
    ]
    assert all(b.final for b in data.history("AAA"))


def test_an_unreadable_history_object_is_named_and_the_others_go_on(world, capsys):
    ddb, s3 = world
    put_bars(ddb, s3, bars("AAA", wave_closes(30)) + bars("BBB", wave_closes(30)))
    key = f"{DATA_PREFIX}market/symbol=AAA/interval=1d/year=2024.jsonl"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body + b'{"symbol": "AAA", "open": 0}\n')
    data = market(ddb, s3)
    data.refresh(["AAA", "BBB"], warmup=100)
    line = next(x for x in capsys.readouterr().out.splitlines() if "history unreadable" in x)
    assert f"s3://{BUCKET}/{key} line 31 is not a stored bar" in line
    assert len(data.history("BBB")) == 30
    assert len(data.history("AAA")) == 30  # from the table instead


class Watched(Runner):
    """The service's runner, recording every target it computes in its steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def target(self, bar, position):
        got = super().target(bar, position)
        self.seen.append((bar, position, got))
        return got


@pytest.mark.parametrize("strategy", ["sma_crossover", "rsi_mean_reversion"])
def test_the_kept_view_equals_the_strategys_answer_on_the_adjusted_history(world, strategy):
    ddb, s3 = world
    closes = wave_closes(90)
    # A 4:1 split at bar 60 (raw prices quarter) and a dividend at bar 70.
    raw = [c if i < 60 else c / 4 for i, c in enumerate(closes)]
    history = bars("AAA", raw, splits={60: 4.0}, dividends={70: 0.05})
    put_bars(ddb, s3, history[:30])
    params = {"fast": 3, "slow": 10} if strategy == "sma_crossover" else {"period": 5}
    config = parse_trading_config(
        {"environment": "test", "strategy": strategy, "strategyParams": params}
    )
    clock = [after_close(history[29])]
    runner = Watched(
        config=config,
        environment="test",
        symbols=["AAA"],
        market=market(ddb, s3),
        ledger=memory_ledger(),
        broker=PaperBroker(cash=config.paper_cash),
        calendar=CAL,
        clock=lambda: clock[0],
    )
    runner.step()
    for i in range(30, 90):
        put_bars(ddb, s3, [history[i]])
        clock[0] = after_close(history[i])
        runner.step()
    # Every step's target (kept between steps, rebuilt on the split and the dividend)
    # is what the strategy answers on the whole adjusted history up to that bar.
    fresh = config.make_strategy()
    assert [bar.iso_time for bar, _, _ in runner.seen] == [b.iso_time for b in history[29:]]
    for bar, position, got in runner.seen:
        upto = [b for b in history if b.timestamp <= bar.timestamp]
        expected = fresh.target(back_adjust(upto), position)
        assert (got.direction, got.reason) == (expected.direction, expected.reason), bar
        assert got.values == pytest.approx(expected.values), bar
    # Without the rebuild (the raw closes fed as they come) the split reads as a crash,
    # and some view would differ: the comparison above would catch it.
    naive, differs = fresh.signal(), []
    for i, bar in enumerate(history):
        view = naive.update(bar.close)
        if i >= 60:
            expected = fresh.target(back_adjust(history[: i + 1]), Position("AAA"))
            differs.append(view is not None and view != expected.direction)
    assert any(differs)


def test_a_scheduled_table_alone_still_serves_a_new_symbol(world):
    ddb, s3 = world
    history = bars("NEW", wave_closes(5))
    DynamoTable(client=ddb, table_name=MARKET).put_items(bar_items(history))
    put_bars(ddb, s3, history[-1:])  # LATEST, and S3 holds only that bar
    data = market(ddb, s3)
    data.refresh(["NEW"], warmup=100)
    assert data.history("NEW")[-1] == history[-1]


def test_a_step_is_a_handful_of_requests_however_many_orders_it_places(world):
    ddb, s3 = world
    symbols = [f"S{i}" for i in range(12)]
    # The same wave for all: every symbol crosses on the same bar.
    history = {s: bars(s, wave_closes(40)) for s in symbols}
    put_bars(ddb, s3, [b for s in symbols for b in history[s][:20]])
    config = parse_trading_config(
        {
            "environment": "test",
            "strategyParams": {"fast": 2, "slow": 5},
            "riskLimits": {"maxOpenPositions": 20, "maxStaleBars": 1000},
        }
    )
    clock = [after_close(history["S0"][19])]
    runner = Runner(
        config=config,
        environment="test",
        symbols=symbols,
        market=market(ddb, s3),
        ledger=Ledger(DynamoStore(client=ddb, table_name=LEDGER)),
        broker=PaperBroker(cash=config.paper_cash),
        calendar=CAL,
        records=Records(client=s3, bucket=BUCKET, logs_prefix="logs/test/"),
        clock=lambda: clock[0],
    )
    runner.step()
    sent = count_requests(ddb)
    puts = []
    s3.meta.events.register("before-send.s3", lambda **_: puts.append(1))
    busiest = (0, 0)
    for i in range(20, 40):
        put_bars(ddb, s3, [history[s][i] for s in symbols])
        clock[0] = after_close(history["S0"][i])
        sent.clear()
        puts.clear()
        report = runner.step()
        ops = Counter(operations(sent))
        # One read, at most two ledger transactions (new orders with what came before
        # them; the rest with equity and cursor), one decision record.
        assert ops["BatchGetItem"] == 1 and ops["TransactWriteItems"] <= 2, (i, ops)
        assert set(ops) <= {"BatchGetItem", "TransactWriteItems"}, (i, ops)
        assert len(puts) == 1
        busiest = max(busiest, (report.orders, report.fills))
    assert busiest[0] == len(symbols)  # a step placed an order for every symbol
