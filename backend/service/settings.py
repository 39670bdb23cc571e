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

from backend.settings import TABLE_RE, EnvReader
from backend.trading.settings import TradingConfig, TradingConfigError, parse_trading_config

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
        read = EnvReader(env)
        environment, bucket, data_prefix, logs_prefix = read.location()
        market = read.required("MARKET_DATA_TABLE", TABLE_RE, "the market-data table's name")
        ledger = read.required("LEDGER_TABLE", TABLE_RE, "the ledger table's name")
        symbols = read.symbols()
        trading = _trading(read.get("TRADING_CONFIG"), environment, read.problems)
        secret_arn = read.secret_arn("BROKER_SECRET_ARN")
        if trading is not None and trading.trading_mode != "paper" and secret_arn is None:
            read.problems.append(
                f"BROKER_SECRET_ARN is not set: tradingMode {trading.trading_mode} needs the ARN "
                'of a secret holding {"key_id": ..., "secret_key": ...}'
            )
        broker_url = read.get("BROKER_URL") or None
        if broker_url is not None and not _URL_RE.match(broker_url):
            read.problems.append(f"BROKER_URL={broker_url!r} is invalid: an http(s) URL")
        heartbeat = Path(read.get("HEARTBEAT_FILE") or DEFAULT_HEARTBEAT)
        poll = _poll(read.get("POLL_SECONDS"), read.problems)
        log_level = read.log_level()
        if read.problems or trading is None:
            raise ServiceSettingsError(read.problems)
        return cls(
            environment=environment,
            bucket_name=bucket,
            data_prefix=data_prefix,
            logs_prefix=logs_prefix,
            market_data_table=market,
            ledger_table=ledger,
            symbols=symbols,
            trading=trading,
            broker_secret_arn=secret_arn,
            broker_url=broker_url,
            heartbeat_file=heartbeat,
            poll_seconds=poll,
            log_level=log_level,
        )


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
