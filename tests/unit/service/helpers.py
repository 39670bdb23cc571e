"""The strategy service's world in moto: market data stored in the section 8 layout by
the fetcher's own writers (S3 history, index, table, LATEST), the ledger table and the
bucket, and the environment the task would get."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from backend.index import Series, update_index
from backend.layout import bar_object_key, index_key
from backend.storage import DynamoTable, S3ObjectStore, bar_items, latest_item
from backend.trading.dynamo import ensure_table
from backend.trading.settings import parse_trading_config

BUCKET = "ctb-service-test"
MARKET = "cloud-trading-bot-test-market-data"
LEDGER = "cloud-trading-bot-test-ledger"
DATA_PREFIX = "data/test/"
# The variables the service cannot start without, in the order its settings check them
# (docs/CONTRACTS.md section 10); the optional ones have defaults.
REQUIRED_ENV = (
    "ENVIRONMENT",
    "BUCKET_NAME",
    "DATA_PREFIX",
    "LOGS_PREFIX",
    "MARKET_DATA_TABLE",
    "LEDGER_TABLE",
    "SYMBOLS",
    "TRADING_CONFIG",
)


def put_bars(ddb, s3, bars) -> None:
    """Store `bars` as the fetcher does (docs/CONTRACTS.md section 8), with its own
    writers: final bars merged into their S3 year objects, the index updated, every bar
    in the table (unfinished ones with final=false), LATEST = each symbol's newest final
    bar. Bars arrive in time order, as runs store them."""
    objects = S3ObjectStore(client=s3, bucket=BUCKET)
    table = DynamoTable(client=ddb, table_name=MARKET)
    by_symbol: dict[str, list] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, []).append(bar)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    updates = []
    for symbol, series in by_symbol.items():
        finals = [b for b in series if b.final]
        by_key: dict[str, list] = {}
        for bar in finals:
            by_key.setdefault(bar_object_key(DATA_PREFIX, symbol, "1d", bar.timestamp), []).append(
                bar
            )
        merged = [objects.merge_bars(key, group) for key, group in sorted(by_key.items())]
        if finals:
            updates.append(
                Series(
                    symbol=symbol,
                    interval="1d",
                    first=finals[0].iso_time,
                    last=series[-1].iso_time,
                    last_final=finals[-1].iso_time,
                    object_bars={m.key: m.bars for m in merged},
                )
            )
        items = bar_items(series)
        if finals:
            items.append(
                latest_item(
                    finals[-1], period="5d", indicators={}, history=len(finals), fetched_at=now
                )
            )
        table.put_items(items)
    update_index(objects, index_key(DATA_PREFIX), updates, now=now)


def create_world(ddb, s3) -> None:
    ensure_table(ddb, MARKET)
    ensure_table(ddb, LEDGER)
    s3.create_bucket(Bucket=BUCKET)


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
