import pytest

from backend.analytics import ema, rsi, simple_returns, sma, summarise

# StockCharts ChartSchool, "Relative Strength Index (RSI)", the worked example's
# spreadsheet (cs-rsi.xls): QQQQ closes and its 14-day RSI column, to 4 decimals
# (the article's table shows them rounded to 2: 70.53, 66.32, ...).
RSI_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433,
    46.0826, 45.8931, 46.0328, 45.614, 46.282, 46.282, 46.0028, 46.0328, 46.4116,
    46.2222, 45.6439, 46.2122, 46.2521, 45.7137, 46.4515, 45.7835, 45.3548, 44.0288,
    44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
]  # fmt: skip
RSI_PUBLISHED = [
    70.5328, 66.3186, 66.5498, 69.4063, 66.3552, 57.9749, 62.9296, 63.2571, 56.0593,
    62.3771, 54.7076, 50.4228, 39.9898, 41.4605, 41.8689, 45.4632, 37.304, 33.0795, 37.773,
]  # fmt: skip

# StockCharts ChartSchool, "Moving Averages - Simple and Exponential", the worked
# example's spreadsheet (cs-movavg.xls): 30 closes, the 10-day SMA's first value
# (22.22, from 22.221) and the 10-day EMA column (seeded with that SMA), to 2 decimals.
MA_CLOSES = [
    22.27, 22.19, 22.08, 22.17, 22.18, 22.13, 22.23, 22.43, 22.24, 22.29,
    22.15, 22.39, 22.38, 22.61, 23.36, 24.05, 23.75, 23.83, 23.95, 23.63,
    23.82, 23.87, 23.65, 23.19, 23.10, 23.33, 22.68, 23.10, 22.40, 22.17,
]  # fmt: skip
EMA_PUBLISHED = [
    22.22, 22.21, 22.24, 22.27, 22.33, 22.52, 22.80, 22.97, 23.13, 23.28, 23.34,
    23.43, 23.51, 23.53, 23.47, 23.40, 23.39, 23.26, 23.23, 23.08, 22.92,
]  # fmt: skip


def test_returns():
    assert simple_returns([100.0, 110.0, 99.0]) == [None, pytest.approx(0.1), pytest.approx(-0.1)]
    assert simple_returns([]) == []
    with pytest.raises(ValueError, match="zero value at index 0"):
        simple_returns([0.0, 1.0])


def test_sma_matches_hand_computed_values():
    assert sma(MA_CLOSES, 10)[9] == pytest.approx(22.221)  # the example's first SMA
    assert sma([1.0, 2.0, 3.0, 4.0, 5.0], 3) == [None, None, 2.0, 3.0, 4.0]
    assert sma([2.0, 4.0], 1) == [2.0, 4.0]
    assert sma([1.0, 2.0], 3) == [None, None]


def test_ema_matches_published_example():
    values = ema(MA_CLOSES, 10)
    assert values[:9] == [None] * 9
    assert [round(v, 2) for v in values[9:]] == EMA_PUBLISHED


def test_ema_seed_and_smoothing_by_hand():
    # seed = SMA(1, 2, 3) = 2; alpha = 0.5: 0.5*4 + 0.5*2 = 3; 0.5*5 + 0.5*3 = 4
    assert ema([1.0, 2.0, 3.0, 4.0, 5.0], 3) == [None, None, 2.0, 3.0, 4.0]


def test_rsi_matches_published_example():
    values = rsi(RSI_CLOSES, 14)
    assert values[:14] == [None] * 14
    # Within the spreadsheet's own rounding (5e-5 at 4 decimals)
    assert values[14:] == pytest.approx(RSI_PUBLISHED, abs=1e-4)


def test_rsi_edge_cases():
    assert rsi([1.0, 2.0, 3.0, 4.0], 3)[-1] == 100.0  # only gains
    assert rsi([4.0, 3.0, 2.0, 1.0], 3)[-1] == 0.0  # only losses
    assert rsi([5.0, 5.0, 5.0, 5.0], 3)[-1] == 50.0  # flat
    assert rsi([1.0, 2.0], 14) == [None, None]


@pytest.mark.parametrize("window", [0, -3, 1.5, True])
def test_window_must_be_a_positive_integer(window):
    with pytest.raises(ValueError, match="window must be a positive integer"):
        sma([1.0, 2.0], window)


def test_summarise_leaves_out_indicators_without_history():
    assert set(summarise([10.0, 11.0])) == {"return_1"}
    full = summarise(RSI_CLOSES)
    assert set(full) == {"return_1", "sma_20", "ema_20", "rsi_14"}
    assert full["rsi_14"] == pytest.approx(37.773, abs=1e-4)
    assert full["ema_20"] == ema(RSI_CLOSES, 20)[-1] and full["sma_20"] == sma(RSI_CLOSES, 20)[-1]
    assert full["return_1"] == pytest.approx(43.1314 / 42.6628 - 1)
