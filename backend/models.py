"""Market-data models: the validated OHLCV bar, and the tickers, intervals and periods
the fetcher accepts. Pure stdlib, so importing it costs nothing at cold start."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Yahoo's intervals and periods (yfinance `history(interval=..., period=...)`).
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")
PERIODS = ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max")

# Yahoo serves intraday bars only for recent history; asking for more returns an
# empty frame, which we would then report as a failure for every symbol. Rejecting
# the combination up front gives the caller the real reason instead.
_INTRADAY_PERIODS = {
    "1m": ("1d", "5d"),
    "2m": ("1d", "5d", "1mo"),
    "5m": ("1d", "5d", "1mo"),
    "15m": ("1d", "5d", "1mo"),
    "30m": ("1d", "5d", "1mo"),
    "90m": ("1d", "5d", "1mo"),
    "60m": ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y"),
    "1h": ("1d", "5d", "1mo", "3mo", "6mo", "1y", "2y"),
}

# Length of one bar, used by the fixture provider and to tell intraday from daily bars.
# Months are fixed at 30 days: only the fixture relies on that.
INTERVAL_SECONDS = {
    "1m": 60,
    "2m": 120,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "90m": 5400,
    "1h": 3600,
    "1d": 86400,
    "5d": 5 * 86400,
    "1wk": 7 * 86400,
    "1mo": 30 * 86400,
    "3mo": 90 * 86400,
}

# Length of each period, for choosing which bars a run stores and for the fixture.
# "ytd" depends on the date and "max" has no length; both are handled where used.
PERIOD_SECONDS = {
    "1d": 86400,
    "5d": 5 * 86400,
    "1mo": 31 * 86400,
    "3mo": 92 * 86400,
    "6mo": 183 * 86400,
    "1y": 366 * 86400,
    "2y": 731 * 86400,
    "5y": 1827 * 86400,
    "10y": 3653 * 86400,
}

# Letters, digits and the separators Yahoo uses: BRK-B, RDS.A, EURUSD=X, ^GSPC, BTC-USD,
# and up to 20 characters, enough for option contracts like AAPL250117C00150000.
TICKER_RE = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,19}$")
MAX_SYMBOLS = 200


def shown(value: object, limit: int = 40) -> str:
    """repr() of a caller's value for an error message, cut short: an event may carry
    megabytes, and the message goes into the response and a log line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BarError(ValueError):
    """A bar breaks an OHLCV invariant."""


def is_intraday(interval: str) -> bool:
    return INTERVAL_SECONDS[interval] < 86400


def normalise_ticker(raw: object) -> str:
    """Return the canonical (upper-case) ticker, or raise ValueError saying what is wrong."""
    if not isinstance(raw, str):
        raise ValueError(f"ticker must be a string, got {type(raw).__name__}")
    ticker = raw.strip().upper()
    if not TICKER_RE.match(ticker):
        raise ValueError(
            f"malformed ticker {shown(raw)}: use 1-20 letters, digits, '.', '-' or '=' "
            "(optionally starting with '^'), e.g. AAPL, BRK-B, ^GSPC"
        )
    return ticker


