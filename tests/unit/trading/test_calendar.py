"""The staleness count on the real exchange calendar (backend.market_calendar, which
exchange_calendars backs): holidays, weekends and half-days are not sessions behind."""

from datetime import UTC, date, datetime

import pytest

from backend.market_calendar import MarketCalendar
from backend.trading.calendar import bars_behind, default_calendar, previous_session


@pytest.fixture(scope="module")
def calendar():
    return default_calendar()


def bar(day: date) -> datetime:
    # A daily bar's time is its session's date at 00:00 UTC (docs/CONTRACTS.md section 8).
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_the_default_is_the_fetchers_own_calendar(calendar):
    assert isinstance(calendar, MarketCalendar)
    assert calendar.name == "XNYS" and calendar.source.startswith("exchange_calendars")


@pytest.mark.parametrize(
    ("bar_day", "now", "behind"),
    [
        # Thursday's bar on the Monday evening after Good Friday: only Monday closed since.
        (date(2024, 3, 28), datetime(2024, 4, 1, 22, 0, tzinfo=UTC), 1),
        # Friday's bar on Saturday and on Monday morning: nothing closed since.
        (date(2024, 4, 5), datetime(2024, 4, 6, 12, 0, tzinfo=UTC), 0),
        (date(2024, 4, 5), datetime(2024, 4, 8, 13, 0, tzinfo=UTC), 0),
        # The day before Thanksgiving's bar, the half-day Friday at 18:30 UTC (13:00 New
        # York time closed it): one session behind, though a full day would still be open.
        (date(2023, 11, 22), datetime(2023, 11, 24, 18, 30, tzinfo=UTC), 1),
        # Across the summer time change (10 March 2024): Friday's bar on Tuesday evening.
        (date(2024, 3, 8), datetime(2024, 3, 12, 21, 0, tzinfo=UTC), 2),
    ],
)
def test_sessions_behind_follow_holidays_weekends_half_days_and_dst(calendar, bar_day, now, behind):
    assert bars_behind(bar(bar_day), now, calendar, limit=10) == behind


def test_the_session_before_skips_weekends_and_holidays(calendar):
    assert previous_session(calendar, date(2024, 4, 1)) == date(2024, 3, 28)  # Good Friday
    assert previous_session(calendar, date(2024, 5, 28)) == date(2024, 5, 24)  # Memorial Day
