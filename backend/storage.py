"""Writing bars and run records: S3 objects and DynamoDB items, behind two small classes.

Both take a boto3 client (or anything with the same methods), so the fetcher can be
tested with moto or with a plain fake. The only API calls made are listed in
docs/runtime.md, so the execution role can be scoped to exactly those.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from backend.layout import (
    BAR_TTL_SECONDS,
    LATEST_SK,
    LATEST_TTL_SECONDS,
    MAX_TABLE_BARS,
    bar_object_key,
    bar_pk,
    bar_sk,
)
from backend.models import Bar

BATCH_SIZE = 25  # DynamoDB's BatchWriteItem limit
# An ETag no object can have: S3 answers a PutObject carrying it with 412 (the key
# exists) or 404 (it does not), after authorising the write and before storing anything.
IMPOSSIBLE_ETAG = '"00000000000000000000000000000000"'


class StorageError(RuntimeError):
    """A write could not be completed."""


def encode_bars(bars: Iterable[Bar]) -> bytes:
    """JSON lines, oldest first, keys sorted: the same bars always give the same bytes."""
    ordered = sorted(bars, key=lambda b: b.timestamp)
    return b"".join(
        json.dumps(b.to_json_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for b in ordered
    )


def bars_by_day(bars: Iterable[Bar]) -> dict[date, list[Bar]]:
    days: dict[date, list[Bar]] = defaultdict(list)
    for bar in bars:
        days[bar.timestamp.date()].append(bar)
    return dict(days)


class S3ObjectStore:
    def __init__(self, *, client: Any, bucket: str):
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes, *, content_type: str) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def put_bars(
        self, data_prefix: str, symbol: str, interval: str, bars: Sequence[Bar]
    ) -> list[str]:
        keys = []
        for day, day_bars in sorted(bars_by_day(bars).items()):
            key = bar_object_key(data_prefix, symbol, interval, day)
            self.put(key, encode_bars(day_bars), content_type="application/x-ndjson")
            keys.append(key)
        return keys

    def probe_write(self, key: str) -> str:
        """Prove PutObject is allowed on `key` without writing: a conditional put that can
        never match. Returns S3's error code (PreconditionFailed or NoSuchKey) on success;
        raises botocore's ClientError for anything else (AccessDenied, NoSuchBucket...).

        HeadBucket would need s3:ListBucket, which the role does not have, and any
        unconditional write would leave something behind."""
        from botocore.exceptions import ClientError

        kwargs = {"Bucket": self._bucket, "Key": key, "Body": b""}
        try:
            if _supports_if_match(self._client):
                self._client.put_object(**kwargs, IfMatch=IMPOSSIBLE_ETAG)
            else:
                _put_with_header(self._client, kwargs, "If-Match", IMPOSSIBLE_ETAG)
        except ClientError as err:
            # Only these two codes mean "authorised, bucket exists, nothing stored";
            # NoSuchBucket is also a 404, so the status alone would not do.
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "NoSuchKey"):
                return code
            raise
        # The store ignored the condition and wrote the object. Say so loudly rather
        # than report a healthy, write-free check.
        raise StorageError(f"the S3 endpoint ignored If-Match and wrote {key!r}")


def _supports_if_match(client: Any) -> bool:
    # PutObject's IfMatch arrived in botocore 1.35 (2024); the runtime's boto3 may be older.
    model = client.meta.service_model.operation_model("PutObject")
    return "IfMatch" in model.input_shape.members


def _put_with_header(client: Any, kwargs: dict[str, Any], name: str, value: str) -> None:
    def add_header(request: Any, **_: Any) -> None:
        request.headers[name] = value

    event = "before-sign.s3.PutObject"
    client.meta.events.register_first(event, add_header, unique_id="ctb-probe-header")
    try:
        client.put_object(**kwargs)
    finally:
        client.meta.events.unregister(event, unique_id="ctb-probe-header")


def _number(value: float) -> dict[str, str]:
    # The shortest repr that round-trips, spelled as boto3's own serializer spells
    # numbers (str of a Decimal: 0.00001, 1E-7), which DynamoDB is known to accept.
    return {"N": str(Decimal(repr(value))) if isinstance(value, float) else str(value)}


def bar_items(bars: Sequence[Bar]) -> list[dict[str, Any]]:
    """Items for the most recent MAX_TABLE_BARS bars, in DynamoDB's typed form."""
    items = []
    for bar in sorted(bars, key=lambda b: b.timestamp)[-MAX_TABLE_BARS:]:
        items.append(
            {
                "pk": {"S": bar_pk(bar.symbol, bar.interval)},
                "sk": {"S": bar_sk(bar.iso_time)},
                "symbol": {"S": bar.symbol},
                "interval": {"S": bar.interval},
                "ts": {"S": bar.iso_time},
                "open": _number(bar.open),
                "high": _number(bar.high),
                "low": _number(bar.low),
                "close": _number(bar.close),
                "volume": _number(bar.volume),
                "expires_at": _number(int(bar.timestamp.timestamp()) + BAR_TTL_SECONDS),
            }
        )
    return items


def latest_item(
    bars: Sequence[Bar], *, period: str, indicators: dict[str, float], fetched_at: datetime
) -> dict[str, Any]:
    last = max(bars, key=lambda b: b.timestamp)
    item = {
        "pk": {"S": bar_pk(last.symbol, last.interval)},
        "sk": {"S": LATEST_SK},
        "symbol": {"S": last.symbol},
        "interval": {"S": last.interval},
        "period": {"S": period},
        "ts": {"S": last.iso_time},
        "open": _number(last.open),
        "high": _number(last.high),
        "low": _number(last.low),
        "close": _number(last.close),
        "volume": _number(last.volume),
        "bars": _number(len(bars)),
        "fetched_at": {"S": fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "expires_at": _number(int(fetched_at.timestamp()) + LATEST_TTL_SECONDS),
    }
    for name, value in indicators.items():
        item[name] = _number(value)
    return item


class DynamoTable:
    def __init__(
        self,
        *,
        client: Any,
        table_name: str,
        max_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._table = table_name
        self._max_attempts = max_attempts
        self._sleep = sleep

    def put_items(self, items: Sequence[dict[str, Any]]) -> int:
        """BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff.
        Returns the number of requests sent. Raises StorageError if items remain."""
        requests = 0
        for start in range(0, len(items), BATCH_SIZE):
            pending = [{"PutRequest": {"Item": it}} for it in items[start : start + BATCH_SIZE]]
            for attempt in range(self._max_attempts):
                if attempt:
                    # Unprocessed items mean the table is throttling: back off (full
                    # jitter, so parallel fetch threads do not retry in lock-step).
                    self._sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))  # noqa: S311
                response = self._client.batch_write_item(RequestItems={self._table: pending})
                requests += 1
                pending = response.get("UnprocessedItems", {}).get(self._table, [])
                if not pending:
                    break
            else:
                raise StorageError(
                    f"DynamoDB left {len(pending)} items unprocessed after "
                    f"{self._max_attempts} attempts (table {self._table} is throttling)"
                )
        return requests

    def describe(self) -> dict[str, Any]:
        return self._client.describe_table(TableName=self._table)["Table"]
