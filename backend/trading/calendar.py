"""How far behind the exchange calendar a bar is: the "no trading on stale data" limit.

The core needs two answers from a calendar, the ones `backend.market_calendar` gives
(docs/CONTRACTS.md section 8): the last session whose close has passed, and a session's
close. `backend.market_calendar.MarketCalendar` has both as methods, so it *is* a
`TradingCalendar`; `default_calendar()` imports it only when called (exchange_calendars
loads pandas), so the core loads without it, and tests pass a fake.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Protocol


class TradingCalendar(Protocol):
    def last_closed_session(self, now: datetime) -> date:
        """The newest session whose close is at or before `now`."""

    def session_close(self, day: date) -> datetime:
        """When session `day` closes (timezone-aware)."""


def default_calendar() -> TradingCalendar:
    """The stack's exchange calendar (XNYS): the one the fetcher marks bars final by."""
    from backend.market_calendar import get_calendar

    return get_calendar()


def previous_session(calendar: TradingCalendar, day: date) -> date:
    """The session before session `day`: the last one closed a second before its close."""
    return calendar.last_closed_session(calendar.session_close(day) - timedelta(seconds=1))


def bars_behind(bar_time: datetime, now: datetime, calendar: TradingCalendar, limit: int) -> int:
    """Closed sessions after the bar's session up to `now`: 0 for the last closed
    session's bar. Counts at most `limit + 1` (enough to tell stale from fresh)."""
    day = bar_time.date()
    session = calendar.last_closed_session(now)
    count = 0
    while session > day and count <= limit:
        count += 1
        session = previous_session(calendar, session)
    return count
