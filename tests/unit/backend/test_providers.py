"""The providers. yfinance is replaced at its API boundary (`yfinance.Ticker(...).history`)
by a fake module returning a DataFrame-like frame, so no network and no yfinance."""

import sys
import types
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from backend.adjust import back_adjust
from backend.models import Bar
from backend.providers import ProviderError, get_provider, yahoo
from backend.providers.fixture import PLAIN, FixtureProvider, Scenario

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-4))
TOKYO = timezone(timedelta(hours=9))
ACTION_FRAME = ("Open", "High", "Low", "Close", "Volume", "Dividends", "Stock Splits")


class FakeTimestamp:
    """Like pandas.Timestamp: the index yields these, not datetimes."""

    def __init__(self, value):
        self._value = value

    def to_pydatetime(self):
        return self._value


class FakeFrame:
    """The slice of pandas.DataFrame that frame_to_bars relies on."""

    def __init__(self, rows, columns=("Open", "High", "Low", "Close", "Volume")):
        self.index = [FakeTimestamp(r[0]) for r in rows]
        self.columns = list(columns)
        self._data = {c: [r[1 + i] for r in rows] for i, c in enumerate(columns)}
        self.empty = not rows

    def __getitem__(self, name):
        return iter(self._data[name])  # a Series iterates over its values


@pytest.fixture
def fake_yfinance(monkeypatch):
    module = types.ModuleType("yfinance")
    module.calls = []
    module.frame = FakeFrame([])
    module.error = None
    module.cache_dir = None

    class Ticker:
        def __init__(self, symbol):
            self.symbol = symbol

        def history(self, **kwargs):
            module.calls.append((self.symbol, kwargs))
            if module.error:
                raise module.error
            return module.frame

    def set_tz_cache_location(path):
        module.cache_dir = path

    module.Ticker = Ticker
    module.set_tz_cache_location = set_tz_cache_location
    monkeypatch.setitem(sys.modules, "yfinance", module)
    return module


# --- fixture provider -------------------------------------------------------------------


def test_fixture_is_deterministic_and_follows_the_calendar():
    provider = FixtureProvider(clock=lambda: NOW, scenario=PLAIN)
    first = provider.fetch("AAPL", "1d", "1mo")
    again = FixtureProvider(clock=lambda: NOW, scenario=PLAIN).fetch("AAPL", "1d", "1mo")
    assert first == again and first.rejected == []
    bars = first.bars
    # One bar per NYSE session from 2024-02-14 to Friday 2024-03-15 (a month is 31 days
    # here): no weekends, and no bar for Presidents' Day (2024-02-19).
    assert len(bars) == 22
    assert all(b.timestamp.weekday() < 5 for b in bars)
    assert datetime(2024, 2, 19, tzinfo=UTC) not in {b.timestamp for b in bars}
    assert all(isinstance(b, Bar) and b.low <= min(b.open, b.close) for b in bars)
    assert bars[-1].timestamp == datetime(2024, 3, 15, tzinfo=UTC)  # today's, as Yahoo
    assert [b.timestamp for b in bars] == sorted(b.timestamp for b in bars)


def test_fixture_closed_bars_do_not_depend_on_when_they_are_fetched():
    # A closed bar keeps its prices on a later run, so re-written objects stay identical;
    # the bar of the session in progress is the one that changes.
    today = FixtureProvider(clock=lambda: NOW).fetch("SPY", "1d", "1mo").bars
    later = FixtureProvider(clock=lambda: NOW + timedelta(days=3)).fetch("SPY", "1d", "1mo").bars
    closed = {b.timestamp: b for b in later}
    assert all(closed[b.timestamp] == b for b in today[-10:-1])
    assert closed[today[-1].timestamp] != today[-1]
    assert closed[today[-1].timestamp].open == today[-1].open


def test_fixture_serves_the_unfinished_session_as_it_stands():
    # At 10:30 New York time the day's bar holds an hour of trading: its close is the
    # price now, and its volume a sixth of a day's.
    bars = FixtureProvider(clock=lambda: NOW, scenario=PLAIN).fetch("AAPL", "1d", "5d").bars
    closed_day = (
        FixtureProvider(clock=lambda: datetime(2024, 3, 15, 21, tzinfo=UTC), scenario=PLAIN)
        .fetch("AAPL", "1d", "5d")
        .bars
    )
    assert bars[-1].open == closed_day[-1].open and bars[-1].close != closed_day[-1].close
    assert bars[-1].volume < closed_day[-1].volume / 4
    no_live = FixtureProvider(clock=lambda: NOW, scenario=Scenario(regular=False, unfinished=False))
    assert no_live.fetch("AAPL", "1d", "5d").bars[-1].timestamp == datetime(2024, 3, 14, tzinfo=UTC)


