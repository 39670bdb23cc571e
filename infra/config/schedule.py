"""The `schedule` key: an EventBridge schedule expression, checked for meaning.

EventBridge's rules (the "Schedule expressions for rules" page of its user guide):
- `rate(N unit)`: N a positive whole number, unit minute(s), hour(s) or day(s), singular
  exactly when N is 1. This project also bounds N to a year, since a bigger N is a typo
  (`rate(99999999999999999999 minutes)` used to pass).
- `cron(minutes hours day-of-month month day-of-week year)`: six fields, no seconds.
  Each field takes its range, `,` lists, `-` ranges, `*`, and `/` increments; month and
  day-of-week also take JAN-DEC and SUN-SAT (day-of-week 1 is Sunday). `?` is allowed in
  day-of-month and day-of-week only, and exactly one of the two must be `?` (EventBridge
  refuses a value or `*` in both). Day-of-month also takes `L` (last day), `LW` and `NW`
  (nearest weekday); day-of-week takes `L`, `NL` (last N-day of the month) and `N#k`
  (the k-th N-day). A range must run upwards (`MON-FRI`, not `FRI-MON`).
- A day-of-month that no chosen month has (`cron(0 0 31 2 ? *)`, February the 31st)
  would never fire: refused as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from infra.config.rules import Invalid, text

ALLOWED = (
    "rate(N minute[s]|hour[s]|day[s]) (singular when N is 1), "
    "cron(minutes hours day-of-month month day-of-week year) with '?' in exactly one of "
    "day-of-month and day-of-week, or empty for no schedule"
)
# Said first when the problem is known, so the reason is not lost after the whole rule.
SHORT = "an EventBridge schedule"
_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
# rate(365 days) = rate(8760 hours) = rate(525600 minutes)
RATE_MAX_MINUTES = 365 * 24 * 60
_RATE_RE = re.compile(r"rate\(([1-9][0-9]{0,9}) (minute|hour|day)(s?)\)", re.ASCII)
_CRON_RE = re.compile(r"cron\((.*)\)", re.ASCII)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBER_RE = re.compile(r"0|[1-9][0-9]{0,3}", re.ASCII)


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()

    def value(self, token: str) -> int:
        if token.upper() in self.names:
            return self.names.index(token.upper()) + self.lo
        if not _NUMBER_RE.fullmatch(token):
            raise Invalid(f"{SHORT}: {self.name} {token!r} is not a number{self._named()}")
        number = int(token)
        if not self.lo <= number <= self.hi:
            raise Invalid(f"{SHORT}: {self.name} {number} is outside {self.lo}-{self.hi}")
        return number

    def _named(self) -> str:
        return f" or {self.names[0]}-{self.names[-1]}" if self.names else ""


_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day-of-week", 1, 7, _DAYS),
    _Field("year", 1970, 2199),
)


def _item(spec: _Field, item: str) -> set[int]:
    """One comma-separated item: `*`, `N`, `A-B`, each optionally `/STEP`. Its values."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _NUMBER_RE.fullmatch(step_text) or not 1 <= int(step_text) <= spec.hi:
            raise Invalid(f"{SHORT}: {spec.name} increment {step_text!r} is not 1-{spec.hi}")
        step = int(step_text)
    if base == "*":
        lo, hi = spec.lo, spec.hi
    elif "-" in base:
        first, _, last = base.partition("-")
        lo, hi = spec.value(first), spec.value(last)
        if lo > hi:
            raise Invalid(f"{SHORT}: {spec.name} range {base!r} runs backwards")
    else:
        lo = spec.value(base)
        # `5/15` in minutes means 5, 20, 35, 50: from 5 to the end of the range.
        hi = spec.hi if slash else lo
    return set(range(lo, hi + 1, step))


def _day_of_month_special(value: str) -> bool:
    if value in ("L", "LW"):
        return True
    match = re.fullmatch(r"([0-9]{1,2})W", value, re.ASCII)
    if match:
        _FIELDS[2].value(match.group(1))
        return True
    return False


def _day_of_week_special(value: str) -> bool:
    if value == "L":
        return True
    match = re.fullmatch(r"([0-9A-Za-z]{1,3})(L|#([1-5]))", value, re.ASCII)
    if match:
        _FIELDS[4].value(match.group(1))
        return True
    if "#" in value:
        raise Invalid(f"{SHORT}: day-of-week {value!r}: N#k takes k from 1 to 5")
    return False


def _cron(body: str) -> None:
    fields = body.split(" ")
    if len(fields) != 6 or not all(fields):
        raise Invalid(
            f"{SHORT}: cron takes six fields separated by single spaces; this has "
            f"{len(body.split())}"
        )
    values: list[set[int] | None] = []
    for spec, value in zip(_FIELDS, fields, strict=True):
        if value == "?":
            if spec.name not in ("day-of-month", "day-of-week"):
                raise Invalid(f"{SHORT}: '?' is not allowed in {spec.name}")
            values.append(None)
            continue
        if spec.name == "day-of-month" and _day_of_month_special(value):
            values.append(None)
            continue
        if spec.name == "day-of-week" and _day_of_week_special(value):
            values.append(None)
            continue
        chosen: set[int] = set()
        for item in value.split(","):
            if not item:
                raise Invalid(f"{SHORT}: {spec.name} {value!r} has an empty list item")
            chosen |= _item(spec, item)
        values.append(chosen)
    if (fields[2] == "?") == (fields[4] == "?"):
        raise Invalid(
            f"{SHORT}: exactly one of day-of-month and day-of-week must be '?', "
            "e.g. cron(0 12 * * ? *)"
        )
    days, months = values[2], values[3]
    if days is not None and months is not None:
        longest = max(_DAYS_IN_MONTH[m - 1] for m in months)
        if min(days) > longest:
            raise Invalid(f"{SHORT}: it would never fire: no month chosen has day {min(days)}")


def schedule(value: Any) -> str | None:
    if value is None or value == "":
        return None
    expression = text(value, ALLOWED, max_len=256)
    rate = _RATE_RE.fullmatch(expression)
    if rate:
        number, unit, plural = int(rate.group(1)), rate.group(2), rate.group(3)
        if (number == 1) == bool(plural):
            raise Invalid(f"{SHORT}: write rate(1 {unit}) but rate({max(number, 2)} {unit}s)")
        if number * _MINUTES[unit] > RATE_MAX_MINUTES:
            raise Invalid(f"{SHORT} at most a year apart: N up to rate(365 days)")
        return expression
    if expression.startswith("rate("):
        raise Invalid(f"{SHORT}: N is a whole number from 1, then one space and the unit")
    cron = _CRON_RE.fullmatch(expression)
    if cron:
        _cron(cron.group(1))
        return expression
    raise Invalid(ALLOWED)
