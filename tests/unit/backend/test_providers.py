"""The providers. yfinance is replaced at its API boundary (`yfinance.Ticker(...).history`)
by a fake module returning a DataFrame-like frame, so no network and no pandas."""

import sys
import types
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.models import Bar, BarError
from backend.providers import ProviderError, get_provider, yahoo
from backend.providers.fixture import FixtureProvider

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-4))
TOKYO = timezone(timedelta(hours=9))


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
    monkeypatch.setattr(yahoo, "_setup_done", False)
    return module


# --- fixture provider -------------------------------------------------------------------


def test_fixture_is_deterministic_and_valid():
    provider = FixtureProvider(clock=lambda: NOW)
    first = provider.fetch("AAPL", "1d", "1mo")
    again = FixtureProvider(clock=lambda: NOW).fetch("AAPL", "1d", "1mo")
    assert first == again
    assert len(first) == 30
    assert all(isinstance(b, Bar) and b.high >= b.low > 0 for b in first)
    assert first[-1].timestamp == datetime(2024, 3, 15, tzinfo=UTC)  # today's bar, as Yahoo
    assert [b.timestamp for b in first] == sorted(b.timestamp for b in first)


def test_fixture_bar_values_do_not_depend_on_when_they_are_fetched():
    # A bar keeps its prices on a later run, so re-written objects stay identical.
    today = FixtureProvider(clock=lambda: NOW).fetch("SPY", "1d", "5d")
    tomorrow = FixtureProvider(clock=lambda: NOW + timedelta(days=1)).fetch("SPY", "1d", "5d")
    assert today[1:] == tomorrow[:-1]


def test_fixture_symbols_differ_and_intraday_steps_are_right():
    provider = FixtureProvider(clock=lambda: NOW)
    assert provider.fetch("AAPL", "1d", "5d") != provider.fetch("MSFT", "1d", "5d")
    bars = provider.fetch("AAPL", "5m", "1d")
    assert len(bars) == 288
    assert bars[1].timestamp - bars[0].timestamp == timedelta(minutes=5)
    assert bars[-1].timestamp == NOW


def test_fixture_ytd_starts_this_year():
    bars = FixtureProvider(clock=lambda: NOW).fetch("AAPL", "1d", "ytd")
    assert bars[0].timestamp.year == 2024
    assert bars[0].timestamp >= datetime(2024, 1, 1, tzinfo=UTC)


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
    bars = yahoo.YFinanceProvider().fetch("AAPL", "1h", "5d")
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
    assert kwargs["raise_errors"] is True and kwargs["auto_adjust"] is True


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
    (bar,) = yahoo.YFinanceProvider().fetch("7203.T", "1d", "5d")
    assert bar.timestamp == datetime(2024, 3, 15, tzinfo=UTC)


def test_empty_frame_is_a_provider_error_not_a_success(fake_yfinance):
    fake_yfinance.frame = FakeFrame([])  # what yfinance returns when offline
    with pytest.raises(ProviderError, match="no data"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_yfinance_exception_becomes_provider_error(fake_yfinance):
    fake_yfinance.error = ConnectionError("Failed to resolve query2.finance.yahoo.com")
    with pytest.raises(ProviderError, match="ConnectionError: Failed to resolve"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_all_nan_rows_are_skipped_but_partial_nan_is_invalid(fake_yfinance):
    nan = float("nan")
    day = datetime(2024, 3, 14, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame(
        [(day, nan, nan, nan, nan, 0), (day + timedelta(days=1), 10.0, 11.0, 9.0, 10.0, 7)]
    )
    assert len(yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")) == 1
    fake_yfinance.frame = FakeFrame([(day, 10.0, nan, 9.0, 10.0, 7)])
    with pytest.raises(BarError, match="high"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_invalid_row_from_yahoo_is_a_bar_error(fake_yfinance):
    fake_yfinance.frame = FakeFrame(
        [(datetime(2024, 3, 14, tzinfo=NEW_YORK), 10.0, 9.0, 11.0, 10.0, 1)]
    )
    with pytest.raises(BarError, match="below low"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")


def test_missing_columns_and_naive_intraday_times_are_rejected(fake_yfinance):
    fake_yfinance.frame = FakeFrame(
        [(datetime(2024, 3, 14, tzinfo=NEW_YORK), 1.0, 1.0)], columns=("Open", "Close")
    )
    with pytest.raises(ProviderError, match="lacks columns"):
        yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    fake_yfinance.frame = FakeFrame([(datetime(2024, 3, 14, 9, 30), 1.0, 1.0, 1.0, 1.0, 1)])
    with pytest.raises(BarError, match="no time zone"):
        yahoo.YFinanceProvider().fetch("AAPL", "1h", "5d")


def test_duplicate_rows_for_one_session_keep_the_last(fake_yfinance):
    day = datetime(2024, 3, 14, tzinfo=NEW_YORK)
    fake_yfinance.frame = FakeFrame([(day, 1.0, 2.0, 1.0, 1.5, 1), (day, 1.0, 2.0, 1.0, 1.7, 2)])
    (bar,) = yahoo.YFinanceProvider().fetch("AAPL", "1d", "5d")
    assert bar.close == 1.7
