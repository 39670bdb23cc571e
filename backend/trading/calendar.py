"""How far behind the exchange calendar a bar is: the "no trading on stale data" limit.

The core needs two answers from a calendar, as `backend.market_calendar` gives them
(docs/CONTRACTS.md section 8): the last session whose close has passed, and a session's
close. `default_calendar()` imports that module only when called, so the core loads
without it, and tests pass a fake.
"""

from __future__ import annotations

import importlib
from datetime import date, datetime, timedelta
from types import ModuleType
from typing import Protocol


class TradingCalendar(Protocol):
    def last_closed_session(self, now: datetime) -> date:
        """The newest session whose close is at or before `now`."""

    def session_close(self, day: date) -> datetime:
        """When session `day` closes (timezone-aware)."""


class _ModuleCalendar:
    """backend.market_calendar's module-level functions, behind the protocol."""

    def __init__(self, module: ModuleType):
        self._module = module

    def last_closed_session(self, now: datetime) -> date:
        value = self._module.last_closed_session(now)
        if isinstance(value, datetime):
            return value.date()
        if not isinstance(value, date):
            raise TypeError(f"last_closed_session returned {type(value).__name__}, not a date")
        return value

    def session_close(self, day: date) -> datetime:
        value = self._module.session_close(day)
        if not isinstance(value, datetime):
            raise TypeError(f"session_close returned {type(value).__name__}, not a datetime")
        return value


def default_calendar() -> TradingCalendar:
    return _ModuleCalendar(importlib.import_module("backend.market_calendar"))


def bars_behind(bar_time: datetime, now: datetime, calendar: TradingCalendar, limit: int) -> int:
    """Closed sessions after the bar's session up to `now`: 0 for the last closed
    session's bar. Counts at most `limit + 1` (enough to tell stale from fresh)."""
    day = bar_time.date()
    session = calendar.last_closed_session(now)
    count = 0
    while session > day and count <= limit:
        count += 1
        # One second before a session's close, the last closed session is the one before.
        session = calendar.last_closed_session(
            calendar.session_close(session) - timedelta(seconds=1)
        )
    return count
