"""Test mode (`{"test": true}`): check configuration and access, write nothing.

Every check uses only an action the execution role already needs (docs/runtime.md),
so a passing report means the real run will be allowed too:
  settings  the environment variables parse (SettingsError lists every problem);
  provider  the provider's libraries and the calendar's are in the package (found,
            not imported); without exchange_calendars the weekday stand-in is a warning;
  secret    GetSecretValue on API_KEY_SECRET_ARN (value never shown);
  data/logs a PutObject under each prefix with an If-Match no object can satisfy:
            S3 authorises it, then refuses it, so nothing is stored;
  table     DescribeTable: the table is ACTIVE with the pk/sk key schema.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.secrets import SecretReader
from backend.settings import Settings
from backend.storage import DynamoTable, S3ObjectStore

OK, WARNING, ERROR = "ok", "warning", "error"
PROBE_NAME = "_healthcheck/write-probe"
# What each provider needs in the package, looked up without importing it.
PROVIDER_MODULES = {"yfinance": ("yfinance", "pandas", "numpy"), "fixture": ()}
CALENDAR_MODULE = "exchange_calendars"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as err:  # report every failure as a check result, never crash
        return Check(name, ERROR, f"{type(err).__name__}: {err}")


def check_provider(settings: Settings) -> Check:
    missing = [
        m for m in PROVIDER_MODULES[settings.provider] if importlib.util.find_spec(m) is None
    ]
    if missing:
        return Check(
            "provider", ERROR, f"{settings.provider}: {', '.join(missing)} not in the package"
        )
    if importlib.util.find_spec(CALENDAR_MODULE) is None:
        return Check(
            "provider",
            WARNING,
            f"{settings.provider}; {CALENDAR_MODULE} not in the package: the exchange "
            "calendar is a weekday stand-in (no holidays, no half-days)",
        )
    return Check("provider", OK, settings.provider)


def check_secret(reader: SecretReader | None) -> Check:
    if reader is None:
        return Check("secret", WARNING, "API_KEY_SECRET_ARN is not set")
    secret = reader.get()
    if secret is None:
        # The yfinance provider needs no key, so this is not an error yet.
        return Check("secret", WARNING, f"no value set in {reader.arn}")
    return Check("secret", OK, f"value set in {reader.arn}")


def check_prefix(name: str, objects: S3ObjectStore, bucket: str, prefix: str) -> Check:
    answer = objects.probe_write(f"{prefix}{PROBE_NAME}")
    return Check(
        name, OK, f"PutObject allowed on s3://{bucket}/{prefix} ({answer}, nothing written)"
    )


def check_table(table: DynamoTable) -> Check:
    description = table.describe()
    keys = {k["AttributeName"]: k["KeyType"] for k in description.get("KeySchema", [])}
    if keys != {"pk": "HASH", "sk": "RANGE"}:
        return Check("table", ERROR, f"key schema is {keys}, expected pk (HASH) and sk (RANGE)")
    status = description.get("TableStatus")
    if status != "ACTIVE":
        return Check("table", ERROR, f"{description.get('TableName')} is {status}, not ACTIVE")
    return Check("table", OK, f"{description.get('TableName')} is ACTIVE")


def run_checks(
    settings: Settings,
    *,
    objects: S3ObjectStore,
    table: DynamoTable,
    secret: SecretReader | None,
) -> list[Check]:
    return [
        Check(
            "settings",
            OK,
            f"environment {settings.environment}, provider {settings.provider}, "
            f"{len(settings.symbols)} symbols",
        ),
        _guard("provider", lambda: check_provider(settings)),
        _guard("secret", lambda: check_secret(secret)),
        _guard(
            "data_prefix",
            lambda: check_prefix(
                "data_prefix", objects, settings.bucket_name, settings.data_prefix
            ),
        ),
        _guard(
            "logs_prefix",
            lambda: check_prefix(
                "logs_prefix", objects, settings.bucket_name, settings.logs_prefix
            ),
        ),
        _guard("table", lambda: check_table(table)),
    ]


def report(checks: list[Check], **fields: Any) -> dict[str, Any]:
    return {
        "ok": all(c.status != ERROR for c in checks),
        "mode": "test",
        **fields,
        "checks": [c.to_dict() for c in checks],
    }
