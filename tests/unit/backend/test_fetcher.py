"""The fetch run with in-memory stores: partial failure and bounded concurrency."""

import threading
import time
from datetime import UTC, datetime

from backend.fetcher import FetchJob, fetch_all
from backend.models import Bar
from backend.providers import ProviderError
from backend.providers.fixture import FixtureProvider

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)


class MemoryObjects:
    def __init__(self, fail_for=()):
        self.objects = {}
        self.fail_for = fail_for

    def put_bars(self, data_prefix, symbol, interval, bars):
        if symbol in self.fail_for:
            raise ConnectionError("S3 unreachable")
        key = f"{data_prefix}{symbol}"
        self.objects[key] = list(bars)
        return [key]


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

    def __init__(self):
        self.fixture = FixtureProvider(clock=lambda: NOW)

    def fetch(self, symbol, interval, period):
        if symbol == "DOWN":
            raise ProviderError("Yahoo unreachable")
        if symbol == "EMPTY":
            return []
        if symbol == "CRASH":
            raise KeyError("chart")
        if symbol == "WRONG":
            return self.fixture.fetch("OTHER", interval, period)
        return self.fixture.fetch(symbol, interval, period)


def _run(symbols, *, provider=None, objects=None, table=None, **kwargs):
    return fetch_all(
        FetchJob(symbols=symbols, interval="1d", period="1mo", data_prefix="data/dev/"),
        provider=provider or ScriptedProvider(),
        objects=objects or MemoryObjects(),
        table=table or MemoryTable(),
        now=lambda: NOW,
        **kwargs,
    )


def test_one_failing_symbol_does_not_stop_the_others():
    objects = MemoryObjects(fail_for=("NOSTORE",))
    table = MemoryTable()
    results = _run(
        ["AAPL", "DOWN", "EMPTY", "CRASH", "WRONG", "NOSTORE", "MSFT"], objects=objects, table=table
    )
    by_symbol = {r.symbol: r for r in results}
    assert [r.symbol for r in results] == [
        "AAPL",
        "DOWN",
        "EMPTY",
        "CRASH",
        "WRONG",
        "NOSTORE",
        "MSFT",
    ]
    assert by_symbol["AAPL"].status == by_symbol["MSFT"].status == "ok"
    assert by_symbol["AAPL"].bars == 30 and by_symbol["AAPL"].last_bar == "2024-03-15T00:00:00Z"
    assert {s: r.reason for s, r in by_symbol.items() if r.status == "failed"} == {
        "DOWN": "provider_error",
        "EMPTY": "no_data",
        "CRASH": "provider_error",
        "WRONG": "invalid_data",
        "NOSTORE": "storage_error",
    }
    assert "Yahoo unreachable" in by_symbol["DOWN"].error
    assert sorted(objects.objects) == ["data/dev/AAPL", "data/dev/MSFT"]
    # The table holds the two good symbols' bars and one LATEST item each.
    assert {pk for pk, _ in table.items} == {"BAR#AAPL#1d", "BAR#MSFT#1d"}
    assert table.items[("BAR#AAPL#1d", "LATEST")]["rsi_14"]["N"]


def test_invalid_bars_from_a_provider_fail_only_that_symbol():
    class BadBars(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            if symbol == "BAD":
                return ["not a bar"]
            return super().fetch(symbol, interval, period)

    results = _run(["BAD", "AAPL"], provider=BadBars())
    assert [(r.symbol, r.status, r.reason) for r in results] == [
        ("BAD", "failed", "invalid_data"),
        ("AAPL", "ok", None),
    ]


def test_bars_are_put_in_time_order_whatever_order_the_provider_used():
    class NewestFirst(ScriptedProvider):
        def fetch(self, symbol, interval, period):
            return list(reversed(super().fetch(symbol, interval, period)))

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
            return [
                Bar.create(
                    symbol=symbol,
                    interval=interval,
                    timestamp=NOW,
                    open=1,
                    high=1,
                    low=1,
                    close=1,
                    volume=1,
                )
            ]

    slow = Slow()
    results = _run([f"S{i}" for i in range(24)], provider=slow, max_workers=6)
    assert all(r.status == "ok" for r in results)
    assert slow.peak == 6


def test_symbols_not_started_near_the_timeout_are_reported_not_lost():
    results = _run(["AAPL", "MSFT"], remaining_seconds=lambda: 1.0)
    assert [(r.status, r.reason) for r in results] == [("failed", "out_of_time")] * 2
