"""Deterministic offline market data, for rehearsals and tests (MARKET_DATA_PROVIDER=fixture).

Bars follow the exchange calendar (backend.market_calendar): one daily bar per session,
intraday bars from each session's open to its close, half-days included. A closed bar
is a pure function of (symbol, bar start time), so re-runs write byte-identical
objects; the bar of the session in progress is built up to the clock's time, as Yahoo
serves it, and is the one bar that changes until its session closes.

Besides moving, the fixture's market does what a real one does to a data pipeline
(a `Scenario`; the default one is `REGULAR`):
  - splits: each symbol splits 2:1 and, three years later, 1:2 again, on its own dates
    (raw prices halve, then double; the adjusted series is smooth);
  - dividends: each symbol goes ex on the first session on or after the 15th of
    February, May, August and November, paying 0.4% of the previous close (the raw
    price is not marked down by it: the fixture is not that realistic);
  - bad rows: about one session in 250 (one bar in 2,000 intraday) comes out broken:
    a close above the high, a zero open, a NaN low or a negative volume.
Tests name their own (`Scenario(regular=False, splits={"AAPL": {date(...): 4.0}})`).
Multi-day intervals (5d, 1wk, 1mo, 3mo) are simpler: one bar every interval around the
clock, months of 30 days, no actions. Standard library plus the calendar.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from backend.market_calendar import MarketCalendar, Session, get_calendar
from backend.models import INTERVAL_SECONDS, PERIOD_SECONDS, is_intraday
from backend.providers import Batch, Row, build_batch

_DAY = 86400
MAX_YEARS = 20  # what "max" means here
SPLIT_EPOCH = date(2000, 1, 3)
SPLIT_EVERY = timedelta(days=3 * 365)
DIVIDEND_MONTHS = (2, 5, 8, 11)
DIVIDEND_DAY = 15
DIVIDEND_YIELD = 0.004
BAD_ROW_RATE = {"daily": 1 / 250, "intraday": 1 / 2000}
BAD_KINDS = ("close above high", "zero open", "NaN low", "negative volume")
_SESSIONS_BY_COUNT = {"1d": 1, "5d": 5}  # Yahoo counts these periods in sessions


@dataclass(frozen=True)
class Scenario:
    """What the fixture's market does besides moving. Dates are session dates; a bad
    row given as a datetime is the intraday bar starting then."""

    splits: Mapping[str, Mapping[date, float]] = field(default_factory=dict)
    dividends: Mapping[str, Mapping[date, float]] = field(default_factory=dict)
    bad_rows: Mapping[str, Collection[date | datetime]] = field(default_factory=dict)
    regular: bool = True  # the built-in schedule of splits, dividends and bad rows
    unfinished: bool = True  # serve the bar of the session in progress, as Yahoo does


REGULAR = Scenario()
PLAIN = Scenario(regular=False)  # prices only: no actions, no bad rows


def _unit(symbol: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) from a symbol and a salt."""
    digest = hashlib.sha256(f"{symbol}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _level(symbol: str, moment: datetime) -> float:
    # Two slow waves make a price path with trends and reversals, always positive
    # (the factor stays within 1 +/- 0.11), so indicators have something to measure.
    base = 20.0 + 480.0 * _unit(symbol, "base")
    phase = 2 * math.pi * _unit(symbol, "phase")
    days = moment.timestamp() / _DAY
    wave = 0.08 * math.sin(2 * math.pi * days / 37.0 + phase) + 0.03 * math.sin(
        2 * math.pi * days / 5.3 + 2 * phase
    )
    return base * (1.0 + wave)


class FixtureProvider:
    name = "fixture"

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        scenario: Scenario = REGULAR,
        calendar: MarketCalendar | None = None,
    ):
        self._clock = clock or (lambda: datetime.now(UTC))
        self._scenario = scenario
        self._calendar = calendar

    @property
    def calendar(self) -> MarketCalendar:
        if self._calendar is None:
            self._calendar = get_calendar()
        return self._calendar

    def fetch(self, symbol: str, interval: str, period: str) -> Batch:
        now = self._clock()
        if interval == "1d" or is_intraday(interval):
            sessions = self._sessions(period, now)
            rows = (
                self._daily_rows(symbol, sessions, now)
                if interval == "1d"
                else self._intraday_rows(symbol, interval, sessions, now)
            )
        else:
            rows = self._multi_day_rows(symbol, interval, period, now)
        return build_batch(symbol, interval, rows)

    # --- which sessions a period covers ----------------------------------------------

    def _sessions(self, period: str, now: datetime) -> list[tuple[Session | None, Session]]:
        """(previous session, session) pairs for the period, oldest first."""
        cal = self.calendar
        today = cal.local_date(now)
        if period in _SESSIONS_BY_COUNT:
            first = today - timedelta(days=10 * _SESSIONS_BY_COUNT[period])
        elif period == "ytd":
            first = date(today.year, 1, 1)
        elif period == "max":
            first = today - timedelta(days=365 * MAX_YEARS + 5)
        else:
            first = today - timedelta(seconds=PERIOD_SECONDS[period]) + timedelta(days=1)
        first = max(first, cal.first_day + timedelta(days=10))
        # Ten days before, to know each first session's predecessor (actions need it).
        found = cal.sessions_between(first - timedelta(days=10), today)
        started = [s for s in found if s.open <= now]
        if not self._scenario.unfinished:
            started = [s for s in started if s.close <= now]
        pairs = [
            (started[i - 1] if i else None, s) for i, s in enumerate(started) if s.day >= first
        ]
        count = _SESSIONS_BY_COUNT.get(period)
        return pairs[-count:] if count else pairs

    # --- corporate actions and bad rows ------------------------------------------------

    def _split_level(self, symbol: str, day: date) -> float:
        """The product of every split up to `day`: raw price = level / this."""
        level = 1.0
        for when, ratio in self._scenario.splits.get(symbol, {}).items():
            if when <= day:
                level *= ratio
        if self._scenario.regular and day >= SPLIT_EPOCH:
            offset = timedelta(days=int(_unit(symbol, "split") * SPLIT_EVERY.days))
            first = SPLIT_EPOCH + offset
            if day >= first:
                count = (day - first) // SPLIT_EVERY + 1
                level *= 2.0 if count % 2 else 1.0  # 2:1, then 1:2 three years later
        return level

    def _dividend(self, symbol: str, previous: Session | None, session: Session) -> float:
        if previous is None:
            return 0.0
        listed = self._scenario.dividends.get(symbol, {})
        amount = sum(v for d, v in listed.items() if previous.day < d <= session.day)
        if self._scenario.regular:
            for year in {previous.day.year, session.day.year}:
                for month in DIVIDEND_MONTHS:
                    if previous.day < date(year, month, DIVIDEND_DAY) <= session.day:
                        close = _level(symbol, previous.close) / self._split_level(
                            symbol, previous.day
                        )
                        amount += round(DIVIDEND_YIELD * close, 2)
        return round(amount, 6)

    def _split(self, symbol: str, previous: Session | None, session: Session) -> float:
        if previous is None:
            return 1.0
        return self._split_level(symbol, session.day) / self._split_level(symbol, previous.day)

    def _bad(self, symbol: str, key: date | datetime, salt: str, rate: float) -> str | None:
        listed = self._scenario.bad_rows.get(symbol, ())
        if key in listed or (self._scenario.regular and _unit(symbol, f"bad|{salt}") < rate):
            return BAD_KINDS[int(_unit(symbol, f"bad-kind|{salt}") * len(BAD_KINDS))]
        return None

    # --- rows ----------------------------------------------------------------------------

    def _row(
        self,
        symbol: str,
        start: datetime,
        last: datetime,
        *,
        first: datetime | None = None,  # where the price path starts: the bar's start
        divisor: float,
        volume: float,
        salt: str,
        bad: str | None,
        split: float = 1.0,
        dividend: float = 0.0,
    ) -> Row:
        open_ = _level(symbol, first or start) / divisor
        close = _level(symbol, last) / divisor
        spread = 0.01 * _unit(symbol, f"spread|{salt}")
        high = round(max(open_, close) * (1 + spread), 4)
        values: dict[str, object] = {
            "open": round(open_, 4),
            "high": high,
            "low": round(min(open_, close) * (1 - spread), 4),
            "close": round(close, 4),
            "volume": int(volume * divisor),
        }
        if bad == "close above high":
            values["close"] = round(high * 1.02, 4)
        elif bad == "zero open":
            values["open"] = 0
        elif bad == "NaN low":
            values["low"] = float("nan")
        elif bad == "negative volume":
            values["volume"] = -1
        return Row(
            timestamp=start,
            open=values["open"],
            high=values["high"],
            low=values["low"],
            close=values["close"],
            volume=values["volume"],
            split=split,
            dividend=dividend,
        )

    def _daily_rows(
        self, symbol: str, sessions: list[tuple[Session | None, Session]], now: datetime
    ) -> list[Row]:
        rows = []
        for previous, session in sessions:
            day = session.day
            end = min(session.close, now)
            elapsed = (end - session.open) / (session.close - session.open)
            rows.append(
                self._row(
                    symbol,
                    datetime(day.year, day.month, day.day, tzinfo=UTC),
                    end,
                    first=session.open,  # a daily bar is stamped midnight, priced from the open
                    divisor=self._split_level(symbol, day),
                    volume=(100_000 + int(900_000 * _unit(symbol, f"volume|{day}"))) * elapsed,
                    salt=str(day),
                    bad=self._bad(symbol, day, str(day), BAD_ROW_RATE["daily"]),
                    split=self._split(symbol, previous, session),
                    dividend=self._dividend(symbol, previous, session),
                )
            )
        return rows

    def _intraday_rows(
        self,
        symbol: str,
        interval: str,
        sessions: list[tuple[Session | None, Session]],
        now: datetime,
    ) -> list[Row]:
        step = timedelta(seconds=INTERVAL_SECONDS[interval])
        rows = []
        for previous, session in sessions:
            divisor = self._split_level(symbol, session.day)
            start = session.open
            while start < session.close and start <= now:
                end = min(start + step, session.close)
                if not self._scenario.unfinished and end > now:
                    break
                salt = start.strftime("%Y-%m-%dT%H:%M")
                opening = start == session.open
                rows.append(
                    self._row(
                        symbol,
                        start,
                        min(end, now),
                        divisor=divisor,
                        volume=1_000 + int(9_000 * _unit(symbol, f"volume|{salt}")),
                        salt=salt,
                        bad=self._bad(symbol, start, salt, BAD_ROW_RATE["intraday"]),
                        split=self._split(symbol, previous, session) if opening else 1.0,
                        dividend=self._dividend(symbol, previous, session) if opening else 0.0,
                    )
                )
                start += step
        return rows

    def _multi_day_rows(self, symbol: str, interval: str, period: str, now: datetime) -> list[Row]:
        step = INTERVAL_SECONDS[interval]
        stamp = int(now.timestamp())
        last = stamp - stamp % step
        if period == "ytd":
            span = stamp - int(datetime(now.year, 1, 1, tzinfo=UTC).timestamp())
        elif period == "max":
            span = 365 * MAX_YEARS * _DAY
        else:
            span = PERIOD_SECONDS[period]
        count = max(1, span // step)
        rows = []
        for begin in range(last - (count - 1) * step, last + 1, step):
            start = datetime.fromtimestamp(begin, UTC)
            end = datetime.fromtimestamp(begin + step, UTC)
            rows.append(
                self._row(
                    symbol,
                    start,
                    min(end, now),
                    divisor=1.0,
                    volume=100_000 + int(900_000 * _unit(symbol, f"volume|{begin}")),
                    salt=str(begin),
                    bad=None,
                )
            )
        return rows
