"""The trading keys of a stack's config, validated in one place.

`parse_trading_config(raw)` is the one validator: `infra/config.py` calls it at preview,
the service calls it again at start (on TRADING_CONFIG), and the backtester on a stack's
file. `raw` maps key names to values, either decoded (dict, bool, number) or as the Pulumi
CLI hands them to a program (strings: JSON for objects, `true`/`false`, digits). Other keys
in `raw` are ignored, so a caller may pass a whole stack's config.

Every problem is reported at once, one line each, starting with the key it is about
(`strategyParams.fast: ...`, `riskLimits.maxOpenPositions: ...`, `liveTrading: ...`).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from backend.trading.strategies import STRATEGIES, Param, Strategy

TRADING_MODES = ("paper", "alpaca-paper", "alpaca-live")
# Section 8 marks a bar final when its *session* closes, so an intraday bar only becomes
# tradeable after the close: trading them would mean acting once a day on stale bars.
BAR_INTERVALS = ("1d",)
LIVE_ENVIRONMENT = "prod"
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


class TradingConfigError(ValueError):
    """One or more trading keys are invalid; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits enforced before any order leaves (backend.trading.risk, docs/trading.md)."""

    max_position_shares: int = 1_000
    max_position_notional: float = 25_000.0
    # Gross exposure (sum of |position value|) as a multiple of equity: 1.0 = no leverage.
    max_gross_exposure: float = 1.0
    max_open_positions: int = 10
    # Percent of the previous day's closing equity; 0 turns the kill switch off.
    max_daily_loss_pct: float = 5.0
    flatten_on_halt: bool = False
    # A bar more than this many closed sessions behind the calendar is not traded on.
    max_stale_bars: int = 1
    allow_short: bool = False


@dataclass(frozen=True, slots=True)
class _Limit:
    key: str  # camelCase, as in the stack config
    attr: str
    kind: type[int] | type[float] | type[bool]
    minimum: float = 0.0
    maximum: float = math.inf


_LIMITS = (
    _Limit("maxPositionShares", "max_position_shares", int, 1),
    _Limit("maxPositionNotional", "max_position_notional", float, 0.0),
    _Limit("maxGrossExposure", "max_gross_exposure", float, 0.0, 10.0),
    _Limit("maxOpenPositions", "max_open_positions", int, 1, 500),
    _Limit("maxDailyLossPct", "max_daily_loss_pct", float, 0.0, 100.0),
    _Limit("flattenOnHalt", "flatten_on_halt", bool),
    _Limit("maxStaleBars", "max_stale_bars", int, 0, 1000),
    _Limit("allowShort", "allow_short", bool),
)


@dataclass(frozen=True, slots=True)
class TradingConfig:
    environment: str
    strategy: str = "sma_crossover"
    strategy_params: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    bar_interval: str = "1d"
    risk: RiskLimits = field(default_factory=RiskLimits)
    trading_mode: str = "paper"
    live_trading: bool = False
    paper_cash: float = 100_000.0
    paper_slippage_bps: float = 5.0
    # Alpaca charges no commission on US equities; set this to model a broker that does.
    paper_fee_rate: float = 0.0

    def make_strategy(self) -> Strategy:
        return STRATEGIES[self.strategy](self.strategy_params)

    def to_raw(self) -> dict[str, Any]:
        """The validated keys, camelCase, every default filled in: what TRADING_CONFIG
        carries (parse_trading_config(to_raw()) gives this config back)."""
        return {
            "environment": self.environment,
            "strategy": self.strategy,
            "strategyParams": dict(self.strategy_params),
            "barInterval": self.bar_interval,
            "riskLimits": {lim.key: getattr(self.risk, lim.attr) for lim in _LIMITS},
            "tradingMode": self.trading_mode,
            "liveTrading": self.live_trading,
            "paperCash": self.paper_cash,
            "paperSlippageBps": self.paper_slippage_bps,
            "paperFeeRate": self.paper_fee_rate,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_raw(), sort_keys=True, separators=(",", ":"))


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _decode(value: Any) -> Any:
    """A value as the CLI passes it (a string) or already decoded."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return value  # a plain string (strategy names, modes): checked by the caller


def _number(  # noqa: PLR0917 - a checker's arguments read best in this order
    key: str, value: Any, kind: type, lo: float, hi: float, problems: list[str]
) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{key}: must be a number, got {value!r}")
        return None
    if not math.isfinite(value):
        problems.append(f"{key}: must be finite, got {value!r}")
        return None
    if kind is int and value != int(value):
        problems.append(f"{key}: must be a whole number, got {value!r}")
        return None
    if value < 0 and lo >= 0:
        problems.append(f"{key}: must not be negative (got {value:g})")
        return None
    if not lo <= value <= hi:
        upper = "" if math.isinf(hi) else f" and <= {hi:g}"
        problems.append(f"{key}: must be >= {lo:g}{upper} (got {value:g})")
        return None
    return int(value) if kind is int else float(value)


def _boolean(key: str, value: Any, problems: list[str]) -> bool | None:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        problems.append(f"{key}: must be true or false, got {value!r}")
        return None
    return value


def _object(key: str, value: Any, problems: list[str]) -> dict[str, Any]:
    value = _decode(value)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be an object (a YAML map), got {value!r}")
        return {}
    return value


