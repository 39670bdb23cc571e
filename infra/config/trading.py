"""The trading keys' meaning, checked by the trading core's own validator.

`backend.trading.settings.parse_trading_config(raw) -> TradingConfig` is the one
validator of the trading keys (docs/CONTRACTS.md section 9): the service calls it at
start, and the program calls it here, at preview, so a bad strategy parameter fails
`pulumi preview` with the other bad keys instead of a running task. Its problems are
one line each, naming the stack config key (`strategyParams.fast`, `liveTrading`).

infra/config has already parsed each key's type (a map for `strategyParams`, a
boolean for `liveTrading`...); `raw` holds those typed values, by stack config key,
plus `environment`, which the live-trading switch depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.trading.settings import TRADING_KEYS, TradingConfigError, parse_trading_config

__all__ = ["TRADING_KEYS", "trading_problems"]


def trading_problems(raw: Mapping[str, Any]) -> list[str]:
    """Each problem with the trading keys, one line naming the key; empty when fine."""
    try:
        # A plain dict: the validator refuses read-only mappings it would have to copy.
        parse_trading_config(dict(raw))
    except TradingConfigError as exc:
        return list(exc.problems)
    return []
