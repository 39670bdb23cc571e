"""Where the runtime writes: S3 keys and DynamoDB keys. Pure functions, documented in
docs/runtime.md and docs/CONTRACTS.md section 8; the execution role may write only under
DATA_PREFIX and LOGS_PREFIX."""

from __future__ import annotations

from datetime import date, datetime

from backend.models import is_intraday

LATEST_SK = "LATEST"
INDEX_NAME = "index.json"
# DynamoDB keeps recent bars for the bot; S3 keeps the history. The TTL attribute is
# `expires_at` (docs/CONTRACTS.md section 5).
BAR_TTL_SECONDS = 90 * 86400  # after the bar's own time
LATEST_TTL_SECONDS = 30 * 86400  # after the fetch: a symbol no longer fetched fades out
MAX_TABLE_BARS = 100  # most recent bars per symbol and interval written to the table


def series_prefix(data_prefix: str, symbol: str, interval: str) -> str:
    return f"{data_prefix}market/symbol={symbol}/interval={interval}/"


def bar_object_key(data_prefix: str, symbol: str, interval: str, when: datetime) -> str:
    """The object holding the bar that starts at `when`: one per year for daily and
    longer bars (about 252 lines, so a run rewrites one small object), one per UTC date
    for intraday bars (up to 1,440 lines of 1m bars)."""
    prefix = series_prefix(data_prefix, symbol, interval)
    if is_intraday(interval):
        return f"{prefix}date={when:%Y-%m-%d}.jsonl"
    return f"{prefix}year={when:%Y}.jsonl"


def index_key(data_prefix: str) -> str:
    return f"{data_prefix}{INDEX_NAME}"


def run_record_key(logs_prefix: str, day: date, request_id: str) -> str:
    return f"{logs_prefix}market_data_fetcher/date={day:%Y-%m-%d}/{request_id}.json"


def bar_pk(symbol: str, interval: str) -> str:
    return f"BAR#{symbol}#{interval}"


def bar_sk(iso_time: str) -> str:
    # ISO-8601 UTC strings sort in time order, so a Query on the pk reads bars in order.
    return f"TS#{iso_time}"
