"""Yahoo Finance bars through yfinance (MARKET_DATA_PROVIDER=yfinance, the default).

yfinance (and the pandas/numpy it pulls in, ~0.5 s of imports) is imported inside
`fetch`, never at module level, so cold starts of test mode and of the fixture
provider do not pay for it.

Raw prices. `history(auto_adjust=False, actions=True)` does not give raw prices: yfinance
passes on Yahoo's chart data as it comes (`utils.parse_quotes`: the `quote` block as
Open/High/Low/Close/Volume, the `adjclose` block as "Adj Close"), and Yahoo serves that
data already split-adjusted (yfinance's own price repair, `_fix_bad_stock_splits`, exists
for the cases where Yahoo forgot to). Only dividends are left out of Close. So each row
is un-adjusted here: prices and dividends times the product of every later split in the
frame, volume divided by it. The frame always reaches the present, so every split after
a row is in it. Prices so scaled are rounded to 4 decimals (Yahoo's precision).

Conversion contract (`frame_to_batch`), what `Ticker.history()` returns:
  - `frame.empty` is true when Yahoo sent nothing (also what yfinance returns offline);
  - `frame.index` holds the bar start times, timezone-aware in the exchange's zone;
  - columns Open, High, Low, Close, Volume, and (actions=True) Dividends and Stock
    Splits (0 where there is none), indexable by name.
"""

from __future__ import annotations

import math
import tempfile
import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from backend import jsonlog
from backend.models import is_intraday
from backend.providers import Batch, ProviderError, Row, build_batch

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
ACTION_COLUMNS = ("Dividends", "Stock Splits")
PRICE_DECIMALS = 4
_setup_lock = threading.Lock()
# The yfinance modules already set up: the setup belongs to that import (once per
# container), and a module imported afresh is set up afresh. Weak, so nothing of
# another library's namespace is touched or kept alive.
_configured: weakref.WeakSet[ModuleType] = weakref.WeakSet()


def _yfinance() -> Any:
    import yfinance

    with _setup_lock:
        if yfinance not in _configured:
            # yfinance caches exchange time zones on disk under the home directory,
            # which is read-only in Lambda; /tmp is the one writable place.
            cache = Path(tempfile.gettempdir()) / "py-yfinance"
            if hasattr(yfinance, "set_tz_cache_location"):
                yfinance.set_tz_cache_location(str(cache))
            # Its warnings ("Failed to get ticker ...") become JSON lines like ours; the
            # failure itself reaches the response through the exception.
            jsonlog.adopt("yfinance")
            _configured.add(yfinance)
    return yfinance


class YFinanceProvider:
    name = "yfinance"

    def __init__(self, *, timeout: float = 10.0):
        self._timeout = timeout

    def fetch(self, symbol: str, interval: str, period: str) -> Batch:
        yfinance = _yfinance()
        try:
            frame = yfinance.Ticker(symbol).history(
                period=period,
                interval=interval,
                auto_adjust=False,  # no dividend adjustment (splits: see the docstring)
                actions=True,  # the Dividends and Stock Splits columns
                timeout=self._timeout,
                raise_errors=True,  # an exception says why; otherwise it only prints
            )
        except Exception as err:  # yfinance raises many unrelated types
            raise ProviderError(f"yfinance: {type(err).__name__}: {err}") from None
        return frame_to_batch(frame, symbol=symbol, interval=interval)


def _bar_time(raw: object, interval: str) -> datetime:
    stamp = raw.to_pydatetime() if hasattr(raw, "to_pydatetime") else raw
    if not isinstance(stamp, datetime):
        raise ProviderError(f"yfinance index value {raw!r} is not a timestamp")
    if not is_intraday(interval):
        # A daily (or longer) bar is a trading session: label it with the exchange's
        # local date at 00:00 UTC. Converting the local midnight to UTC instead would
        # put Tokyo's Tuesday session on Monday.
        return datetime(stamp.year, stamp.month, stamp.day, tzinfo=UTC)
    # A naive intraday time is passed on as it is, and the row is rejected for it.
    return stamp.astimezone(UTC) if stamp.tzinfo is not None else stamp


def frame_to_batch(frame: Any, *, symbol: str, interval: str) -> Batch:
    """Convert a yfinance history frame to raw bars, oldest first, and rejected rows.

    Raises ProviderError for an empty or malformed frame. Rows whose four prices are
    all NaN are Yahoo's placeholders for "no trade" and are skipped, their actions moved
    to the next row; any other bad row is rejected with its reason.
    """
    if frame is None or getattr(frame, "empty", True):
        raise ProviderError("yfinance returned no data (unknown ticker, or Yahoo unreachable)")
    columns = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ProviderError(f"yfinance frame lacks columns {missing}; got {columns}")
    values = {name: list(frame[name]) for name in COLUMNS}
    times = [_bar_time(raw, interval) for raw in frame.index]
    count = len(times)
    dividends = list(frame["Dividends"]) if "Dividends" in columns else [0.0] * count
    splits = [_ratio(s) for s in frame["Stock Splits"]] if "Stock Splits" in columns else []
    splits = splits or [1.0] * count
    order = sorted(range(count), key=lambda i: times[i])
    # later[i]: the product of the splits after row i, which Yahoo already divided out.
    later = [1.0] * count
    running = 1.0
    for i in reversed(order):
        later[i] = running
        running *= splits[i]
    rows: list[Row] = []
    carried_split, carried_dividend = 1.0, 0.0
    for i in order:
        o, h, lo, c, v = (values[name][i] for name in COLUMNS)
        split = splits[i] * carried_split
        dividend = _amount(dividends[i]) * later[i] + carried_dividend
        if all(_is_nan(x) for x in (o, h, lo, c)):
            carried_split, carried_dividend = split, dividend
            continue
        carried_split, carried_dividend = 1.0, 0.0
        factor = later[i]
        rows.append(
            Row(
                timestamp=times[i],
                open=_unadjust(o, factor),
                high=_unadjust(h, factor),
                low=_unadjust(lo, factor),
                close=_unadjust(c, factor),
                volume=_unadjust_volume(v, factor),
                split=split,
                dividend=round(dividend, 6),
            )
        )
    return build_batch(symbol, interval, rows)


def _ratio(value: object) -> float:
    # Stock Splits is 0 where there is no split (and NaN after some merges).
    number = _float(value)
    return number if number is not None and number > 0 else 1.0


def _amount(value: object) -> float:
    number = _float(value)
    return number if number is not None and number > 0 else 0.0


def _float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _unadjust(value: object, factor: float) -> object:
    if factor == 1.0:
        return value  # untouched: validation reports what Yahoo sent
    number = _float(value)
    return value if number is None else round(number * factor, PRICE_DECIMALS)


def _unadjust_volume(value: object, factor: float) -> object:
    if factor == 1.0:
        return value
    number = _float(value)
    return value if number is None else round(number / factor)


def _is_nan(value: object) -> bool:
    try:
        return math.isnan(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
