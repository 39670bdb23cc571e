"""The strategy service's world in moto: the market-data table with bars in the section 8
layout, the ledger table and the bucket, and the environment the task would get."""

from __future__ import annotations

import json
from decimal import Decimal

from backend.models import Bar
from backend.trading.dynamo import ensure_table
from backend.trading.settings import parse_trading_config

BUCKET = "ctb-service-test"
MARKET = "cloud-trading-bot-test-market-data"
LEDGER = "cloud-trading-bot-test-ledger"


def number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(value))) if isinstance(value, float) else str(value)}


def bar_item(bar: Bar) -> dict:
    return {
        "pk": {"S": f"BAR#{bar.symbol}#{bar.interval}"},
        "sk": {"S": f"TS#{bar.iso_time}"},
        "symbol": {"S": bar.symbol},
        "interval": {"S": bar.interval},
        "ts": {"S": bar.iso_time},
        "open": number(bar.open),
        "high": number(bar.high),
        "low": number(bar.low),
        "close": number(bar.close),
        "volume": number(bar.volume),
        "split": number(bar.split),
        "dividend": number(bar.dividend),
        "final": {"BOOL": bar.final},
    }


def create_world(ddb, s3) -> None:
    ensure_table(ddb, MARKET)
    ensure_table(ddb, LEDGER)
    s3.create_bucket(Bucket=BUCKET)


def put_bars(ddb, bars) -> None:
    for bar in bars:
        ddb.put_item(TableName=MARKET, Item=bar_item(bar))


def service_env(symbols, heartbeat, **trading) -> dict[str, str]:
    raw = {
        "environment": "test",
        "strategyParams": {"fast": 2, "slow": 5},
        "riskLimits": {"maxStaleBars": 1000},
        **trading,
    }
    config = parse_trading_config(raw)
    return {
        "ENVIRONMENT": "test",
        "BUCKET_NAME": BUCKET,
        "DATA_PREFIX": "data/test/",
        "LOGS_PREFIX": "logs/test/",
        "MARKET_DATA_TABLE": MARKET,
        "LEDGER_TABLE": LEDGER,
        "SYMBOLS": ",".join(symbols),
        "TRADING_CONFIG": config.to_json(),
        "HEARTBEAT_FILE": str(heartbeat),
        "POLL_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }


def wave_closes(n: int) -> list[float]:
    import math

    return [100 * (1 + 0.2 * math.sin(2 * math.pi * i / 12)) for i in range(n)]


def loads_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
