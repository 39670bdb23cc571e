"""Data a strategy can use (issue 12), through the handler in moto over many scheduled
runs: indicators agree with their full-history values on every run, LATEST never loses
a field, a split never reads as a price move, and stored history never changes."""

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from aws.market_data_fetcher import handle
from backend.adjust import back_adjust
from backend.analytics import simple_returns, summarise
from backend.index import Index
from backend.market_calendar import get_calendar
from backend.providers.fixture import FixtureProvider, Scenario
from backend.storage import decode_bars

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
INDICATORS = ("return_1", "sma_20", "ema_20", "rsi_14")
SPLIT_DAY = date(2024, 3, 4)
# The regular scenario (dividends every quarter, the hashed splits and bad rows) plus a
# 4:1 split of AAPL in the middle of the runs and a broken QQQ session.
SCENARIO = Scenario(splits={"AAPL": {SPLIT_DAY: 4.0}}, bad_rows={"QQQ": [date(2024, 2, 27)]})
SYMBOLS = ("SPY", "QQQ", "AAPL")


def _weekday_evenings(first: date, count: int) -> list[datetime]:
    """The recommended schedule, cron(0 22 ? * MON-FRI *): 22:00 UTC every weekday."""
    runs, day = [], first
    while len(runs) < count:
        if day.weekday() < 5:
            runs.append(datetime(day.year, day.month, day.day, 22, 0, tzinfo=UTC))
        day += timedelta(days=1)
    return runs


RUNS = _weekday_evenings(date(2024, 2, 12), 30)  # through Presidents' Day and Good Friday


def _invoke(world, context, when, event=SCHEDULED):
    return handle(
        event,
        dataclasses.replace(context, aws_request_id=f"run-{when:%Y%m%d%H%M}"),
        env=world.env,
        clients=world.clients,
        provider=FixtureProvider(clock=lambda: when, scenario=SCENARIO),
        now=lambda: when,
    )


def _latest(world, symbol):
    got = world.dynamodb.get_item(
        TableName=world.table, Key={"pk": {"S": f"BAR#{symbol}#1d"}, "sk": {"S": "LATEST"}}
    )
    return got.get("Item")


def _stored(world, symbol):
    """The series as a reader finds it: through the index, never listing the bucket."""
    index_body = world.s3.get_object(Bucket=world.bucket, Key="data/dev/index.json")["Body"]
    series = Index.from_bytes(index_body.read()).get(symbol, "1d")
    bars = []
    for key in series.object_bars:
        body = world.s3.get_object(Bucket=world.bucket, Key=key)["Body"].read()
        bars += decode_bars(body, key=key)
    return sorted(bars, key=lambda b: b.timestamp), series


@pytest.fixture(scope="module")
def history():
    """Every final bar of each symbol's whole history (20 years), as of the last run."""
    last = RUNS[-1]
    provider = FixtureProvider(clock=lambda: last, scenario=SCENARIO)
    return {s: provider.fetch(s, "1d", "max").bars for s in SYMBOLS}


def test_thirty_scheduled_runs_keep_every_indicator_on_its_full_history_value(
    world, context, history
):
    calendar = get_calendar()
    worst = 0.0
    for when in RUNS:
        response = _invoke(world, context, when)
        if not calendar.is_session(when.date()):
            # Presidents' Day and Good Friday: nothing fetched, nothing lost.
            assert response["status"] == "market_closed", when
            assert all(set(INDICATORS) <= set(_latest(world, s)) for s in SYMBOLS)
            continue
        assert response["status"] == "ok", (when, response)
        for symbol in SYMBOLS:
            latest = _latest(world, symbol)
            # The full-history computation as of this run: every final bar so far.
            finals = [b for b in history[symbol] if b.timestamp.date() <= when.date()]
            assert latest["ts"]["S"] == finals[-1].iso_time  # today's closed session
            expected = summarise([b.close for b in back_adjust(finals)])
            for name in INDICATORS:
                assert name in latest, (when, symbol, name)  # never loses a field
                got = float(latest[name]["N"])
                assert got == pytest.approx(expected[name], abs=0.01), (when, symbol, name)
                worst = max(worst, abs(got - expected[name]))
    # With a 200-bar warm-up the agreement is far better than the 0.01 promised.
    assert worst < 1e-6


def test_a_split_inside_the_stored_window_does_not_move_the_adjusted_series(
    world, context, history
):
    # GIVEN runs before the split: the stored series reads the pre-split raw prices
    before = [t for t in RUNS if t.date() < SPLIT_DAY]
    after = [t for t in RUNS if t.date() >= SPLIT_DAY]
    for when in before:
        _invoke(world, context, when)
    raw_before, _ = _stored(world, "AAPL")
    objects_before = {k: v for k, v in world.objects().items() if "symbol=AAPL" in k}
    # WHEN the split happens and later runs store the post-split bars
    for when in after:
        _invoke(world, context, when)
    raw_after, series = _stored(world, "AAPL")
    by_day = {b.timestamp.date(): b for b in raw_after}
    split_bar = by_day[SPLIT_DAY]
    previous = raw_after[raw_after.index(split_bar) - 1]
    # THEN the raw prices drop to a quarter at the split, and the bar says why
    assert split_bar.split == 4.0
    assert split_bar.open / previous.close == pytest.approx(0.25, rel=0.1)
    # AND the bars stored before the split are unchanged, byte for byte: history is raw
    assert raw_after[: len(raw_before)] == raw_before
    for key, body in objects_before.items():
        if "year=2023" in key:
            assert world.objects()[key] == body
    # AND adjusted, the series has the full history's returns on every day: no fake
    # 75% crash at the split, just the day's real move
    adjusted = back_adjust(raw_after)
    full = {b.timestamp: b for b in back_adjust(history["AAPL"][: _upto(history, RUNS[-1])])}
    assert [b.close for b in adjusted] == pytest.approx(
        [full[b.timestamp].close for b in adjusted], rel=1e-9
    )
    returns = simple_returns([b.close for b in adjusted])
    at_split = returns[raw_after.index(split_bar)]
    assert abs(at_split) < 0.1
    # AND LATEST (raw newest bar, indicators on adjusted closes) is on the post-split scale
    latest = _latest(world, "AAPL")
    assert float(latest["sma_20"]["N"]) / float(latest["close"]["N"]) == pytest.approx(1, abs=0.2)
    # AND the index knows every object that holds the series, with exact counts
    assert series.bars == len(raw_after)
    assert series.last_final == raw_after[-1].iso_time


def _upto(history, when):
    return sum(b.timestamp.date() <= when.date() for b in history["AAPL"])


def test_a_bad_row_is_dropped_counted_and_recorded(world, context):
    when = datetime(2024, 2, 27, 22, 0, tzinfo=UTC)
    response = _invoke(world, context, when)
    qqq = next(r for r in response["results"] if r["symbol"] == "QQQ")
    assert qqq["status"] == "ok" and qqq["dropped"] >= 1
    assert "2024-02-27" in {r["timestamp"][:10] for r in qqq["rejected"]}
    assert response["dropped_rows"] == sum(r["dropped"] for r in response["results"])
    record = json.loads(world.objects()[response["run_record"]])
    assert record["dropped_rows"] == response["dropped_rows"]
    # The broken session is in neither store; its neighbours are.
    stored, _ = _stored(world, "QQQ")
    days = {b.timestamp.date() for b in stored}
    assert date(2024, 2, 27) not in days and date(2024, 2, 26) in days
