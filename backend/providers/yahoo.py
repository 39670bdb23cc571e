"""Yahoo Finance bars through yfinance (MARKET_DATA_PROVIDER=yfinance, the default).

yfinance (and the pandas/numpy it pulls in, ~0.5 s of imports) is imported inside
`fetch`, never at module level, so cold starts of test mode and of the fixture
provider do not pay for it.

Conversion contract (`frame_to_bars`), what `Ticker.history()` returns:
  - `frame.empty` is true when Yahoo sent nothing (also what yfinance returns offline);
  - `frame.index` holds the bar start times, timezone-aware in the exchange's zone;
  - columns Open, High, Low, Close, Volume (flat, one ticker), indexable by name.
"""

from __future__ import annotations

import math
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from backend import jsonlog
from backend.models import Bar, BarError, is_intraday
from backend.providers import ProviderError

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
_setup_lock = threading.Lock()
_setup_done = False


def _yfinance():
    global _setup_done  # noqa: PLW0603 - one-time, per-container library setup
    import yfinance

    with _setup_lock:
        if not _setup_done:
            # yfinance caches exchange time zones on disk under the home directory,
            # which is read-only in Lambda; /tmp is the one writable place.
            cache = Path(tempfile.gettempdir()) / "py-yfinance"
            if hasattr(yfinance, "set_tz_cache_location"):
                yfinance.set_tz_cache_location(str(cache))
            # Its warnings ("Failed to get ticker ...") become JSON lines like ours; the
            # failure itself reaches the response through the exception.
            jsonlog.adopt("yfinance")
            _setup_done = True
    return yfinance


class YFinanceProvider:
    name = "yfinance"

    def __init__(self, *, timeout: float = 10.0):
        self._timeout = timeout

    def fetch(self, symbol: str, interval: str, period: str) -> list[Bar]:
        yfinance = _yfinance()
        try:
            frame = yfinance.Ticker(symbol).history(
                period=period,
                interval=interval,
                auto_adjust=True,  # split/dividend-adjusted OHLC, no "Adj Close" column
                actions=False,
                timeout=self._timeout,
                raise_errors=True,  # an exception says why; otherwise it only prints
            )
        except Exception as err:  # yfinance raises many unrelated types
            raise ProviderError(f"yfinance: {type(err).__name__}: {err}") from None
        return frame_to_bars(frame, symbol=symbol, interval=interval)


def _bar_time(raw: object, interval: str) -> datetime:
    stamp = raw.to_pydatetime() if hasattr(raw, "to_pydatetime") else raw
    if not isinstance(stamp, datetime):
        raise BarError(f"index value {raw!r} is not a timestamp")
    if not is_intraday(interval):
        # A daily (or longer) bar is a trading session: label it with the exchange's
        # local date at 00:00 UTC. Converting the local midnight to UTC instead would
        # put Tokyo's Tuesday session on Monday.
        return datetime(stamp.year, stamp.month, stamp.day, tzinfo=UTC)
    if stamp.tzinfo is None:
        raise BarError(f"intraday timestamp {stamp.isoformat()} has no time zone")
    return stamp.astimezone(UTC)


def frame_to_bars(frame: object, *, symbol: str, interval: str) -> list[Bar]:
    """Convert a yfinance history frame to validated bars, oldest first.

    Raises ProviderError for an empty or malformed frame and BarError for a bad row.
    Rows whose four prices are all NaN are Yahoo's placeholders for "no trade" and are
    skipped; any other NaN fails the bar's validation.
    """
    if frame is None or getattr(frame, "empty", True):
        raise ProviderError("yfinance returned no data (unknown ticker, or Yahoo unreachable)")
    columns = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ProviderError(f"yfinance frame lacks columns {missing}; got {columns}")
    values = {name: list(frame[name]) for name in COLUMNS}
    # Keyed by time: two rows for one session (Yahoo sometimes sends the live row twice)
    # would otherwise become two writes of one DynamoDB key, which a batch rejects.
    bars: dict[datetime, Bar] = {}
    for i, raw_time in enumerate(frame.index):
        o, h, lo, c, v = (values[name][i] for name in COLUMNS)
        if all(_is_nan(x) for x in (o, h, lo, c)):
            continue
        bar = Bar.create(
            symbol=symbol,
            interval=interval,
            timestamp=_bar_time(raw_time, interval),
            open=o,
            high=h,
            low=lo,
            close=c,
            volume=v,
        )
        bars[bar.timestamp] = bar
    return sorted(bars.values(), key=lambda b: b.timestamp)


def _is_nan(value: object) -> bool:
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
