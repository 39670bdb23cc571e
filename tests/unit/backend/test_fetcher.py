"""The fetch run with in-memory stores: partial failure, bad rows, finality, what a run
writes, and bounded concurrency."""

import threading
import time
from datetime import UTC, date, datetime

import pytest

from backend.fetcher import MAX_WORKERS, WARMUP_PERIOD, FetchDeps, FetchJob, fetch_all, fetch_period
from backend.index import Index, Series
from backend.market_calendar import get_calendar
from backend.models import Bar
from backend.providers import Batch, ProviderError, Rejected
from backend.providers.fixture import PLAIN, FixtureProvider, Scenario
from backend.storage import Merged

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)  # Friday, 10:30 in New York: open
PREFIX = "data/dev/market/symbol="


class MemoryObjects:
    def __init__(self, fail_for=()):
        self.objects: dict[str, dict] = {}
        self.fail_for = fail_for

    def merge_bars(self, key, bars):
        if any(b.symbol in self.fail_for for b in bars):
            raise ConnectionError("S3 unreachable")
        stored = self.objects.setdefault(key, {})
        added = [b for b in bars if b.timestamp not in stored]
        stored.update({b.timestamp: b for b in added})
        return Merged(key=key, written=bool(added), bars=len(stored), added=len(added))

    def bars(self, symbol):
        return sorted(
            (
                b
                for key, held in self.objects.items()
                if f"={symbol}/" in key
                for b in held.values()
            ),
            key=lambda b: b.timestamp,
        )


class MemoryTable:
    def __init__(self):
        self.items = {}
        self.lock = threading.Lock()

    def put_items(self, items):
        with self.lock:
            for item in items:
                self.items[(item["pk"]["S"], item["sk"]["S"])] = item
        return 1


class ScriptedProvider:
    """The fixture's bars, except for the symbols scripted to misbehave."""

    name = "scripted"

    def __init__(self, scenario=PLAIN, clock=lambda: NOW):
        self.fixture = FixtureProvider(clock=clock, scenario=scenario)
        self.periods = []

    def fetch(self, symbol, interval, period):
        self.periods.append(period)
        if symbol == "DOWN":
            raise ProviderError("Yahoo unreachable")
        if symbol == "EMPTY":
            return Batch(bars=[])
        if symbol == "CRASH":
            raise KeyError("chart")
        if symbol == "WRONG":
            return self.fixture.fetch("OTHER", interval, period)
        if symbol == "ALLBAD":
            return Batch(
                bars=[], rejected=[Rejected("2024-03-14T00:00:00Z", "open must be a number")]
            )
        return self.fixture.fetch(symbol, interval, period)


def _run(
    symbols,
    *,
    provider=None,
    objects=None,
    table=None,
    period="1mo",
    index=None,
    now=NOW,
    remaining_seconds=None,
    max_workers=MAX_WORKERS,
):
    job = FetchJob(
        symbols=symbols,
        interval="1d",
        period=period,
        data_prefix="data/dev/",
        index=index or Index(),
    )
    deps = FetchDeps(
        provider=provider or ScriptedProvider(),
        objects=objects or MemoryObjects(),
        table=table or MemoryTable(),
        calendar=get_calendar(),
        now=lambda: now,
        remaining_seconds=remaining_seconds,
    )
    return fetch_all(job, deps, max_workers=max_workers)


def test_one_failing_symbol_does_not_stop_the_others():
    objects = MemoryObjects(fail_for=("NOSTORE",))
    table = MemoryTable()
    symbols = ["AAPL", "DOWN", "EMPTY", "CRASH", "WRONG", "ALLBAD", "NOSTORE", "MSFT"]
    results = _run(symbols, objects=objects, table=table)
    by_symbol = {r.symbol: r for r in results}
    assert [r.symbol for r in results] == symbols
    assert by_symbol["AAPL"].status == by_symbol["MSFT"].status == "ok"
    assert by_symbol["AAPL"].last_bar == "2024-03-15T00:00:00Z"
    assert {s: r.reason for s, r in by_symbol.items() if r.status == "failed"} == {
        "DOWN": "provider_error",
        "EMPTY": "no_data",
        "CRASH": "provider_error",
        "WRONG": "invalid_data",
        "ALLBAD": "invalid_data",
        "NOSTORE": "storage_error",
    }
    assert "Yahoo unreachable" in by_symbol["DOWN"].error
    assert "all 1 rows failed validation" in by_symbol["ALLBAD"].error
    assert by_symbol["ALLBAD"].to_dict()["dropped"] == 1
    assert {key.split("/")[3] for key in objects.objects} == {"symbol=AAPL", "symbol=MSFT"}
    # The table holds the two good symbols' bars and one LATEST item each.
    assert {pk for pk, _ in table.items} == {"BAR#AAPL#1d", "BAR#MSFT#1d"}
    assert table.items[("BAR#AAPL#1d", "LATEST")]["rsi_14"]["N"]


