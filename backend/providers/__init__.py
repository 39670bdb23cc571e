"""Market-data providers: where bars come from.

A provider turns (symbol, interval, period) into validated bars, or raises
ProviderError. `get_provider` maps MARKET_DATA_PROVIDER to an implementation and
imports it only then, so the yfinance/pandas stack loads only when it is used.
"""

from __future__ import annotations

from typing import Protocol

from backend.models import Bar


class ProviderError(RuntimeError):
    """The provider could not deliver bars for a symbol (network, unknown ticker, ...)."""


class Provider(Protocol):
    name: str

    def fetch(self, symbol: str, interval: str, period: str) -> list[Bar]:
        """Return the symbol's bars, oldest first. Empty means no data (a failure)."""
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
