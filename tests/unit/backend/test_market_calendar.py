"""The exchange calendar: holidays, half-days and DST from exchange_calendars, and the
finality and run-gate rules built on them (docs/runtime.md "The exchange calendar")."""

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from backend import market_calendar
from backend.market_calendar import (
    RUN_GRACE,
    SETTLE,
    CalendarError,
    get_calendar,
    weekday_calendar,
)

ROOT = Path(__file__).resolve().parents[3]


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def xnys():
    return get_calendar()


def test_the_library_backs_the_calendar(xnys):
    assert xnys.name == "XNYS"
    assert xnys.source.startswith("exchange_calendars ")
    assert get_calendar() is xnys  # loaded once per container


def test_the_contract_functions_ask_the_default_exchange():
    # docs/CONTRACTS.md section 8: what the strategy service and the backtester call.
    assert market_calendar.is_open(utc(2024, 3, 15, 14, 30)) is True
    assert market_calendar.last_closed_session(utc(2024, 3, 16)) == date(2024, 3, 15)
    assert market_calendar.session_close(date(2024, 11, 29)) == utc(2024, 11, 29, 18, 0)


@pytest.mark.parametrize(
    ("day", "session"),
    [
        (date(2024, 12, 25), False),  # Christmas
        (date(2024, 7, 4), False),  # Independence Day
        (date(2024, 3, 29), False),  # Good Friday: no federal holiday, but NYSE closes
        (date(2025, 1, 9), False),  # national day of mourning (President Carter)
        (date(2024, 3, 16), False),  # a Saturday
        (date(2024, 3, 15), True),
        (date(2024, 7, 3), True),  # a half-day is a session
    ],
)
def test_holidays_and_weekends_are_not_sessions(xnys, day, session):
    assert xnys.is_session(day) is session


def test_half_days_close_at_13_new_york_time(xnys):
    assert xnys.session_close(date(2024, 7, 3)) == utc(2024, 7, 3, 17, 0)  # EDT
    assert xnys.session_close(date(2024, 11, 29)) == utc(2024, 11, 29, 18, 0)  # EST
    assert xnys.is_open(utc(2024, 7, 3, 16, 59)) is True
    assert xnys.is_open(utc(2024, 7, 3, 17, 0)) is False


def test_the_close_follows_daylight_saving_time(xnys):
    # The US moved its clocks on Sunday 2024-03-10: 16:00 New York is 21:00 UTC before, 20:00 after.
    assert xnys.session_close(date(2024, 3, 8)) == utc(2024, 3, 8, 21, 0)
    assert xnys.session_close(date(2024, 3, 11)) == utc(2024, 3, 11, 20, 0)
    assert xnys.session_open(date(2024, 3, 11)) == utc(2024, 3, 11, 13, 30)
    # The same UTC minute is trading time in March and after the close in February.
    assert xnys.is_open(utc(2024, 3, 11, 20, 30)) is False
    assert xnys.is_open(utc(2024, 2, 12, 20, 30)) is True


def test_last_closed_session_and_next_open(xnys):
    # During Friday's session, the last closed one is Thursday's; after the bell, Friday's.
    assert xnys.last_closed_session(utc(2024, 3, 15, 14, 30)) == date(2024, 3, 14)
    assert xnys.last_closed_session(utc(2024, 3, 15, 20, 0)) == date(2024, 3, 15)
    # Over Christmas: the half-day of the 24th, and the next open on the 26th.
    assert xnys.last_closed_session(utc(2024, 12, 25, 15)) == date(2024, 12, 24)
    assert xnys.next_open(utc(2024, 12, 24, 20)) == utc(2024, 12, 26, 14, 30)


def test_session_questions_name_the_day_when_they_cannot_answer(xnys):
    with pytest.raises(CalendarError, match="2024-12-25 is not a XNYS session"):
        xnys.session_close(date(2024, 12, 25))
    with pytest.raises(CalendarError, match="outside the XNYS calendar"):
        xnys.is_session(date(1980, 1, 2))


def test_a_daily_bar_is_final_once_its_session_closed_and_settled(xnys):
    bar = utc(2024, 3, 15)  # Friday's session, closing 20:00 UTC
    close = utc(2024, 3, 15, 20, 0)
    assert not xnys.is_final(bar, "1d", utc(2024, 3, 15, 14, 30))
    assert not xnys.is_final(bar, "1d", close + SETTLE - timedelta(seconds=1))
    assert xnys.is_final(bar, "1d", close + SETTLE)
    # A half-day's bar is final three hours earlier than a full day's.
    assert xnys.is_final(utc(2024, 7, 3), "1d", utc(2024, 7, 3, 17, 0) + SETTLE)
    # A day that is no session (a crypto weekend bar) is final once the day is over.
    assert not xnys.is_final(utc(2024, 3, 16), "1d", utc(2024, 3, 17, 3, 59))
    assert xnys.is_final(utc(2024, 3, 16), "1d", utc(2024, 3, 17, 4, 0))


