"""Back-adjustment of raw bars for splits and dividends, at read time.

Stored bars are raw (as traded) and never change once final; each carries the split
ratio and cash dividend that take effect at its open (docs/CONTRACTS.md section 8).
A reader that wants a continuous series scales every bar *before* an action:

    split s:     prices / s, volume * s          (a 4:1 split: 200 -> 50, as traded after)
    dividend d:  prices * (1 - d / previous close)  (the CRSP / Yahoo convention)

Factors compound backwards, so the newest bar is always unadjusted and an adjusted
series only changes when a new action arrives: then every earlier value moves by the
same factor, which is why ratios (returns, RSI) never move and levels (SMA, EMA) scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backend.models import Bar


def factors(bars: Sequence[Bar]) -> list[float]:
    """The price factor for each bar (oldest first): the product of every later action's
    factor. Volume uses the split part only, inverted (more shares after a split)."""
    out = [1.0] * len(bars)
    running = 1.0
    for i in range(len(bars) - 1, -1, -1):
        out[i] = running
        bar = bars[i]
        if i > 0:
            previous_close = bars[i - 1].close
            if bar.dividend and previous_close > bar.dividend:
                running *= 1.0 - bar.dividend / previous_close
        running /= bar.split
    return out


def back_adjust(bars: Sequence[Bar]) -> list[Bar]:
    """Adjusted copies of `bars` (which must be one series, oldest first), with the
    actions cleared: the result reads as if no split or dividend had happened."""
    out = []
    running_split = 1.0
    split_factors = [1.0] * len(bars)
    for i in range(len(bars) - 1, -1, -1):
        split_factors[i] = running_split
        running_split *= bars[i].split
    for bar, factor, split_factor in zip(bars, factors(bars), split_factors, strict=True):
        if factor == 1.0 and split_factor == 1.0 and bar.split == 1.0 and not bar.dividend:
            out.append(bar)
            continue
        volume = bar.volume * split_factor
        out.append(
            replace(
                bar,
                open=bar.open * factor,
                high=bar.high * factor,
                low=bar.low * factor,
                close=bar.close * factor,
                volume=round(volume) if isinstance(bar.volume, int) else volume,
                split=1.0,
                dividend=0.0,
            )
        )
    return out
