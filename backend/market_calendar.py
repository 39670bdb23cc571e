"""The exchange calendar: when the market is open, which session closed last, and so when
a bar is final (docs/CONTRACTS.md section 8, docs/runtime.md "The exchange calendar").

Sessions, holidays, half-days and DST come from `exchange_calendars`, a maintained
library (the one zipline and its successors use). It imports pandas (~0.5 s), so it is
imported on first use, never with the handler; the session table is then copied into
plain sorted lists once per container, and every question after that is a bisect.

If the package was built without the library (the code-only rehearsal artifact), a
weekday stand-in (Mon-Fri 09:30-16:00 America/New_York, no holidays, no half-days) is
used and `source` says so. Its mistakes are on the safe side: it calls a half-day bar
final later than it is, and it lets a scheduled run fetch on a holiday for nothing; it
never calls a bar final before its session has closed.
"""

from __future__ import annotations

import bisect
import functools
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from backend.models import INTERVAL_SECONDS, is_intraday

DEFAULT_EXCHANGE = "XNYS"
# A daily bar is final this long after its session's close: Yahoo's daily bar takes a
# few minutes after the bell to settle on the official closing-auction price.
SETTLE = timedelta(minutes=20)
# An intraday bar is final a minute after its end (the data is delayed by seconds).
INTRADAY_SETTLE = timedelta(minutes=1)
# A scheduled run fetches while the market is open and for this long after a close, so
# a once-a-day schedule after the close (half-days close at 13:00 New York time, up to
# five hours before it) still finds the session. Outside that window it does nothing.
RUN_GRACE = timedelta(hours=6)
# Sessions are loaded from here to a year ahead (the library's default end).
FIRST_DAY = date(1990, 1, 1)
_MONTHS = {"1mo": 1, "3mo": 3}


class CalendarError(ValueError):
    """A question the calendar cannot answer (a day outside its range, not a session)."""


@dataclass(frozen=True)
class Session:
    day: date
    open: datetime  # UTC
    close: datetime  # UTC


class MarketCalendar:
    """One exchange's sessions, oldest first, as plain lists (no pandas after loading)."""

    def __init__(self, *, name: str, tz: tzinfo, sessions: list[Session], source: str):
        if not sessions:
            raise CalendarError(f"{name}: the calendar has no sessions")
        self.name = name
        self.tz = tz
        self.source = source
        self._sessions = sessions
        self._days = [s.day for s in sessions]
        self._opens = [s.open for s in sessions]
        self._closes = [s.close for s in sessions]
        self._by_day = {s.day: s for s in sessions}

    # --- sessions ------------------------------------------------------------------

    @property
    def first_day(self) -> date:
        return self._days[0]

    @property
    def last_day(self) -> date:
        return self._days[-1]

    def is_session(self, day: date) -> bool:
        self._check_range(day)
        return day in self._by_day

    def session_open(self, day: date) -> datetime:
        return self._session(day).open

    def session_close(self, day: date) -> datetime:
        """When `day`'s session closes, in UTC (13:00 New York time on a half-day)."""
        return self._session(day).close

    def sessions_between(self, start: date, end: date) -> list[Session]:
        """Sessions with start <= day <= end, oldest first."""
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return self._sessions[lo:hi]

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    # --- the questions the fetcher asks ---------------------------------------------

    def is_open(self, now: datetime) -> bool:
        i = bisect.bisect_right(self._opens, now) - 1
        return i >= 0 and now < self._closes[i]

    def last_closed_session(self, now: datetime) -> date:
        """The newest session whose close is at or before `now`."""
        i = bisect.bisect_right(self._closes, now) - 1
        if i < 0:
            raise CalendarError(f"{now.isoformat()} is before {self.name}'s first session")
        return self._days[i]

    def next_open(self, now: datetime) -> datetime | None:
        i = bisect.bisect_right(self._opens, now)
        return self._opens[i] if i < len(self._opens) else None

    def run_due(self, now: datetime) -> bool:
        """Whether a scheduled run has anything to fetch: the market is open, or a
        session closed within RUN_GRACE (its final bar may not be stored yet)."""
        if self.is_open(now):
            return True
        try:
            last = self.last_closed_session(now)
        except CalendarError:
            return False
        return now - self.session_close(last) <= RUN_GRACE

    def is_final(self, start: datetime, interval: str, now: datetime) -> bool:
        """Whether the bar of `interval` starting at `start` can no longer change.

        Daily bars are labelled with the session's date at 00:00 UTC (docs/runtime.md),
        so their session is `start.date()`; a day that is no session on this calendar
        (a crypto weekend on XNYS) is final once that day is over in the exchange's zone.
        """
        if is_intraday(interval):
            end = start + timedelta(seconds=INTERVAL_SECONDS[interval])
            i = bisect.bisect_right(self._opens, start) - 1
            if i >= 0 and start < self._closes[i]:
                # The last bar of a session ends at the close (a 90m bar from 15:00
                # ends at 16:00, and at 13:00 on a half-day nothing trades after it).
                end = min(end, self._closes[i])
            return now >= end + INTRADAY_SETTLE
        first = start.date()
        if interval == "1d":
            last = first
        else:
            period_end = _period_end(first, interval)  # exclusive
            sessions = self.sessions_between(first, period_end - timedelta(days=1))
            if not sessions:
                return now >= self._midnight_after(period_end - timedelta(days=1))
            last = sessions[-1].day
        if self.is_session(last):
            return now >= self.session_close(last) + SETTLE
        return now >= self._midnight_after(last)

    # --- helpers ----------------------------------------------------------------------

    def _midnight_after(self, day: date) -> datetime:
        local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)
        return local.astimezone(UTC)

    def _check_range(self, day: date) -> None:
        if not self.first_day <= day <= self.last_day:
            raise CalendarError(
                f"{day} is outside the {self.name} calendar "
                f"({self.first_day} to {self.last_day}, {self.source})"
            )

    def _session(self, day: date) -> Session:
        self._check_range(day)
        session = self._by_day.get(day)
        if session is None:
            raise CalendarError(f"{day} is not a {self.name} session (weekend or holiday)")
        return session