def test_the_fetch_reaches_back_to_the_warm_up_whatever_the_period():
    assert fetch_period("1d", "5d") == "1y"
    assert fetch_period("1d", "10y") == "10y"
    assert fetch_period("1d", "ytd") == "1y"
    assert fetch_period("1h", "1d") == "3mo"
    assert fetch_period("1m", "1d") == "5d"
    assert set(WARMUP_PERIOD) == set(__import__("backend.models").models.INTERVALS)
    provider = ScriptedProvider()
    _run(["AAPL"], provider=provider, period="5d")
    assert provider.periods == ["1y"]


def test_bad_rows_are_dropped_and_counted_not_fatal():
    # GIVEN a provider whose series has two broken sessions (issue 12: one bad row used
    # to fail the whole symbol)
    scenario = Scenario(regular=False, bad_rows={"AAPL": [date(2024, 3, 12), date(2024, 3, 13)]})
    objects = MemoryObjects()
    (result,) = _run(["AAPL"], provider=ScriptedProvider(scenario), objects=objects)
    # THEN the symbol succeeds without them, and says which rows it dropped and why
    assert result.status == "ok" and result.dropped == 2
    doc = result.to_dict()
    assert doc["dropped"] == 2
    assert [r["timestamp"][:10] for r in doc["rejected"]] == ["2024-03-12", "2024-03-13"]
    stored = {b.timestamp.date() for b in objects.bars("AAPL")}
    assert date(2024, 3, 11) in stored and date(2024, 3, 12) not in stored


def test_the_unfinished_bar_is_marked_and_kept_out_of_the_history():
    objects, table = MemoryObjects(), MemoryTable()
    (result,) = _run(["AAPL"], objects=objects, table=table)
    # Friday's session is open at 10:30: its bar is in the table, marked not final...
    live = table.items[("BAR#AAPL#1d", "TS#2024-03-15T00:00:00Z")]
    assert live["final"] == {"BOOL": False}
    assert table.items[("BAR#AAPL#1d", "TS#2024-03-14T00:00:00Z")]["final"] == {"BOOL": True}
    # ...it is not in S3, where every bar is final...
    assert objects.bars("AAPL")[-1].timestamp == datetime(2024, 3, 14, tzinfo=UTC)
    assert all(b.final for b in objects.bars("AAPL"))
    # ...and LATEST is the last closed bar, which a strategy may act on.
    assert table.items[("BAR#AAPL#1d", "LATEST")]["ts"] == {"S": "2024-03-14T00:00:00Z"}
    assert (result.last_bar, result.last_final) == ("2024-03-15T00:00:00Z", "2024-03-14T00:00:00Z")

    # WHEN a run after the close (and the settling time) sees the same session
    after = datetime(2024, 3, 15, 21, 0, tzinfo=UTC)
    index = Index().with_updates([result.series], now=NOW)
    _run(["AAPL"], objects=objects, table=table, index=index, now=after,
         provider=ScriptedProvider(clock=lambda: after))  # fmt: skip
    # THEN it is rewritten as final, stored in S3, and LATEST moves to it
    assert table.items[("BAR#AAPL#1d", "TS#2024-03-15T00:00:00Z")]["final"] == {"BOOL": True}
    assert objects.bars("AAPL")[-1].timestamp == datetime(2024, 3, 15, tzinfo=UTC)
    assert table.items[("BAR#AAPL#1d", "LATEST")]["ts"] == {"S": "2024-03-15T00:00:00Z"}


def test_a_run_writes_what_the_store_lacks_and_the_requested_period():
    # GIVEN a store whose index says the series is complete up to Tuesday
    known = Series(symbol="AAPL", interval="1d", first="2023-03-16T00:00:00Z",
                   last="2024-03-12T00:00:00Z", last_final="2024-03-12T00:00:00Z")  # fmt: skip
    table = MemoryTable()
    (result,) = _run(["AAPL"], table=table, period="1d", index=Index(series={"AAPL/1d": known}))
    # THEN it writes Wednesday, Thursday and the live Friday (what is new), a year fetched
    written = sorted(sk for _, sk in table.items if sk.startswith("TS#"))
    assert written == [f"TS#2024-03-{d}T00:00:00Z" for d in (13, 14, 15)]
    assert result.bars == 3 and result.fetched == 252  # 2023-03-16 to 2024-03-15
    # AND its series news for the index covers just that
    assert (result.series.first, result.series.last_final) == (
        "2024-03-13T00:00:00Z",
        "2024-03-14T00:00:00Z",
    )


