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

TRADING_KEYS = (
    "strategy",
    "strategyParams",
    "barInterval",
    "riskLimits",
    "tradingMode",
    "liveTrading",
    "paperCash",
    "paperSlippageBps",
    "paperFeeRate",
)
TRADING_MODES = ("paper", "alpaca-paper", "alpaca-live")
# The only environment that may trade real money (docs/CONTRACTS.md section 10).
LIVE_ENVIRONMENT = "prod"


def trading_problems(raw: Mapping[str, Any]) -> list[str]:
    """Each problem with the trading keys, one line naming the key; empty when fine."""
    # MERGE(lead): the trading core's validator is on the `trading` branch. When
    # backend/trading/settings.py is here, replace the line below with:
    #
    #     from backend.trading.settings import TradingConfigError, parse_trading_config
    #
    #     try:
    #         parse_trading_config(raw)
    #     except TradingConfigError as exc:
    #         return list(exc.problems)
    #     return []
    #
    # (imported here, lazily: the program pays for it only when it validates; `raw`
    # carries `environment`, which that function reads.)
    return _minimal_local_check(raw)


def _minimal_local_check(raw: Mapping[str, Any]) -> list[str]:
    """LOCAL STAND-IN, to be replaced by parse_trading_config (above): only the two
    rules that keep real money safe until then. Unknown trading mode; live trading
    anywhere but prod, or alpaca-live without the explicit switch."""
    problems = []
    mode = raw.get("tradingMode", "paper")
    live = raw.get("liveTrading", False)
    environment = raw.get("environment")
    if mode not in TRADING_MODES:
        problems.append(f"tradingMode = {mode!r}: must be one of {', '.join(TRADING_MODES)}")
    if live and environment != LIVE_ENVIRONMENT:
        problems.append(
            f"liveTrading = True: must be false unless environment is {LIVE_ENVIRONMENT} "
            f"(this stack's environment is {environment!r})"
        )
    if mode == "alpaca-live" and not live:
        problems.append(
            "tradingMode = 'alpaca-live': must come with liveTrading: true, the explicit "
            "switch for real money (or use alpaca-paper)"
        )
    if live and mode != "alpaca-live" and mode in TRADING_MODES:
        problems.append(
            f"liveTrading = True: must come with tradingMode: alpaca-live (it is {mode!r}), "
            "or be false"
        )
    return problems