def test_fixture_intraday_bars_span_the_session_only():
    provider = FixtureProvider(clock=lambda: NOW, scenario=PLAIN)
    assert provider.fetch("AAPL", "1d", "5d") != provider.fetch("MSFT", "1d", "5d")
    bars = provider.fetch("AAPL", "5m", "1d").bars
    # 09:30 to 10:30 New York time (13:30-14:30 UTC): 12 closed bars and the live one.
    assert len(bars) == 13
    assert bars[0].timestamp == datetime(2024, 3, 15, 13, 30, tzinfo=UTC)
    assert bars[1].timestamp - bars[0].timestamp == timedelta(minutes=5)
    assert bars[-1].timestamp == NOW
    # A whole half-day of hourly bars: 09:30 to 13:00, the last one cut at the close.
    half_day = FixtureProvider(clock=lambda: datetime(2024, 7, 3, 22, tzinfo=UTC), scenario=PLAIN)
    hours = half_day.fetch("AAPL", "1h", "1d").bars
    assert [b.timestamp.hour for b in hours] == [13, 14, 15, 16]


def test_fixture_ytd_starts_this_year():
    bars = FixtureProvider(clock=lambda: NOW).fetch("AAPL", "1d", "ytd").bars
    assert bars[0].timestamp == datetime(2024, 1, 2, tzinfo=UTC)  # the first session


def test_fixture_scenario_splits_pay_dividends_and_break_rows():
    scenario = Scenario(
        regular=False,
        splits={"AAPL": {date(2024, 3, 11): 4.0}},
        dividends={"AAPL": {date(2024, 3, 13): 0.25}},
        bad_rows={"AAPL": [date(2024, 3, 12)]},
    )
    batch = FixtureProvider(clock=lambda: NOW, scenario=scenario).fetch("AAPL", "1d", "1mo")
    by_day = {b.timestamp.date(): b for b in batch.bars}
    assert by_day[date(2024, 3, 11)].split == 4.0
    assert by_day[date(2024, 3, 13)].dividend == 0.25
    assert sum(b.split != 1 for b in batch.bars) == 1
    # The raw price drops to a quarter at the split; the adjusted series does not.
    before, after = by_day[date(2024, 3, 8)], by_day[date(2024, 3, 11)]
    assert after.open / before.close == pytest.approx(0.25, rel=0.1)
    adjusted = {b.timestamp.date(): b for b in back_adjust(batch.bars)}
    assert adjusted[date(2024, 3, 11)].open / adjusted[date(2024, 3, 8)].close == pytest.approx(
        1.0, rel=0.1
    )
    # The bad row is rejected with its reason, not served.
    assert date(2024, 3, 12) not in by_day
    assert [r.timestamp[:10] for r in batch.rejected] == ["2024-03-12"]


def test_fixture_regular_scenario_has_splits_dividends_and_bad_rows():
    batch = FixtureProvider(clock=lambda: NOW).fetch("AAPL", "1d", "max")
    splits = [b.split for b in batch.bars if b.split != 1]
    assert splits[:4] == [2.0, 0.5, 2.0, 0.5]  # a split every three years, and back
    quarters = [b for b in batch.bars if b.dividend]
    assert {b.timestamp.month for b in quarters} == {2, 5, 8, 11}
    assert 0.003 < len(batch.rejected) / len(batch.bars) < 0.008  # about one in 250
    reasons = " ".join(r.reason for r in batch.rejected)
    for kind in ("close", "open", "low", "volume"):
        assert kind in reasons


def test_get_provider_selects_by_name():
    assert get_provider("fixture").name == "fixture"
    assert get_provider("yfinance").name == "yfinance"
    with pytest.raises(ValueError, match="unknown market-data provider 'alpaca'"):
        get_provider("alpaca")


# --- yfinance provider ------------------------------------------------------------------