def test_latest_is_kept_rather_than_written_from_a_short_history():
    class Short(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            batch = super().fetch(symbol, interval, period)
            return Batch(bars=batch.bars[-30:], rejected=[])

    known = Series(symbol="AAPL", interval="1d", first="2016-01-04T00:00:00Z",
                   last="2024-03-13T00:00:00Z", last_final="2024-03-13T00:00:00Z")  # fmt: skip
    table = MemoryTable()
    (result,) = _run(
        ["AAPL"], provider=Short(), table=table, index=Index(series={"AAPL/1d": known})
    )
    # 30 bars cannot give RSI within 0.01 of the stored history's: LATEST is left alone
    assert result.status == "ok" and result.latest.startswith("kept: only 29 final bars")
    assert ("BAR#AAPL#1d", "LATEST") not in table.items
    # A young series (nothing older stored) gets its LATEST from what there is.
    (young,) = _run(["AAPL"], provider=Short(), table=table)
    assert young.latest == "written" and "sma_20" in table.items[("BAR#AAPL#1d", "LATEST")]


def test_bars_are_put_in_time_order_whatever_order_the_provider_used():
    class NewestFirst(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            batch = super().fetch(symbol, interval, period)
            return Batch(bars=list(reversed(batch.bars)), rejected=batch.rejected)

    in_order, table = MemoryTable(), MemoryTable()
    _run(["AAPL"], table=in_order)
    (result,) = _run(["AAPL"], provider=NewestFirst(), table=table)
    assert result.last_bar == "2024-03-15T00:00:00Z"
    # The same indicators as from the provider that answers oldest first.
    assert table.items[("BAR#AAPL#1d", "LATEST")] == in_order.items[("BAR#AAPL#1d", "LATEST")]


def test_fetching_runs_concurrently_within_the_bound():
    class Slow:
        name = "slow"

        def __init__(self):
            self.active = 0
            self.peak = 0
            self.lock = threading.Lock()

        def fetch(self, symbol, interval, period):
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.02)
            with self.lock:
                self.active -= 1
            day = datetime(2024, 3, 14, tzinfo=UTC)
            bar = Bar.create(symbol=symbol, interval=interval, timestamp=day,
                             open=1, high=1, low=1, close=1, volume=1)  # fmt: skip
            return Batch(bars=[bar])

    slow = Slow()
    results = _run([f"S{i}" for i in range(24)], provider=slow, max_workers=6)
    assert all(r.status == "ok" for r in results)
    assert slow.peak == 6


def test_symbols_not_started_near_the_timeout_are_reported_not_lost():
    results = _run(["AAPL", "MSFT"], remaining_seconds=lambda: 1.0)
    assert [(r.status, r.reason) for r in results] == [("failed", "out_of_time")] * 2


@pytest.mark.parametrize("answer", [["not a bar"], None])
def test_a_provider_answering_nonsense_fails_only_that_symbol(answer):
    class Nonsense(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            return answer if symbol == "BAD" else super().fetch(symbol, interval, period)

    results = _run(["BAD", "AAPL"], provider=Nonsense())
    assert [(r.symbol, r.status, r.reason) for r in results] == [
        ("BAD", "failed", "invalid_data"),
        ("AAPL", "ok", None),
    ]


def test_a_bar_the_calendar_does_not_cover_is_not_final():
    class FromTheFuture(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            batch = super().fetch(symbol, interval, period)
            odd = Bar.create(symbol=symbol, interval=interval,
                             timestamp=datetime(2040, 1, 2, tzinfo=UTC),
                             open=1, high=1, low=1, close=1, volume=1)  # fmt: skip
            return Batch(bars=[*batch.bars, odd])

    objects, table = MemoryObjects(), MemoryTable()
    (result,) = _run(["AAPL"], provider=FromTheFuture(), objects=objects, table=table)
    assert result.status == "ok" and result.last_final == "2024-03-14T00:00:00Z"
    assert table.items[("BAR#AAPL#1d", "TS#2040-01-02T00:00:00Z")]["final"] == {"BOOL": False}
    assert all(b.timestamp.year < 2040 for b in objects.bars("AAPL"))
