"""Market-data providers: where bars come from.

A provider turns (symbol, interval, period) into a `Batch`: the valid bars, raw (as
traded) with their split and dividend, and the rows it had to reject, each with its
reason. A bad row never sinks the symbol; a provider that cannot answer at all raises
ProviderError. `get_provider` maps MARKET_DATA_PROVIDER to an implementation and
imports it only then, so the yfinance/pandas stack loads only when it is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from backend.models import Bar, BarError


class ProviderError(RuntimeError):
    """The provider could not deliver bars for a symbol (network, unknown ticker, ...)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that failed validation: when (as the source spelled it) and why."""

    timestamp: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"timestamp": self.timestamp, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Batch:
    bars: list[Bar]  # valid, oldest first, one per timestamp
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Row:
    """One row as the source gave it, before validation."""

    timestamp: datetime
    open: object
    high: object
    low: object
    close: object
    volume: object
    split: object = 1.0
    dividend: object = 0.0


def build_batch(symbol: str, interval: str, rows: Iterable[Row]) -> Batch:
    """Validate each row into a Bar (`Bar.create`); keep the good ones, reject the bad
    ones with their reason. Two rows for one time keep the last (Yahoo sometimes sends
    the live row twice, and one DynamoDB batch cannot write a key twice)."""
    bars: dict[datetime, Bar] = {}
    rejected: list[Rejected] = []
    for row in rows:
        try:
            bar = Bar.create(
                symbol=symbol,
                interval=interval,
                timestamp=row.timestamp,
                open=row.open,
                high=row.high,
                low=row.low,
                close=row.close,
                volume=row.volume,
                split=row.split,
                dividend=row.dividend,
            )
        except BarError as err:
            rejected.append(Rejected(timestamp=_spell(row.timestamp), reason=str(err)))
            continue
        bars[bar.timestamp] = bar
    return Batch(bars=sorted(bars.values(), key=lambda b: b.timestamp), rejected=rejected)


def _spell(moment: object) -> str:
    if isinstance(moment, datetime):
        return moment.isoformat()
    return repr(moment)[:40]


class Provider(Protocol):
    name: str

    def fetch(self, symbol: str, interval: str, period: str) -> Batch:
        """Return the symbol's bars, oldest first, and its rejected rows. No bars and no
        rejected rows means no data (a failure)."""
        ...


def get_provider(name: str) -> Provider:
    # Neither provider takes the API key: Yahoo is keyless and the fixture is offline.
    # A keyed provider would take `backend.secrets.SecretReader` in its constructor.
    if name == "yfinance":
        from backend.providers.yahoo import YFinanceProvider

        return YFinanceProvider()
    if name == "fixture":
        from backend.providers.fixture import FixtureProvider

        return FixtureProvider()
    raise ValueError(f"unknown market-data provider {name!r}: use yfinance or fixture")