def test_an_intraday_bar_is_final_after_its_end_and_the_last_one_at_the_close(xnys):
    minute = timedelta(minutes=1)
    assert not xnys.is_final(utc(2024, 3, 15, 14, 0), "1h", utc(2024, 3, 15, 15, 0))
    assert xnys.is_final(utc(2024, 3, 15, 14, 0), "1h", utc(2024, 3, 15, 15, 0) + minute)
    # A 90m bar from 15:00 New York time (19:00 UTC) ends at the 16:00 close, not 16:30.
    assert xnys.is_final(utc(2024, 3, 15, 19, 0), "90m", utc(2024, 3, 15, 20, 0) + minute)
    # On a half-day the 12:30 bar of an hour ends at the 13:00 close.
    assert xnys.is_final(utc(2024, 7, 3, 16, 30), "1h", utc(2024, 7, 3, 17, 1))


def test_weekly_and_monthly_bars_are_final_after_their_last_session(xnys):
    settled = SETTLE + timedelta(seconds=1)
    # The week of 2024-03-25 ends with Thursday's session: Good Friday is a holiday.
    assert xnys.is_final(utc(2024, 3, 25), "1wk", utc(2024, 3, 28, 20, 0) + settled)
    assert not xnys.is_final(utc(2024, 3, 25), "1wk", utc(2024, 3, 28, 19, 0))
    assert xnys.is_final(utc(2024, 3, 1), "1mo", utc(2024, 3, 28, 20, 0) + settled)
    assert not xnys.is_final(utc(2024, 2, 1), "1mo", utc(2024, 2, 29, 19, 0))
    assert xnys.is_final(utc(2024, 1, 1), "3mo", utc(2024, 3, 28, 20, 0) + settled)


def test_a_scheduled_run_is_due_while_open_and_for_a_while_after_a_close(xnys):
    assert xnys.run_due(utc(2024, 3, 15, 14, 30))  # open
    assert xnys.run_due(utc(2024, 3, 15, 22, 0))  # two hours after Friday's close
    assert xnys.run_due(utc(2024, 3, 15, 20, 0) + RUN_GRACE)
    assert not xnys.run_due(utc(2024, 3, 15, 20, 0) + RUN_GRACE + timedelta(minutes=1))
    assert not xnys.run_due(utc(2024, 3, 16, 15, 0))  # Saturday
    assert not xnys.run_due(utc(2024, 12, 25, 21, 0))  # Christmas, the cron's hour
    assert not xnys.run_due(utc(2024, 3, 15, 12, 0))  # before Friday's open
    # The recommended cron(0 22 ? * MON-FRI *) is due after every close, half-days too.
    for day in (date(2024, 1, 2), date(2024, 7, 1), date(2024, 7, 3), date(2024, 11, 29)):
        assert xnys.run_due(utc(day.year, day.month, day.day, 22, 0)), day


def test_without_the_library_a_conservative_weekday_stand_in_is_used():
    stand_in = weekday_calendar("XNYS", date(2024, 3, 15))
    # It says what it is, keeps weekdays and DST, and never calls a bar final early:
    assert "stand-in" in stand_in.source
    assert not stand_in.is_session(date(2024, 3, 16))
    assert stand_in.session_close(date(2024, 3, 11)) == utc(2024, 3, 11, 20, 0)
    # a half-day is treated as a full day, so its bar turns final later, never earlier
    assert stand_in.session_close(date(2024, 7, 3)) == utc(2024, 7, 3, 20, 0)
    assert not stand_in.is_final(utc(2024, 7, 3), "1d", utc(2024, 7, 3, 17, 0) + SETTLE)
    with pytest.raises(CalendarError, match="XTKS needs it"):
        weekday_calendar("XTKS", date(2024, 3, 15))


def test_the_stand_in_is_chosen_only_when_the_library_is_missing():
    # A fresh interpreter where importing exchange_calendars fails, as in a package
    # built without dependencies (the code-only rehearsal artifact).
    probe = (
        "import sys; sys.modules['exchange_calendars'] = None; "
        "from backend.market_calendar import get_calendar; print(get_calendar().source)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("weekday stand-in")
