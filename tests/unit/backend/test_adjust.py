"""Back-adjustment: a split never reads as a price move, a dividend scales history."""

from datetime import UTC, datetime, timedelta

import pytest

from backend.adjust import back_adjust
from backend.models import Bar, BarError

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def bar(i: int, close: float, *, split: float = 1.0, dividend: float = 0.0) -> Bar:
    return Bar.create(
        symbol="AAPL", interval="1d", timestamp=T0 + timedelta(days=i),
        open=close, high=close, low=close, close=close, volume=1000,
        split=split, dividend=dividend,
    )  # fmt: skip


def test_a_four_for_one_split_is_a_flat_line():
    raw = [bar(0, 200), bar(1, 200), bar(2, 50, split=4), bar(3, 50)]
    adjusted = back_adjust(raw)
    assert [b.close for b in adjusted] == [50, 50, 50, 50]
    assert [b.volume for b in adjusted] == [4000, 4000, 1000, 1000]
    assert all(b.split == 1.0 and b.dividend == 0.0 for b in adjusted)


def test_a_dividend_scales_earlier_bars_by_one_minus_d_over_previous_close():
    raw = [bar(0, 100), bar(1, 100), bar(2, 98, dividend=2)]
    adjusted = back_adjust(raw)
    assert adjusted[0].close == pytest.approx(98)
    assert adjusted[1].close == pytest.approx(98)
    assert adjusted[2].close == 98


def test_actions_compound_and_the_newest_bar_is_raw():
    raw = [bar(0, 400), bar(1, 100, split=4), bar(2, 99, dividend=1), bar(3, 99)]
    adjusted = back_adjust(raw)
    assert adjusted[-1] is raw[-1]
    assert adjusted[0].close == pytest.approx(400 / 4 * (1 - 1 / 100))
    assert adjusted[1].close == pytest.approx(100 * (1 - 1 / 100))


def test_a_series_without_actions_comes_back_unchanged():
    raw = [bar(i, 10 + i) for i in range(5)]
    assert back_adjust(raw) == raw


@pytest.mark.parametrize(
    ("field", "value"), [("split", 0), ("split", float("nan")), ("dividend", -1), ("final", 1)]
)
def test_bad_action_fields_are_refused(field, value):
    with pytest.raises(BarError, match=field):
        Bar.create(
            symbol="A", interval="1d", timestamp=T0, open=1, high=1, low=1, close=1, volume=1,
            **{field: value},
        )  # fmt: skip