def _period_end(first: date, interval: str) -> date:
    months = _MONTHS.get(interval)
    if months is None:
        return first + timedelta(seconds=INTERVAL_SECONDS[interval])
    # Bars of a month or a quarter start on the 1st (Yahoo's convention); the stdlib's
    # `calendar` would do this too, but it imports `locale` into the handler's import.
    month = first.month - 1 + months
    year, month = first.year + month // 12, month % 12 + 1
    following = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(first.day, (following - timedelta(days=1)).day))


def _from_exchange_calendars(name: str) -> MarketCalendar:
    import exchange_calendars

    with warnings.catch_warnings():
        # Its deprecation notices about its own use of pandas are not ours to act on.
        warnings.simplefilter("ignore")
        library = exchange_calendars.get_calendar(name, start=FIRST_DAY.isoformat())
        sessions = _sessions_of(library)
    version = getattr(exchange_calendars, "__version__", "?")
    return MarketCalendar(
        name=name, tz=library.tz, sessions=sessions, source=f"exchange_calendars {version}"
    )


def _sessions_of(library: Any) -> list[Session]:
    return [
        Session(
            day=day.date(),
            open=opened.to_pydatetime().astimezone(UTC),
            close=closed.to_pydatetime().astimezone(UTC),
        )
        for day, opened, closed in zip(library.sessions, library.opens, library.closes, strict=True)
    ]


def weekday_calendar(name: str, today: date) -> MarketCalendar:
    """The stand-in used when exchange_calendars is missing (see the module docstring)."""
    if name != DEFAULT_EXCHANGE:
        raise CalendarError(f"exchange_calendars is not installed, and {name} needs it")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz = ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:
        raise CalendarError(
            "exchange_calendars is not installed and no time-zone database was found: "
            "add exchange_calendars to the Lambda requirements"
        ) from None
    sessions = []
    day = FIRST_DAY
    last = today + timedelta(days=366)
    while day <= last:
        if day.weekday() < 5:
            opened = datetime.combine(day, time(9, 30), tzinfo=tz).astimezone(UTC)
            closed = datetime.combine(day, time(16, 0), tzinfo=tz).astimezone(UTC)
            sessions.append(Session(day=day, open=opened, close=closed))
        day += timedelta(days=1)
    return MarketCalendar(
        name=name,
        tz=tz,
        sessions=sessions,
        source="weekday stand-in (exchange_calendars not installed: no holidays or half-days)",
    )


_lock = threading.Lock()


@functools.cache
def _load(name: str) -> MarketCalendar:
    try:
        import exchange_calendars  # noqa: F401 - only asking whether it is there
    except ImportError:
        return weekday_calendar(name, datetime.now(UTC).date())
    return _from_exchange_calendars(name)


def get_calendar(name: str = DEFAULT_EXCHANGE) -> MarketCalendar:
    """The calendar, loaded once per container (fetch threads share it)."""
    with _lock:  # functools.cache does not stop two threads building it at once
        return _load(name)


# The questions of docs/CONTRACTS.md section 8, on the default exchange's calendar.


def is_open(now: datetime) -> bool:
    return get_calendar().is_open(now)


def last_closed_session(now: datetime) -> date:
    return get_calendar().last_closed_session(now)


def session_close(day: date) -> datetime:
    return get_calendar().session_close(day)
