"""Indicators the bot computes on fetched bars. Pure functions over lists of floats.

Series results are aligned with the input: element i describes the value at input i,
and is None where there is not yet enough history.
"""

from __future__ import annotations

from collections.abc import Sequence

# Bars of history before the newest one that make every stored indicator agree with its
# full-history value to well under 0.01 (docs/runtime.md "Indicators and their warm-up").
# An EMA or a Wilder average started n bars late differs from the full-history one by
# its starting error times (1 - alpha)^n: for EMA(20) (19/21)^200 < 2e-9, for RSI(14)'s
# averages (13/14)^200 < 4e-7, so even a starting error of the whole price (or of 100
# RSI points) is gone. SMA(20) and the 1-bar return need only 20 and 1 bars.
WARMUP_BARS = 200


def _check_window(window: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")


def simple_returns(values: Sequence[float]) -> list[float | None]:
    """r[i] = values[i] / values[i-1] - 1; r[0] is None."""
    out: list[float | None] = [None] * len(values)
    for i in range(1, len(values)):
        prev = values[i - 1]
        if prev == 0:
            raise ValueError(f"cannot compute a return from a zero value at index {i - 1}")
        out[i] = values[i] / prev - 1.0
    return out


def sma(values: Sequence[float], window: int) -> list[float | None]:
    """Simple moving average over `window` values (a running sum: O(n))."""
    _check_window(window)
    out: list[float | None] = [None] * len(values)
    running = 0.0
    for i, value in enumerate(values):
        running += value
        if i >= window:
            running -= values[i - window]
        if i >= window - 1:
            out[i] = running / window
    return out


def ema(values: Sequence[float], window: int) -> list[float | None]:
    """Exponential moving average, alpha = 2 / (window + 1), seeded with the SMA of the
    first `window` values (the usual charting convention, so early values are not biased
    towards the first price)."""
    _check_window(window)
    out: list[float | None] = [None] * len(values)
    if len(values) < window:
        return out
    alpha = 2.0 / (window + 1)
    current = sum(values[:window]) / window
    out[window - 1] = current
    for i in range(window, len(values)):
        current = alpha * values[i] + (1 - alpha) * current
        out[i] = current
    return out


def rsi(values: Sequence[float], period: int = 14) -> list[float | None]:
    """Wilder's Relative Strength Index (0-100).

    The first value (at index `period`) uses plain averages of the first `period` gains
    and losses; later values use Wilder's smoothing avg = (avg * (period - 1) + x) / period.
    With no losses RSI is 100; with neither gains nor losses (a flat series) it is 50.
    """
    _check_window(period)
    out: list[float | None] = [None] * len(values)
    if len(values) <= period:
        return out
    gains = [max(values[i] - values[i - 1], 0.0) for i in range(1, len(values))]
    losses = [max(values[i - 1] - values[i], 0.0) for i in range(1, len(values))]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period
    out[period] = _rsi_value(avg_gain, avg_loss)
    for i in range(period, len(gains)):
        avg_gain = (avg_gain * (period - 1) + gains[i]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i]) / period
        out[i + 1] = _rsi_value(avg_gain, avg_loss)
    return out


def _rsi_value(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 50.0 if avg_gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)


def latest(series: Sequence[float | None]) -> float | None:
    """The last value of an aligned series (None if it has none yet)."""
    return series[-1] if series else None


def summarise(closes: Sequence[float]) -> dict[str, float]:
    """Indicators stored with the latest bar; those lacking history are left out."""
    figures = {
        "return_1": latest(simple_returns(closes)),
        "sma_20": latest(sma(closes, 20)),
        "ema_20": latest(ema(closes, 20)),
        "rsi_14": latest(rsi(closes, 14)),
    }
    return {name: value for name, value in figures.items() if value is not None}
