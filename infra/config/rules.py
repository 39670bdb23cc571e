"""The building blocks of every key's rule: text, integers, booleans, choices, JSON, ARNs.

A rule takes the value as it arrives (a string from the engine, or a typed value from
a test or a YAML list) and returns it parsed, or raises `Invalid` whose message
completes "must be ...": what is allowed, then, in brackets, what is wrong with this
value when that is not obvious (an invisible character, a 5,000-digit number, an ARN
of another service). Nothing here knows a key's name: `infra.config` adds it.

Every pattern is matched with `fullmatch` and ASCII classes: `$` would let a trailing
newline through, and `\\d`/`\\w` would accept Arabic-Indic digits and Cyrillic letters.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class Invalid(Exception):
    """One value breaks its key's rule; the message completes "must be ..."."""


# Unicode categories that never belong in a config value: control, format (zero-width
# joiners, bidi overrides, BOM), private use, surrogates, unassigned, line/paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
_CONTROL_NAMES = {
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\t": "TAB",
    "\x00": "NUL",
    "\x0b": "VERTICAL TAB",
    "\x0c": "FORM FEED",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}
# Longer than any legitimate value of a string key (an ARN is at most 2048).
TEXT_MAX = 2048
# A JSON list or map given as text (symbols, tags, strategyParams, riskLimits...).
JSON_MAX = 64 * 1024
# An integer given as text: more digits than this is no config value (and int() stops
# at 4,300 digits with a traceback that names nothing).
_INT_RE = re.compile(r"0|-?[1-9][0-9]{0,17}", re.ASCII)


def describe_char(ch: str) -> str:
    """`U+000A LINE FEED`, `U+0435 CYRILLIC SMALL LETTER IE`: what a look-alike really is."""
    name = _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} {name}".rstrip() if name else f"U+{ord(ch):04X}"


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    if value is None:
        return "null"
    return "a string" if isinstance(value, str) else type(value).__name__


def text(value: Any, allowed: str, *, max_len: int = TEXT_MAX) -> str:
    """A string of at most `max_len` characters, with nothing invisible in it and no
    whitespace around it. (A trailing newline from `echo value | pulumi config set`
    would otherwise end up inside a function name or an IAM policy.)"""
    if not isinstance(value, str):
        raise Invalid(f"{allowed} (a string, not {kind_of(value)})")
    if len(value) > max_len:
        raise Invalid(f"{allowed} (at most {max_len} characters; this has {len(value):,})")
    for i, ch in enumerate(value):
        if unicodedata.category(ch) in _INVISIBLE:
            raise Invalid(
                f"{allowed}, without control or invisible characters "
                f"({describe_char(ch)} at position {i})"
            )
    if value != value.strip():
        raise Invalid(f"{allowed}, without leading or trailing whitespace")
    return value


def text_problem(value: str, *, max_len: int = TEXT_MAX) -> bool:
    """Whether `text` would refuse `value`, without saying where (for secrets)."""
    try:
        text(value, "", max_len=max_len)
    except Invalid:
        return True
    return False


def matches(value: Any, pattern: re.Pattern[str], allowed: str, *, max_len: int = TEXT_MAX) -> str:
    """`text` that matches `pattern` whole. A non-ASCII look-alike is named, since it
    reads exactly like the letter it imitates."""
    checked = text(value, allowed, max_len=max_len)
    if not pattern.fullmatch(checked):
        odd = next((ch for ch in checked if not ch.isascii()), None)
        if odd is not None:
            raise Invalid(f"{allowed} (ASCII only: {describe_char(odd)} is not)")
        raise Invalid(allowed)
    return checked


def optional(rule: Callable[[Any], str]) -> Callable[[Any], str | None]:
    """Empty (or unset) means None; anything else must pass `rule`."""

    def parse(value: Any) -> str | None:
        return None if value is None or value == "" else rule(value)

    return parse


def boolean(value: Any) -> bool:
    # What Pulumi's own Config.get_bool accepts, and nothing else.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "True", "false", "False"):
        return value.lower() == "true"
    hint = ""
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n", "1", "0"):
        hint = " (Pulumi takes no other word: yes/no/on/off/1/0 are not booleans there)"
    raise Invalid(f"true or false{hint}")


def integer(value: Any, lo: int, hi: int | None, allowed: str | None = None) -> int:
    """A whole number in decimal digits, from lo to hi. Not a float, not `1e3`, `0x10`,
    `010`, `5_000`, `+5` or fullwidth digits: each means something else somewhere."""
    allowed = allowed or (
        f"an integer from {lo} to {hi}" if hi is not None else f"an integer >= {lo}"
    )
    if isinstance(value, bool):
        raise Invalid(f"{allowed} (not a boolean)")
    if isinstance(value, float):
        raise Invalid(f"{allowed} (a whole number, not {value!r})")
    if isinstance(value, str):
        if not _INT_RE.fullmatch(value):
            if value.isascii() and value.lstrip("-").isdigit() and len(value) > 18:
                raise Invalid(f"{allowed} (this is a {len(value):,}-digit number)")
            raise Invalid(f"{allowed}, in decimal digits without leading zeros")
        value = int(value)
    if not isinstance(value, int):
        raise Invalid(f"{allowed} (not {kind_of(value)})")
    if value < lo or (hi is not None and value > hi):
        raise Invalid(allowed)
    return value


_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?(?:[eE][-+]?[0-9]{1,3})?")


