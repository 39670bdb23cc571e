"""The strategy service's settings: read from the environment in this one place.

The variables are docs/CONTRACTS.md section 10's. Every problem is reported at once, one
line each naming its variable (or, inside TRADING_CONFIG, the stack config key). The
trading keys are validated again here with the stack's own ENVIRONMENT, so a live switch
that reached a non-prod task is refused at start even if the preview let it through.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from backend.models import MAX_SYMBOLS, normalise_ticker
from backend.settings import BUCKET_RE, ENVIRONMENT_RE, LOG_LEVELS
from backend.trading.settings import TradingConfig, TradingConfigError, parse_trading_config

_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./=-]*/$")
_SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")
DEFAULT_HEARTBEAT = "/tmp/ctb/heartbeat.json"  # noqa: S108 - the task's writable tmp volume
DEFAULT_POLL_SECONDS = 60.0


class ServiceSettingsError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    environment: str
    bucket_name: str
    data_prefix: str
    logs_prefix: str
    market_data_table: str
    ledger_table: str
    symbols: tuple[str, ...]
    trading: TradingConfig
    broker_secret_arn: str | None
    broker_url: str | None
    heartbeat_file: Path
    poll_seconds: float
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        problems: list[str] = []

        def required(name: str, pattern: re.Pattern[str], hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set: {hint}")
            elif not pattern.match(value):
                problems.append(f"{name}={value!r} is invalid: {hint}")
            return value

        environment = required("ENVIRONMENT", ENVIRONMENT_RE, "a lower-case name like 'dev'")
        bucket = required("BUCKET_NAME", BUCKET_RE, "an S3 bucket name")
        data_prefix = required(
            "DATA_PREFIX", _PREFIX_RE, "a key prefix ending in '/', e.g. data/dev/"
        )
        logs_prefix = required(
            "LOGS_PREFIX", _PREFIX_RE, "a key prefix ending in '/', e.g. logs/dev/"
        )
        market = required("MARKET_DATA_TABLE", _TABLE_RE, "the market-data table's name")
        ledger = required("LEDGER_TABLE", _TABLE_RE, "the ledger table's name")

        symbols = _symbols(env.get("SYMBOLS", ""), problems)

        trading = _trading(env.get("TRADING_CONFIG", ""), environment, problems)

        secret_arn = env.get("BROKER_SECRET_ARN", "").strip() or None
        if secret_arn is not None and not _SECRET_ARN_RE.match(secret_arn):
            problems.append(
                "BROKER_SECRET_ARN is not a Secrets Manager ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>); it must hold "
                "the secret's ARN, never the keys"
            )
        if trading is not None and trading.trading_mode != "paper" and secret_arn is None:
            problems.append(
                f"BROKER_SECRET_ARN is not set: tradingMode {trading.trading_mode} needs the ARN "
                'of a secret holding {"key_id": ..., "secret_key": ...}'
            )
        broker_url = env.get("BROKER_URL", "").strip() or None
        if broker_url is not None and not _URL_RE.match(broker_url):
            problems.append(f"BROKER_URL={broker_url!r} is invalid: an http(s) URL")

        heartbeat = Path(env.get("HEARTBEAT_FILE", "").strip() or DEFAULT_HEARTBEAT)
        poll = _poll(env.get("POLL_SECONDS", "").strip(), problems)
        log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(
                f"LOG_LEVEL={log_level!r} is invalid: use one of {', '.join(LOG_LEVELS)}"
            )

        if problems or trading is None:
            raise ServiceSettingsError(problems)
        return cls(
            environment=environment,
            bucket_name=bucket,
            data_prefix=data_prefix,
            logs_prefix=logs_prefix,
            market_data_table=market,
            ledger_table=ledger,
            symbols=tuple(symbols),
            trading=trading,
            broker_secret_arn=secret_arn,
            broker_url=broker_url,
            heartbeat_file=heartbeat,
            poll_seconds=poll,
            log_level=log_level,
        )


def _symbols(raw: str, problems: list[str]) -> list[str]:
    symbols: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            ticker = normalise_ticker(part)
        except ValueError as err:
            problems.append(f"SYMBOLS: {err}")
            continue
        if ticker not in symbols:
            symbols.append(ticker)
    if not symbols:
        problems.append("SYMBOLS is not set: a comma-separated list of tickers, e.g. SPY,QQQ")
    elif len(symbols) > MAX_SYMBOLS:
        problems.append(f"SYMBOLS lists {len(symbols)} tickers: at most {MAX_SYMBOLS}")
    return symbols


def _poll(raw: str, problems: list[str]) -> float:
    if not raw:
        return DEFAULT_POLL_SECONDS
    try:
        poll = float(raw)
    except ValueError:
        poll = math.nan
    if not math.isfinite(poll) or not 0.0 <= poll <= 3600.0:
        problems.append(f"POLL_SECONDS={raw!r} is invalid: seconds, 0-3600")
        return DEFAULT_POLL_SECONDS
    return poll


def _trading(text: str, environment: str, problems: list[str]) -> TradingConfig | None:
    if not text.strip():
        problems.append(
            "TRADING_CONFIG is not set: the JSON of the stack's trading keys "
            "(TradingConfig.to_json(), docs/CONTRACTS.md section 10)"
        )
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        problems.append(f"TRADING_CONFIG is not JSON: {err.msg} at character {err.pos}")
        return None
    if not isinstance(raw, dict):
        problems.append("TRADING_CONFIG must be a JSON object of the trading keys")
        return None
    given = raw.get("environment")
    if given and environment and given != environment:
        problems.append(
            f"TRADING_CONFIG: environment {given!r} does not match ENVIRONMENT={environment!r}"
        )
        return None
    try:
        # The task's own ENVIRONMENT decides: live trading is refused off prod here too.
        return parse_trading_config({**raw, "environment": environment or given})
    except TradingConfigError as err:
        problems.extend(f"TRADING_CONFIG: {line}" for line in err.problems)
        return None