def _strategy_params(name: str, raw: Any, problems: list[str]) -> dict[str, float]:
    cls = STRATEGIES[name]
    given = _object("strategyParams", raw, problems)
    known = [p.name for p in cls.PARAMS]
    params: dict[str, float] = {}
    ok = True
    for key in sorted(given):
        if key not in known:
            problems.append(
                f"strategyParams.{key}: unknown parameter of {name}{_suggest(key, known)}; "
                f"its parameters are {', '.join(known)}"
            )
            ok = False
    spec: Param
    for spec in cls.PARAMS:
        if spec.name not in given or given[spec.name] is None:
            params[spec.name] = spec.default
            continue
        value = _number(
            f"strategyParams.{spec.name}",
            given[spec.name],
            spec.kind,
            spec.minimum,
            spec.maximum,
            problems,
        )
        if value is None:
            ok = False
        else:
            params[spec.name] = value
    if ok:
        problems.extend(cls.rules(params))
    return params


def _risk(raw: Any, problems: list[str]) -> RiskLimits:
    given = _object("riskLimits", raw, problems)
    known = [lim.key for lim in _LIMITS]
    for key in sorted(given):
        if key not in known:
            problems.append(
                f"riskLimits.{key}: unknown limit{_suggest(key, known)}; "
                f"the limits are {', '.join(known)}"
            )
    values: dict[str, Any] = {}
    for lim in _LIMITS:
        if lim.key not in given or given[lim.key] is None:
            continue
        name = f"riskLimits.{lim.key}"
        if lim.kind is bool:
            value: Any = _boolean(name, given[lim.key], problems)
        else:
            value = _number(name, given[lim.key], lim.kind, lim.minimum, lim.maximum, problems)
        if value is not None:
            values[lim.attr] = value
    return RiskLimits(**values)


def parse_trading_config(
    raw: Mapping[str, Any], *, environment: str | None = None
) -> TradingConfig:
    """Validate the trading keys of `raw` (see the module docstring). `environment`
    stands in when `raw` has none (the stack name, as infra/config.py computes it).
    Raises TradingConfigError listing every problem."""
    problems: list[str] = []
    env = raw.get("environment") or environment
    if not isinstance(env, str) or not env:
        problems.append("environment: not set (the stack's environment name, e.g. dev)")
        env = ""

    strategy = raw.get("strategy") or "sma_crossover"
    params: dict[str, float] = {}
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        names = list(STRATEGIES)
        problems.append(
            f"strategy: unknown strategy {strategy!r}{_suggest(str(strategy), names)}; "
            f"use one of {', '.join(names)}"
        )
    else:
        params = _strategy_params(strategy, raw.get("strategyParams"), problems)

    interval = raw.get("barInterval") or "1d"
    if not isinstance(interval, str) or interval not in BAR_INTERVALS:
        problems.append(
            f"barInterval: {interval!r} is not supported; use {', '.join(BAR_INTERVALS)} "
            "(bars are final only once their session closes, docs/trading.md)"
        )

    risk = _risk(raw.get("riskLimits"), problems)

    mode = raw.get("tradingMode") or "paper"
    if not isinstance(mode, str) or mode not in TRADING_MODES:
        problems.append(
            f"tradingMode: unknown mode {mode!r}{_suggest(str(mode), list(TRADING_MODES))}; "
            f"use one of {', '.join(TRADING_MODES)}"
        )

    live_raw = raw.get("liveTrading")
    live = False if live_raw in (None, "") else _boolean("liveTrading", live_raw, problems)
    if live and env and env != LIVE_ENVIRONMENT:
        problems.append(
            f"liveTrading: true is refused on environment {env!r}: live trading runs only "
            f"on the {LIVE_ENVIRONMENT} stack; set liveTrading: false here"
        )
    if mode == "alpaca-live" and not live:
        problems.append(
            "tradingMode: alpaca-live needs liveTrading: true (the explicit live switch, "
            f"allowed only on {LIVE_ENVIRONMENT}); use alpaca-paper to trade on paper"
        )
    if live and mode != "alpaca-live" and mode in TRADING_MODES:
        problems.append(
            f"liveTrading: true, but tradingMode is {mode!r}: set tradingMode: alpaca-live "
            "to trade live, or liveTrading: false"
        )

    def number(key: str, default: float, lo: float, hi: float) -> float:
        value = raw.get(key)
        if value is None or value == "":
            return default
        parsed = _number(key, value, float, lo, hi, problems)
        return default if parsed is None else float(parsed)

    cash = number("paperCash", 100_000.0, 1.0, 1e12)
    slippage = number("paperSlippageBps", 5.0, 0.0, 1_000.0)
    fee = number("paperFeeRate", 0.0, 0.0, 0.1)

    if problems:
        raise TradingConfigError(problems)
    return TradingConfig(
        environment=env,
        strategy=strategy,
        strategy_params=MappingProxyType(params),
        bar_interval=interval,
        risk=risk,
        trading_mode=mode,
        live_trading=bool(live),
        paper_cash=cash,
        paper_slippage_bps=slippage,
        paper_fee_rate=fee,
    )


def risk_limit_keys() -> tuple[str, ...]:
    """The riskLimits keys, for Pulumi.yaml's description and docs."""
    return tuple(lim.key for lim in _LIMITS)
