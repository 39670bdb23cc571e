"""Parse the Lambda event into a request, rejecting bad events before anything is written.

Accepted shapes (docs/runtime.md):
  {}                                                 fetch the configured symbols
  {"symbols": [...], "interval": "1d", "period": "5d"}  any subset of the three keys
  {"test": true}                                     health check, writes nothing
  an EventBridge "Scheduled Event"                   same as {}, but only when the
                                                     market calendar says a run is due
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from backend.models import (
    INTERVALS,
    MAX_SYMBOLS,
    check_interval_period,
    normalise_ticker,
    shown,
)

DEFAULT_INTERVAL = "1d"
DEFAULT_PERIOD = "5d"
_FETCH_KEYS = ("symbols", "interval", "period")


class EventError(ValueError):
    """The event is malformed. `field` names the offending key."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class FetchRequest:
    symbols: tuple[str, ...] | None  # None: use the configured SYMBOLS
    interval: str = DEFAULT_INTERVAL
    period: str = DEFAULT_PERIOD
    # From the schedule: skipped on a closed market. An explicit event always runs.
    scheduled: bool = False


@dataclass(frozen=True, slots=True)
class HealthRequest:
    pass


def _is_scheduled_event(event: Mapping[str, object]) -> bool:
    # A schedule rule without an explicit Input delivers EventBridge's own envelope.
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def parse_event(event: object) -> FetchRequest | HealthRequest:
    if event is None:
        return FetchRequest(symbols=None)
    if not isinstance(event, Mapping):
        raise EventError("event", f"must be a JSON object, got {type(event).__name__}")
    if _is_scheduled_event(event):
        return FetchRequest(symbols=None, scheduled=True)

    unknown = sorted(str(k) for k in event if k not in (*_FETCH_KEYS, "test"))
    if unknown:
        raise EventError(
            unknown[0] if len(unknown[0]) <= 40 else unknown[0][:37] + "...",
            f"unknown field; allowed fields are {', '.join((*_FETCH_KEYS, 'test'))}",
        )

    if "test" in event:
        test = event["test"]
        if not isinstance(test, bool):
            raise EventError("test", f"must be true or false, got {shown(test)}")
        if test:
            extra = [k for k in _FETCH_KEYS if k in event]
            if extra:
                raise EventError(extra[0], "cannot be combined with test mode")
            return HealthRequest()

    interval = _string(event, "interval", DEFAULT_INTERVAL)
    period = _string(event, "period", DEFAULT_PERIOD)
    if interval not in INTERVALS:
        raise EventError(
            "interval", f"unknown interval {shown(interval)}: use one of {', '.join(INTERVALS)}"
        )
    try:
        check_interval_period(interval, period)  # the interval is known, so this is the period
    except ValueError as err:
        raise EventError("period", str(err)) from None
    return FetchRequest(symbols=_symbols(event), interval=interval, period=period)


def _string(event: Mapping[str, object], key: str, default: str) -> str:
    value = event.get(key, default)
    if not isinstance(value, str):
        raise EventError(key, f"must be a string, got {type(value).__name__}")
    return value


def _symbols(event: Mapping[str, object]) -> tuple[str, ...] | None:
    if "symbols" not in event:
        return None
    raw = event["symbols"]
    if not isinstance(raw, list):
        raise EventError("symbols", f"must be a list of tickers, got {type(raw).__name__}")
    if not raw:
        raise EventError("symbols", "must not be empty; omit it to use the configured SYMBOLS")
    if len(raw) > MAX_SYMBOLS:
        raise EventError("symbols", f"has {len(raw)} entries: at most {MAX_SYMBOLS} per event")
    tickers: list[str] = []
    for index, item in enumerate(raw):
        try:
            ticker = normalise_ticker(item)
        except ValueError as err:
            raise EventError(f"symbols[{index}]", str(err)) from None
        # A repeated ticker would write the same DynamoDB key twice in one batch, which
        # DynamoDB rejects; fetching it once gives the caller what they asked for.
        if ticker not in tickers:
            tickers.append(ticker)
    return tuple(tickers)
