"""Deterministic offline market data, for rehearsals and tests (MARKET_DATA_PROVIDER=fixture).

Each bar is a pure function of (symbol, bar start time): the same bar always has the
same prices, whenever it is fetched, so re-runs produce byte-identical objects.
The calendar is simplified: bars every `interval` around the clock on every day, and
months of 30 days. Stdlib only, so it runs from the bare package with no dependencies.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, datetime

from backend.models import INTERVAL_SECONDS, Bar

_DAY = 86400
_PERIOD_SECONDS = {
    "1d": _DAY,
    "5d": 5 * _DAY,
    "1mo": 30 * _DAY,
    "3mo": 90 * _DAY,
    "6mo": 180 * _DAY,
    "1y": 365 * _DAY,
    "2y": 730 * _DAY,
    "5y": 1826 * _DAY,
    "10y": 3652 * _DAY,
    "max": 7305 * _DAY,  # 20 years
}


def _unit(symbol: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) from a symbol and a salt."""
    digest = hashlib.sha256(f"{symbol}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _level(symbol: str, base: float, phase: float, epoch: int) -> float:
    # Two slow waves make a price path with trends and reversals, always positive
    # (the factor stays within 1 +/- 0.11), so indicators have something to measure.
    days = epoch / _DAY
    wave = 0.08 * math.sin(2 * math.pi * days / 37.0 + phase) + 0.03 * math.sin(
        2 * math.pi * days / 5.3 + 2 * phase
    )
    return base * (1.0 + wave)


class FixtureProvider:
    name = "fixture"

    def __init__(self, *, clock: Callable[[], datetime] | None = None):
        self._clock = clock or (lambda: datetime.now(UTC))

    def fetch(self, symbol: str, interval: str, period: str) -> list[Bar]:
        step = INTERVAL_SECONDS[interval]
        now = int(self._clock().timestamp())
        last = now - now % step  # start of the current bar, as Yahoo includes it too
        if period == "ytd":
            span = now - int(datetime(self._clock().year, 1, 1, tzinfo=UTC).timestamp())
        else:
            span = _PERIOD_SECONDS[period]
        count = max(1, span // step)
        base = 20.0 + 480.0 * _unit(symbol, "base")
        phase = 2 * math.pi * _unit(symbol, "phase")
        bars = []
        for start in range(last - (count - 1) * step, last + 1, step):
            open_ = _level(symbol, base, phase, start)
            close = _level(symbol, base, phase, start + step)
            spread = 0.01 * _unit(symbol, f"spread|{start}")
            bars.append(
                Bar.create(
                    symbol=symbol,
                    interval=interval,
                    timestamp=datetime.fromtimestamp(start, UTC),
                    open=round(open_, 4),
                    high=round(max(open_, close) * (1 + spread), 4),
                    low=round(min(open_, close) * (1 - spread), 4),
                    close=round(close, 4),
                    volume=100_000 + int(900_000 * _unit(symbol, f"volume|{start}")),
                )
            )
        return bars