def number(value: Any, lo: float, hi: float, allowed: str) -> float:
    """A finite decimal number from lo to hi: `5`, `0.25`, `1e-3`; not NaN, infinity,
    hex, a boolean, or a number of more digits than a float holds."""
    if isinstance(value, bool):
        raise Invalid(f"{allowed} (not a boolean)")
    if isinstance(value, str):
        if not _NUMBER_RE.fullmatch(value):
            raise Invalid(f"{allowed}, in decimal digits (e.g. 0.25)")
        value = float(value)
    if not isinstance(value, int | float):
        raise Invalid(f"{allowed} (not {kind_of(value)})")
    # Compared before any float(): a 5,000-digit int does not fit one.
    if (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:
        raise Invalid(allowed)
    return float(value)


def int_in(lo: int, hi: int | None) -> Callable[[Any], int]:
    return lambda value: integer(value, lo, hi)


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    allowed = "one of " + ", ".join(choices)

    def parse(value: Any) -> str:
        if value in choices:
            return str(value)
        if isinstance(value, str):
            if value.strip() in choices:
                raise Invalid(f"{allowed}, without surrounding whitespace")
            folded = {c.casefold(): c for c in choices}
            if value.casefold() in folded:
                raise Invalid(f"{allowed} (case matters: {folded[value.casefold()]})")
        text(value, allowed)  # names an invisible character, if that is what is wrong
        raise Invalid(allowed)

    return parse


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def _constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"{number} is too large")
    return value


def _bounded_int(number: str) -> int:
    if len(number) > 19:
        raise ValueError(f"a {len(number)}-digit number")
    return int(number)


def json_value(value: Any, expected: type[list[Any]] | type[dict[str, Any]], allowed: str) -> Any:
    """A list or map, given as one or as its JSON text (how the engine passes both).
    NaN/Infinity, duplicate keys, huge numbers and deep nesting are refused."""
    if isinstance(value, str):
        if len(value) > JSON_MAX:
            raise Invalid(f"{allowed} (at most {JSON_MAX // 1024} KiB of JSON)")
        try:
            value = json.loads(
                value,
                object_pairs_hook=_pairs,
                parse_constant=_constant,
                parse_float=_finite,
                parse_int=_bounded_int,
            )
        except _Duplicate as exc:
            raise Invalid(f"{allowed} (key {exc} appears twice)") from None
        except RecursionError:
            raise Invalid(f"{allowed} (nested too deeply)") from None
        except ValueError as exc:
            reason = str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError) else exc
            raise Invalid(f"{allowed} (not valid JSON: {reason})") from None
    if not isinstance(value, expected):
        raise Invalid(f"{allowed} (not {kind_of(value)})")
    return value


_PARAM_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}", re.ASCII)


def flat_object(value: Any, allowed: str, *, max_entries: int = 50) -> Mapping[str, Any]:
    """A map of names to plain values (numbers, booleans, strings): the shape of
    `strategyParams` and `riskLimits`. What each entry may be is their validator's job."""
    if value is None or value == "":
        return MappingProxyType({})
    data = json_value(value, dict, allowed)
    if len(data) > max_entries:
        raise Invalid(f"{allowed} (at most {max_entries} entries)")
    for name, item in data.items():
        if not isinstance(name, str) or not _PARAM_NAME_RE.fullmatch(name):
            raise Invalid(f"{allowed} (entry names are letters, digits and '_': not {name!r})")
        if isinstance(item, float) and not math.isfinite(item):
            raise Invalid(f"{allowed} ({name} is not a finite number)")
        if isinstance(item, str):
            text(item, f"{allowed} ({name}: a short string)", max_len=256)
        elif not isinstance(item, bool | int | float):
            raise Invalid(
                f"{allowed} ({name} is {kind_of(item)}: numbers, true/false or text only)"
            )
    return MappingProxyType(dict(data))


# ---- ARNs


# Every AWS partition, and the region prefix that puts a region in it.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f")
_PARTITION_BY_PREFIX = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
)
REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)
_ACCOUNT_RE = re.compile(r"[0-9]{12}", re.ASCII)


def partition_of(region: str) -> str:
    for prefix, partition in _PARTITION_BY_PREFIX:
        if region.startswith(prefix):
            return partition
    return "aws"


@dataclass(frozen=True)
class ArnRule:
    """What one ARN key must name."""

    what: str  # "a KMS key ARN"
    example: str
    service: str
    regional: bool
    resource: re.Pattern[str]
    # What the resource part must be, when the rest of the ARN is right.
    resource_rule: str
    # Why it must be in the stack's own region (regional ARNs only).
    region_reason: str = ""


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str


def split_arn(value: str) -> Arn | None:
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(*parts[1:])


def arn(rule: ArnRule) -> Callable[[Any], str]:
    """An ARN of `rule`'s service and resource. Whether its partition and region are
    the stack's is checked with aws:region, in infra.config."""
    allowed = f"empty, or {rule.what} such as {rule.example}"

    def parse(value: Any) -> str:
        checked = text(value, allowed)
        odd = next((ch for ch in checked if not ch.isascii()), None)
        if odd is not None:
            raise Invalid(f"{allowed} (ASCII only: {describe_char(odd)} is not)")
        parsed = split_arn(checked)
        if parsed is None:
            raise Invalid(f"{allowed} (this is not an ARN)")
        if parsed.partition not in PARTITIONS:
            raise Invalid(f"{allowed} (unknown partition {parsed.partition!r})")
        if parsed.service != rule.service:
            raise Invalid(f"{allowed} (this is an ARN of {parsed.service or 'no service'})")
        if rule.regional and not REGION_RE.fullmatch(parsed.region):
            raise Invalid(f"{allowed} (no region in it)")
        if not rule.regional and parsed.region:
            raise Invalid(f"{allowed} ({rule.service} ARNs name no region)")
        if not _ACCOUNT_RE.fullmatch(parsed.account):
            raise Invalid(f"{allowed} (the account is not 12 digits)")
        if not rule.resource.fullmatch(parsed.resource):
            raise Invalid(f"{allowed} ({rule.resource_rule})")
        return checked

    return parse