def check_interval_period(interval: str, period: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {shown(interval)}: use one of {', '.join(INTERVALS)}")
    if period not in PERIODS:
        raise ValueError(f"unknown period {shown(period)}: use one of {', '.join(PERIODS)}")
    allowed = _INTRADAY_PERIODS.get(interval)
    if allowed is not None and period not in allowed:
        raise ValueError(
            f"period {period!r} is too long for interval {interval!r} "
            f"(Yahoo keeps intraday bars only briefly): use one of {', '.join(allowed)}"
        )


def _price(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise BarError(f"{name} must be a number, got bool")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BarError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise BarError(f"{name} must be positive and finite, got {value!r}")
    return number


def _non_negative(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise BarError(f"{name} must be a number, got bool")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BarError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise BarError(f"{name} must be non-negative and finite, got {value!r}")
    return number


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BarError(f"{name} must be true or false, got {value!r}")
    return value


def _volume(value: object) -> int | float:
    if isinstance(value, bool):
        raise BarError("volume must be a number, got bool")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BarError(f"volume must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise BarError(f"volume must be non-negative and finite, got {value!r}")
    # Share volumes are whole numbers; keeping them ints keeps the JSON stable (1000, not 1000.0).
    return int(number) if number.is_integer() else number


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar. Construct with `Bar.create(...)`, which validates."""

    symbol: str
    interval: str
    timestamp: datetime  # start of the bar, timezone-aware UTC
    open: float
    high: float
    low: float
    close: float
    volume: int | float
    # Corporate actions effective at this bar's open, and whether its session has closed
    # (docs/CONTRACTS.md section 8). Prices above are raw, as traded; readers adjust with
    # backend.adjust.back_adjust.
    split: float = 1.0
    dividend: float = 0.0
    final: bool = True

    @classmethod
    def create(
        cls,
        *,
        symbol: str,
        interval: str,
        timestamp: datetime,
        open: object,  # shadows the builtin on purpose: it is the OHLCV field name
        high: object,
        low: object,
        close: object,
        volume: object,
        split: object = 1.0,
        dividend: object = 0.0,
        final: object = True,
    ) -> Bar:
        if not isinstance(timestamp, datetime):
            raise BarError(f"timestamp must be a datetime, got {type(timestamp).__name__}")
        if timestamp.tzinfo is None or timestamp.utcoffset() != timedelta(0):
            raise BarError(f"timestamp must be timezone-aware UTC, got {timestamp.isoformat()}")
        if interval not in INTERVALS:
            raise BarError(f"unknown interval {interval!r}")
        o, h, lo, c = (
            _price(n, v)
            for n, v in (("open", open), ("high", high), ("low", low), ("close", close))
        )
        when = timestamp.isoformat()
        if h < lo:
            raise BarError(f"high {h} is below low {lo} at {when}")
        # Open and close are trades inside the bar's range; one outside it is a bad
        # print (Yahoo sends a few), and would poison every indicator built on it.
        for name, value in (("open", o), ("close", c)):
            if value > h:
                raise BarError(f"{name} {value} is above high {h} at {when}")
            if value < lo:
                raise BarError(f"{name} {value} is below low {lo} at {when}")
        return cls(
            symbol=symbol,
            interval=interval,
            timestamp=timestamp.astimezone(UTC),
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=_volume(volume),
            split=_price("split", split),
            dividend=_non_negative("dividend", dividend),
            final=_flag("final", final),
        )

    @property
    def iso_time(self) -> str:
        return self.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")

    def to_json_dict(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "timestamp": self.iso_time,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "split": self.split,
            "dividend": self.dividend,
            "final": self.final,
        }

    @classmethod
    def from_json_dict(cls, doc: Mapping[str, object]) -> Bar:
        """The inverse of `to_json_dict`, validating again (a stored line is input too).
        Lines written before the actions existed read as split 1, dividend 0, final."""
        stamp = doc.get("timestamp")
        if not isinstance(stamp, str):
            raise BarError(f"timestamp must be an ISO-8601 string, got {stamp!r}")
        try:
            timestamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            raise BarError(f"timestamp {stamp!r} is not ISO-8601") from None
        symbol, interval = doc.get("symbol"), doc.get("interval")
        if not isinstance(symbol, str) or not isinstance(interval, str):
            raise BarError("symbol and interval must be strings")
        return cls.create(
            symbol=symbol,
            interval=interval,
            timestamp=timestamp,
            open=doc.get("open"),
            high=doc.get("high"),
            low=doc.get("low"),
            close=doc.get("close"),
            volume=doc.get("volume"),
            split=doc.get("split", 1.0),
            dividend=doc.get("dividend", 0.0),
            final=doc.get("final", True),
        )