def test_yfinance_history_is_converted_to_utc_bars(fake_yfinance):
    fake_yfinance.frame = FakeFrame(
        [
            (datetime(2024, 3, 14, 9, 30, tzinfo=NEW_YORK), 170.0, 171.5, 169.8, 171.0, 1200.0),
            (datetime(2024, 3, 14, 10, 30, tzinfo=NEW_YORK), 171.0, 172.0, 170.5, 171.8, 900),
        ]
    )
    batch = yahoo.YFinanceProvider().fetch("AAPL", "1h", "5d")
    bars = batch.bars
    assert [b.timestamp for b in bars] == [
        datetime(2024, 3, 14, 13, 30, tzinfo=UTC),
        datetime(2024, 3, 14, 14, 30, tzinfo=UTC),
    ]
    assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
        170.0,
        171.5,
        169.8,
        171.0,
        1200,
    )
    symbol, kwargs = fake_yfinance.calls[0]
    assert symbol == "AAPL"
    assert kwargs["period"] == "5d" and kwargs["interval"] == "1h"
    # Raw prices and the actions that adjust them, not Yahoo's adjusted series.
    assert kwargs["raise_errors"] is True
    assert kwargs["auto_adjust"] is False and kwargs["actions"] is True


def test_yfinance_cache_is_moved_to_a_writable_place(fake_yfinance):
    fake_yfinance.frame = FakeFrame(
        [(datetime(2024, 3, 14, tzinfo=NEW_YORK), 1.0, 1.0, 1.0, 1.0, 0)]
    )
    yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    assert fake_yfinance.cache_dir.endswith("py-yfinance")
    assert fake_yfinance.cache_dir.startswith(("/tmp", "/var/tmp"))


def test_daily_bars_are_labelled_with_the_exchange_date(fake_yfinance):
    # Tokyo's Friday session starts at Thursday 15:00 UTC; it must stay Friday's bar.
    fake_yfinance.frame = FakeFrame(
        [(datetime(2024, 3, 15, tzinfo=TOKYO), 10.0, 11.0, 9.0, 10.5, 5)]
    )
    (bar,) = yahoo.YFinanceProvider().fetch("7203.T", "1d", "5d").bars
    assert bar.timestamp == datetime(2024, 3, 15, tzinfo=UTC)


