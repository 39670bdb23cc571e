from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.models import Bar, BarError, check_interval_period, normalise_ticker

T = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _bar(**overrides):
    fields = {
        "symbol": "AAPL",
        "interval": "1d",
        "timestamp": T,
        "open": 10.0,
        "high": 11.0,
        "low": 9.5,
        "close": 10.5,
        "volume": 1000,
    }
    fields.update(overrides)
    return Bar.create(**fields)


def test_valid_bar_keeps_values_and_serialises_in_utc():
    bar = _bar()
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (10.0, 11.0, 9.5, 10.5, 1000)
    assert bar.to_json_dict()["timestamp"] == "2024-01-02T14:30:00Z"


def test_high_below_low_is_rejected():
    with pytest.raises(BarError, match=r"high 9\.0 is below low 9\.5"):
        _bar(high=9.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"close": 11.5}, r"close 11\.5 is above high 11\.0"),
        ({"close": 9.0}, r"close 9\.0 is below low 9\.5"),
        ({"open": 12.0}, r"open 12\.0 is above high 11\.0"),
        ({"open": 9.4}, r"open 9\.4 is below low 9\.5"),
    ],
)
def test_open_and_close_must_lie_within_the_range(fields, message):
    # Issue 12: a close above the high used to be accepted.
    with pytest.raises(BarError, match=message):
        _bar(**fields)


def test_a_stored_line_reads_back_as_the_same_bar():
    bar = _bar(split=4.0, dividend=0.25, final=False)
    assert Bar.from_json_dict(bar.to_json_dict()) == bar
    # A line written before the actions existed reads as unsplit, undivided and final.
    legacy = {
        k: v for k, v in _bar().to_json_dict().items() if k not in ("split", "dividend", "final")
    }
    assert Bar.from_json_dict(legacy) == _bar()
    with pytest.raises(BarError, match="ISO-8601"):
        Bar.from_json_dict({**legacy, "timestamp": "yesterday"})
    with pytest.raises(BarError, match="close"):
        Bar.from_json_dict({**legacy, "close": "n/a"})


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "abc", None, True])
def test_prices_must_be_positive_finite_numbers(field, value):
    with pytest.raises(BarError, match=field):
        _bar(**{field: value})


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "many"])
def test_volume_must_be_non_negative_and_finite(value):
    with pytest.raises(BarError, match="volume"):
        _bar(volume=value)


def test_zero_volume_is_allowed_and_whole_float_volume_becomes_int():
    assert _bar(volume=0).volume == 0
    assert isinstance(_bar(volume=1500.0).volume, int)


def test_naive_timestamp_is_rejected():
    with pytest.raises(BarError, match="timezone-aware UTC"):
        _bar(timestamp=datetime(2024, 1, 2, 14, 30))


def test_non_utc_timestamp_is_rejected():
    new_york = timezone(timedelta(hours=-5))
    with pytest.raises(BarError, match="timezone-aware UTC"):
        _bar(timestamp=datetime(2024, 1, 2, 9, 30, tzinfo=new_york))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("aapl", "AAPL"),
        (" BRK-B ", "BRK-B"),
        ("^GSPC", "^GSPC"),
        ("EURUSD=X", "EURUSD=X"),
        ("AAPL250117C00150000",) * 2,
    ],
)
def test_tickers_are_normalised(raw, expected):
    assert normalise_ticker(raw) == expected


@pytest.mark.parametrize("raw", ["", "AA PL", "../etc", "A" * 21, "A/B", "$AAPL", 5, None])
def test_malformed_tickers_are_rejected(raw):
    with pytest.raises(ValueError, match="ticker"):
        normalise_ticker(raw)


def test_interval_and_period_rules():
    check_interval_period("1d", "max")
    check_interval_period("5m", "1mo")
    with pytest.raises(ValueError, match="unknown interval '7m'"):
        check_interval_period("7m", "5d")
    with pytest.raises(ValueError, match="unknown period '3d'"):
        check_interval_period("1d", "3d")
    with pytest.raises(ValueError, match="too long for interval '1m'"):
        check_interval_period("1m", "1mo")
