"""The runtime's settings: read from the environment in this one place, and validated.

The infrastructure sets these variables (docs/CONTRACTS.md section 3, docs/runtime.md).
Every problem is reported at once, each naming its variable and how to fix it, so
one `{"test": true}` invocation shows a broken deployment's whole story.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from backend.models import MAX_SYMBOLS, normalise_ticker

PROVIDERS = ("yfinance", "fixture")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

ENVIRONMENT_RE = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
# S3 bucket naming rules, without the rarer IP-address and dot-adjacency cases.
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./=-]*/$")


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid Lambda environment: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Settings:
    environment: str
    bucket_name: str
    data_prefix: str
    logs_prefix: str
    table_name: str
    api_key_secret_arn: str | None  # None: no secret configured (the yfinance provider needs none)
    symbols: tuple[str, ...]
    provider: str
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        problems: list[str] = []

        def required(name: str, pattern: re.Pattern[str], hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set: {hint}")
            elif not pattern.match(value):
                problems.append(f"{name}={value!r} is invalid: {hint}")
            return value

        environment = required("ENVIRONMENT", ENVIRONMENT_RE, "lower-case name like 'dev'")
        bucket = required("BUCKET_NAME", BUCKET_RE, "an S3 bucket name")
        data_prefix = required(
            "DATA_PREFIX", _PREFIX_RE, "a key prefix ending in '/', e.g. data/dev/"
        )
        logs_prefix = required(
            "LOGS_PREFIX", _PREFIX_RE, "a key prefix ending in '/', e.g. logs/dev/"
        )
        if ".." in data_prefix or ".." in logs_prefix:
            problems.append("DATA_PREFIX/LOGS_PREFIX must not contain '..'")
        table = required("TABLE_NAME", _TABLE_RE, "a DynamoDB table name")

        # Only the ARN travels in the environment, never the key itself.
        secret_arn = env.get("API_KEY_SECRET_ARN", "").strip() or None
        if secret_arn is not None and not _SECRET_ARN_RE.match(secret_arn):
            problems.append(
                "API_KEY_SECRET_ARN is not a Secrets Manager ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>); "
                "it must hold the secret's ARN, never its value"
            )

        symbols = _symbols(env.get("SYMBOLS", ""), problems)

        provider = env.get("MARKET_DATA_PROVIDER", "").strip() or "yfinance"
        if provider not in PROVIDERS:
            problems.append(
                f"MARKET_DATA_PROVIDER={provider!r} is invalid: use one of {', '.join(PROVIDERS)}"
            )

        log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
        if log_level not in LOG_LEVELS:
            problems.append(
                f"LOG_LEVEL={log_level!r} is invalid: use one of {', '.join(LOG_LEVELS)}"
            )

        if problems:
            raise SettingsError(problems)
        return cls(
            environment=environment,
            bucket_name=bucket,
            data_prefix=data_prefix,
            logs_prefix=logs_prefix,
            table_name=table,
            api_key_secret_arn=secret_arn,
            symbols=symbols,
            provider=provider,
            log_level=log_level,
        )


def _symbols(raw: str, problems: list[str]) -> tuple[str, ...]:
    parts = [p for p in (s.strip() for s in raw.split(",")) if p]
    if not parts:
        problems.append("SYMBOLS is not set: a comma-separated list of tickers, e.g. SPY,QQQ,AAPL")
        return ()
    tickers: list[str] = []
    for part in parts:
        try:
            ticker = normalise_ticker(part)
        except ValueError as err:
            problems.append(f"SYMBOLS: {err}")
            continue
        if ticker not in tickers:
            tickers.append(ticker)
    if len(tickers) > MAX_SYMBOLS:
        problems.append(f"SYMBOLS lists {len(tickers)} tickers: at most {MAX_SYMBOLS}")
    return tuple(tickers)