def test_split_adjusted_history_is_stored_raw_with_its_split(fake_yfinance):
    # GIVEN Yahoo's split-adjusted rows around a 4:1 split (what yfinance passes on with
    # auto_adjust=False): the two days before it read 50 although they traded at 200
    day = datetime(2024, 3, 7, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame(
        [
            (day, 50.0, 51.0, 49.5, 50.5, 4000, 0.0, 0.0),
            (day + timedelta(days=1), 50.5, 51.25, 50.0, 51.0, 8000, 0.1, 0.0),
            (day + timedelta(days=4), 51.0, 52.0, 50.0, 51.5, 1000, 0.0, 4.0),
            (day + timedelta(days=5), 51.5, 52.0, 51.0, 51.75, 1100, 0.0, 0.0),
        ],
        columns=ACTION_FRAME,
    )
    bars = yahoo.YFinanceProvider().fetch("AAPL", "1d", "1mo").bars
    # THEN the bars before the split are raw (as traded), with volume in pre-split shares
    # and the dividend per pre-split share; the split day carries the split
    assert [b.close for b in bars] == [202.0, 204.0, 51.5, 51.75]
    assert [b.volume for b in bars] == [1000, 2000, 1000, 1100]
    assert [b.split for b in bars] == [1.0, 1.0, 4.0, 1.0]
    assert bars[1].dividend == pytest.approx(0.4)
    # AND adjusting them back gives Yahoo's series: a split never reads as a move
    adjusted = back_adjust(bars)
    assert [b.close for b in adjusted[2:]] == [51.5, 51.75]
    assert adjusted[1].close == pytest.approx(51.0)
    assert adjusted[0].close == pytest.approx(50.5 * (1 - 0.4 / 202.0))


def test_actions_on_a_placeholder_row_move_to_the_next_bar(fake_yfinance):
    nan = float("nan")
    day = datetime(2024, 3, 8, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame(
        [
            (day, 100.0, 101.0, 99.0, 100.0, 10, 0.0, 0.0),
            (day + timedelta(days=1), nan, nan, nan, nan, 0, 0.5, 2.0),
            (day + timedelta(days=3), 50.0, 51.0, 49.0, 50.0, 20, 0.0, 0.0),
        ],
        columns=ACTION_FRAME,
    )
    bars = yahoo.YFinanceProvider().fetch("AAPL", "1d", "1mo").bars
    assert [(b.close, b.split, b.dividend) for b in bars] == [(200.0, 1.0, 0.0), (50.0, 2.0, 0.5)]


def test_empty_frame_is_a_provider_error_not_a_success(fake_yfinance):
    fake_yfinance.frame = FakeFrame([])  # what yfinance returns when offline
    with pytest.raises(ProviderError, match="no data"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_yfinance_exception_becomes_provider_error(fake_yfinance):
    fake_yfinance.error = ConnectionError("Failed to resolve query2.finance.yahoo.com")
    with pytest.raises(ProviderError, match="ConnectionError: Failed to resolve"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_all_nan_rows_are_skipped_and_a_partial_nan_row_is_dropped(fake_yfinance):
    # Changed by issue 12: a bad row used to fail the whole symbol; now it is dropped
    # and counted, and the good rows are kept.
    nan = float("nan")
    day = datetime(2024, 3, 13, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame(
        [
            (day, nan, nan, nan, nan, 0),
            (day + timedelta(days=1), 10.0, nan, 9.0, 10.0, 7),
            (day + timedelta(days=2), 10.0, 11.0, 9.0, 10.0, 7),
        ]
    )
    batch = yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    assert [b.timestamp.day for b in batch.bars] == [15]
    assert [(r.timestamp[:10], "high" in r.reason) for r in batch.rejected] == [
        ("2024-03-14", True)
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((10.0, 9.0, 11.0, 10.0, 1), "high 9.0 is below low 11.0"),
        ((10.0, 11.0, 9.0, 11.5, 1), "close 11.5 is above high 11.0"),
        ((8.0, 11.0, 9.0, 10.0, 1), "open 8.0 is below low 9.0"),
        ((0.0, 11.0, 9.0, 10.0, 1), "open must be positive"),
        ((None, 11.0, 9.0, 10.0, 1), "open must be a number"),
        ((10.0, 11.0, 9.0, 10.0, -5), "volume must be non-negative"),
        ((10.0, float("inf"), 9.0, 10.0, 1), "high must be positive and finite"),
    ],
)
def test_each_bad_row_is_dropped_with_its_reason(fake_yfinance, row, reason):
    good = (datetime(2024, 3, 15, tzinfo=NEW_YORK), 10.0, 11.0, 9.0, 10.0, 1)
    fake_yfinance.frame = FakeFrame([(datetime(2024, 3, 14, tzinfo=NEW_YORK), *row), good])
    batch = yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    assert len(batch.bars) == 1
    (rejected,) = batch.rejected
    assert reason in rejected.reason and rejected.timestamp.startswith("2024-03-14")


def test_missing_columns_fail_and_naive_intraday_times_are_rejected(fake_yfinance):
    fake_yfinance.frame = FakeFrame(
        [(datetime(2024, 3, 14, tzinfo=NEW_YORK), 1.0, 1.0)], columns=("Open", "Close")
    )
    with pytest.raises(ProviderError, match="lacks columns"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    fake_yfinance.frame = FakeFrame([(datetime(2024, 3, 14, 9, 30), 1.0, 1.0, 1.0, 1.0, 1)])
    batch = yahoo.YFinanceProvider().fetch("AAPL", "1h", "5d")
    assert batch.bars == [] and "timezone-aware" in batch.rejected[0].reason


def test_duplicate_rows_for_one_session_keep_the_last(fake_yfinance):
    day = datetime(2024, 3, 14, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame([(day, 1.0, 2.0, 1.0, 1.5, 1), (day, 1.0, 2.0, 1.0, 1.7, 2)])
    (bar,) = yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d").bars
    assert bar.close == 1.7


def test_a_real_pandas_frame_converts_as_a_fake_one_does(fake_yfinance):
    # pandas is in the dev environment (exchange_calendars brings it): the conversion
    # contract against the real thing, an exchange-zone DatetimeIndex with actions.
    import pandas as pd

    index = pd.DatetimeIndex(["2024-03-07", "2024-03-08", "2024-03-11"]).tz_localize(
        "America/New_York"
    )
    fake_yfinance.frame = pd.DataFrame(
        {
            "Open": [50.0, 50.5, 51.0],
            "High": [51.0, 51.25, 52.0],
            "Low": [49.5, 50.0, 50.0],
            "Close": [50.5, 51.0, 51.5],
            "Volume": [4000, 8000, 1000],
            "Dividends": [0.0, 0.1, 0.0],
            "Stock Splits": [0.0, 0.0, 4.0],
        },
        index=index,
    )
    bars = yahoo.YFinanceProvider().fetch("AAPL", "1d", "1mo").bars
    assert [b.timestamp.day for b in bars] == [7, 8, 11]
    assert [b.close for b in bars] == [202.0, 204.0, 51.5]
    assert [b.volume for b in bars] == [1000, 2000, 1000]
    assert [b.split for b in bars] == [1.0, 1.0, 4.0]
    assert bars[1].dividend == pytest.approx(0.4)
