"""Each strategy on crafted series with known crossovers and thresholds."""

import math
import random

import pytest

from backend.analytics import rsi, sma
from backend.trading.strategies import (
    STRATEGIES,
    Position,
    RsiMeanReversion,
    SmaCrossover,
)
from tests.unit.trading.helpers import bars


def views(strategy, closes):
    signal = strategy.signal()
    return [signal.update(c) for c in closes]


def test_sma_crossover_goes_long_on_the_bar_the_fast_average_crosses_above():
    # GIVEN a falling then rising series: fast(2) crosses slow(4) upwards exactly at index 6
    closes = [10, 9, 8, 7, 6, 7, 9, 10]
    strategy = SmaCrossover({"fast": 2, "slow": 4})
    out = views(strategy, closes)
    fast, slow = sma(closes, 2), sma(closes, 4)
    # THEN no view before the slow window fills, short while fast < slow, long after
    assert out[:3] == [None, None, None]
    for i in range(3, len(closes)):
        expected = 1 if fast[i] > slow[i] else -1 if fast[i] < slow[i] else None
        assert out[i] == expected, i
    assert out[5] == -1 and out[6] == 1  # fast 6.5 < slow 7.0, then fast 8.0 > slow 7.25


def test_sma_crossover_matches_the_full_recompute_over_a_long_random_series():
    rng = random.Random(7)  # noqa: S311 - test data
    closes = [100.0]
    for _ in range(3000):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.02)))
    strategy = SmaCrossover({"fast": 10, "slow": 30})
    signal = strategy.signal()
    fast, slow = sma(closes, 10), sma(closes, 30)
    for i, c in enumerate(closes):
        view = signal.update(c)
        if i >= 29:
            values = signal.values()
            assert values["sma_fast"] == pytest.approx(fast[i], rel=1e-9)
            assert values["sma_slow"] == pytest.approx(slow[i], rel=1e-9)
            assert view == (1 if fast[i] > slow[i] else -1)


def test_rsi_signal_matches_analytics_rsi_and_its_thresholds():
    rng = random.Random(3)  # noqa: S311 - test data
    closes = [50.0]
    for _ in range(500):
        closes.append(closes[-1] + rng.gauss(0, 1))
    strategy = RsiMeanReversion({"period": 14, "oversold": 35, "overbought": 65})
    signal = strategy.signal()
    expected = rsi(closes, 14)
    for i, c in enumerate(closes):
        view = signal.update(c)
        if expected[i] is None:
            assert view is None
            continue
        assert signal.values()["rsi"] == pytest.approx(expected[i], abs=1e-9)
        want = 1 if expected[i] < 35 else -1 if expected[i] > 65 else None
        assert view == want


def test_rsi_mean_reversion_buys_oversold_sells_overbought_and_holds_between():
    strategy = RsiMeanReversion({"period": 3, "oversold": 30, "overbought": 70})
    down = [10, 9, 8, 7, 6]  # only losses: RSI 0 -> oversold -> long
    assert strategy.target(bars("X", down), Position("X")).direction == 1
    up = [10, 11, 12, 13, 14]  # only gains: RSI 100 -> overbought -> short/flat
    assert strategy.target(bars("X", up), Position("X", 10)).direction == -1
    # Between the thresholds there is no view: the target is the position held.
    flat_ish = [10, 11, 10, 11, 10, 11]
    target = strategy.target(bars("X", flat_ish), Position("X", 25))
    assert target.direction == 1 and "hold" in target.reason
    assert strategy.target(bars("X", flat_ish), Position("X", 0)).direction == 0


def test_target_holds_while_warming_up():
    strategy = SmaCrossover({"fast": 3, "slow": 5})
    target = strategy.target(bars("X", [1, 2, 3, 4]), Position("X", -7))
    assert target.direction == -1
    assert target.reason == "warming up: 4 of 5 bars"


def test_a_split_in_history_does_not_change_the_signal():
    """Signals compare indicators with each other, so rescaling history (a 4:1 split
    adjusted away, or not yet) cannot move them."""
    rng = random.Random(11)  # noqa: S311 - test data
    closes = [200.0]
    for _ in range(120):
        closes.append(closes[-1] * (1 + rng.gauss(0, 0.02)))
    for name, params in (("sma_crossover", {"fast": 5, "slow": 20}), ("rsi_mean_reversion", {})):
        strategy = STRATEGIES[name](params)
        assert views(strategy, closes) == views(strategy, [c / 4 for c in closes])


def test_strategies_registry_names_the_two_strategies():
    assert set(STRATEGIES) == {"sma_crossover", "rsi_mean_reversion"}
    assert SmaCrossover().params == {"fast": 20, "slow": 50}
    assert RsiMeanReversion().params == {"period": 14, "oversold": 30.0, "overbought": 70.0}


@pytest.mark.parametrize("period", [2, 14, 50])
def test_rsi_over_its_lookback_is_the_full_history_value(period):
    # What the service reads at start (Strategy.lookback) is enough for its RSI to be
    # the backtester's, which saw the whole history.
    closes = [100 * (1 + 0.1 * math.sin(i / 3.7) + 0.05 * math.sin(i / 1.3)) for i in range(1500)]
    strategy = RsiMeanReversion({"period": period})
    full, recent = strategy.signal(), strategy.signal()
    for close in closes:
        full.update(close)
    for close in closes[-strategy.lookback :]:
        recent.update(close)
    assert recent.values()["rsi"] == pytest.approx(full.values()["rsi"], abs=1e-3)
    shorter = strategy.signal()
    for close in closes[-strategy.warmup :]:
        shorter.update(close)
    assert shorter.values()["rsi"] != pytest.approx(full.values()["rsi"], abs=1e-3)


@pytest.mark.parametrize(
    "strategy",
    [SmaCrossover({"fast": 3, "slow": 7}), SmaCrossover(), RsiMeanReversion({"period": 5})],
)
def test_the_backtesters_whole_series_equals_feeding_the_signal_bar_by_bar(strategy):
    rng = random.Random(7)  # noqa: S311 - test data, not cryptography
    closes = [100.0]
    for _ in range(2000):
        # Whole cents and flat runs, so the averages tie now and then (a view of None).
        closes.append(max(1.0, round(closes[-1] + rng.choice([-1, 0, 0, 1]) * 0.25, 2)))
    signal = strategy.signal()
    assert strategy.views(closes) == [signal.update(c) for c in closes]
