"""Where the runtime writes: S3 keys and DynamoDB keys. Pure functions, documented in
docs/runtime.md; the execution role may write only under DATA_PREFIX and LOGS_PREFIX."""

from __future__ import annotations

from datetime import date

LATEST_SK = "LATEST"
# DynamoDB keeps recent bars for the bot; S3 keeps the history. The TTL attribute is
# `expires_at` (docs/CONTRACTS.md section 5).
BAR_TTL_SECONDS = 90 * 86400  # after the bar's own time
LATEST_TTL_SECONDS = 30 * 86400  # after the fetch: a symbol no longer fetched fades out
MAX_TABLE_BARS = 100  # most recent bars per symbol and interval written to the table


def bar_object_key(data_prefix: str, symbol: str, interval: str, day: date) -> str:
    # One object per (symbol, interval, UTC date): a re-run overwrites it, never duplicates.
    return f"{data_prefix}market/symbol={symbol}/interval={interval}/date={day:%Y-%m-%d}.json"


def run_record_key(logs_prefix: str, day: date, request_id: str) -> str:
    return f"{logs_prefix}market_data_fetcher/date={day:%Y-%m-%d}/{request_id}.json"


def bar_pk(symbol: str, interval: str) -> str:
    return f"BAR#{symbol}#{interval}"


def bar_sk(iso_time: str) -> str:
    # ISO-8601 UTC strings sort in time order, so a Query on the pk reads bars in order.
    return f"TS#{iso_time}"
