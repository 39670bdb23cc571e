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
TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
SECRET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./=-]*/$")


class SettingsError(ValueError):
    """One or more environment variables are missing or invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid Lambda environment: " + "; ".join(problems))


class EnvReader:
    """Reads variables from an environment, collecting every problem (one line each,
    naming the variable and the fix) instead of stopping at the first. Shared by this
    module and the strategy service's settings, so both read alike."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def required(self, name: str, pattern: re.Pattern[str], hint: str) -> str:
        value = self.get(name)
        if not value:
            self.problems.append(f"{name} is not set: {hint}")
        elif not pattern.match(value):
            self.problems.append(f"{name}={value!r} is invalid: {hint}")
        return value

    def location(self) -> tuple[str, str, str, str]:
        """ENVIRONMENT, BUCKET_NAME, DATA_PREFIX and LOGS_PREFIX: the stack, its bucket and
        where in it the data and logs go, which every runtime reads alike."""
        environment = self.required("ENVIRONMENT", ENVIRONMENT_RE, "a lower-case name like 'dev'")
        bucket = self.required("BUCKET_NAME", BUCKET_RE, "an S3 bucket name")
        data_prefix, logs_prefix = self.prefixes("DATA_PREFIX", "LOGS_PREFIX")
        return environment, bucket, data_prefix, logs_prefix

    def prefixes(self, *names: str) -> list[str]:
        """Key prefixes (`data/dev/`): required, ending in '/', never climbing with '..'."""
        values = [
            self.required(name, PREFIX_RE, f"a key prefix ending in '/', e.g. {example}")
            for name, example in ((n, f"{n.split('_')[0].lower()}/dev/") for n in names)
        ]
        if any(".." in value for value in values):
            self.problems.append(f"{'/'.join(names)} must not contain '..'")
        return values

    def secret_arn(self, name: str) -> str | None:
        # Only the ARN travels in the environment, never the secret itself.
        value = self.get(name) or None
        if value is not None and not SECRET_ARN_RE.match(value):
            self.problems.append(
                f"{name} is not a Secrets Manager ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>); "
                "it must hold the secret's ARN, never its value"
            )
        return value

    def symbols(self, name: str = "SYMBOLS") -> tuple[str, ...]:
        return _symbols(self.get(name), self.problems)

    def log_level(self) -> str:
        level = (self.get("LOG_LEVEL") or "INFO").upper()
        if level not in LOG_LEVELS:
            self.problems.append(
                f"LOG_LEVEL={level!r} is invalid: use one of {', '.join(LOG_LEVELS)}"
            )
        return level


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
        read = EnvReader(env)
        environment, bucket, data_prefix, logs_prefix = read.location()
        table = read.required("TABLE_NAME", TABLE_RE, "a DynamoDB table name")
        secret_arn = read.secret_arn("API_KEY_SECRET_ARN")
        symbols = read.symbols()
        provider = read.get("MARKET_DATA_PROVIDER") or "yfinance"
        if provider not in PROVIDERS:
            read.problems.append(
                f"MARKET_DATA_PROVIDER={provider!r} is invalid: use one of {', '.join(PROVIDERS)}"
            )
        log_level = read.log_level()
        if read.problems:
            raise SettingsError(read.problems)
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
