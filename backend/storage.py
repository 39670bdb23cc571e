"""Reading and writing bars and run records: S3 objects and DynamoDB items, behind two
small classes.

Both take a boto3 client (or anything with the same methods), so the fetcher can be
tested with moto or with a plain fake. The only API calls made are listed in
docs/runtime.md, so the execution role can be scoped to exactly those.

Objects that more than one run may rewrite (a year of bars, the index) are written
with S3's conditional writes: `If-None-Match: *` to create, `If-Match: <ETag>` to
replace what was read. A run that lost a race gets 412, reads again, merges again and
retries, so two overlapping runs never drop each other's bars.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from backend.layout import (
    BAR_TTL_SECONDS,
    LATEST_SK,
    LATEST_TTL_SECONDS,
    MAX_TABLE_BARS,
    bar_pk,
    bar_sk,
)
from backend.models import Bar, BarError

BATCH_SIZE = 25  # DynamoDB's BatchWriteItem limit
# An ETag no object can have: S3 answers a PutObject carrying it with 412 (the key
# exists) or 404 (it does not), after authorising the write and before storing anything.
IMPOSSIBLE_ETAG = '"00000000000000000000000000000000"'
# A conditional write that lost a race: someone else wrote the object after we read it
# (412), S3 saw two conditional writes at once (409), or it was deleted meanwhile (404).
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"}
# Without s3:ListBucket (the role has none) S3 answers a read of a missing key with 403.
_ABSENT = {"NoSuchKey", "AccessDenied"}
NDJSON = "application/x-ndjson"


class StorageError(RuntimeError):
    """A write could not be completed."""


def encode_bars(bars: Iterable[Bar]) -> bytes:
    """JSON lines, oldest first, keys sorted: the same bars always give the same bytes."""
    ordered = sorted(bars, key=lambda b: b.timestamp)
    return b"".join(
        json.dumps(b.to_json_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for b in ordered
    )


def decode_bars(body: bytes, *, key: str) -> list[Bar]:
    bars = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict):
                raise BarError("not a JSON object")
            bars.append(Bar.from_json_dict(doc))
        except (ValueError, BarError) as err:
            raise StorageError(
                f"{key} line {number} is not a stored bar ({err}); repair or delete the "
                "object, and a run with a long enough period rewrites it"
            ) from None
    return bars


@dataclass(frozen=True, slots=True)
class Stored:
    body: bytes
    etag: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a read found. `stored` is None when there is no object, or when the read
    was denied, which S3 also answers for a missing key to a role without ListBucket
    (`denied` tells the two apart for the error message, if it comes to one)."""

    stored: Stored | None
    denied: bool = False


@dataclass(frozen=True, slots=True)
class Merged:
    key: str
    written: bool  # False: the object already held exactly these bars
    bars: int  # bars in the object afterwards
    added: int  # bars it did not hold before


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class S3ObjectStore:
    def __init__(
        self,
        *,
        client: Any,
        bucket: str,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._client = client
        self._bucket = bucket
        self._max_attempts = max_attempts
        self._sleep = sleep

    def put(self, key: str, body: bytes, *, content_type: str) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> Lookup:
        from botocore.exceptions import ClientError

        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            code = _error_code(err)
            if code in _ABSENT:
                return Lookup(stored=None, denied=code == "AccessDenied")
            raise
        return Lookup(stored=Stored(body=response["Body"].read(), etag=str(response["ETag"])))

    def put_if(self, key: str, body: bytes, *, content_type: str, etag: str | None) -> bool:
        """Write `body` only if the object is still the one with `etag` (None: only if
        there is no object). False when that no longer holds; the caller reads again."""
        from botocore.exceptions import ClientError

        condition = ("IfMatch", etag) if etag is not None else ("IfNoneMatch", "*")
        kwargs = {"Bucket": self._bucket, "Key": key, "Body": body, "ContentType": content_type}
        try:
            _conditional_put(self._client, kwargs, *condition)
        except ClientError as err:
            if _error_code(err) in _LOST_RACE:
                return False
            raise
        return True

    def update(
        self,
        key: str,
        change: Callable[[bytes | None], bytes],
        *,
        content_type: str,
    ) -> tuple[bytes, bool]:
        """Read-modify-write with conditional puts: `change(current body or None)` gives
        the new body; it is called again on each retry, with what is there by then.
        Returns (body, written); an unchanged body is not rewritten (no new version)."""
        denied = False
        for attempt in range(self._max_attempts):
            if attempt:
                # Full jitter: two runs that collided should not collide again.
                self._sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))  # noqa: S311
            lookup = self.get(key)
            denied = denied or lookup.denied
            current = lookup.stored
            body = change(current.body if current else None)
            if current is not None and body == current.body:
                return body, False
            etag = current.etag if current else None
            if self.put_if(key, body, content_type=content_type, etag=etag):
                return body, True
        if denied:
            raise StorageError(
                f"s3:GetObject on {key} is denied and the object exists: the execution "
                "role needs s3:GetObject on DATA_PREFIX (docs/runtime.md)"
            )
        raise StorageError(
            f"{key} kept changing under this run ({self._max_attempts} conditional writes "
            "refused): another run is writing the same series"
        )

    def merge_bars(self, key: str, bars: Sequence[Bar]) -> Merged:
        """Add `bars` to the object at `key`. A bar already stored is kept as stored:
        stored bars are final, and a final bar never changes (docs/CONTRACTS.md §8)."""
        counts = {"bars": 0, "added": 0}

        def change(current: bytes | None) -> bytes:
            stored = {b.timestamp: b for b in decode_bars(current or b"", key=key)}
            new = {b.timestamp: b for b in bars if b.timestamp not in stored}
            counts["bars"], counts["added"] = len(stored) + len(new), len(new)
            return encode_bars([*stored.values(), *new.values()])

        _, written = self.update(key, change, content_type=NDJSON)
        return Merged(key=key, written=written, bars=counts["bars"], added=counts["added"])

    def probe_write(self, key: str) -> str:
        """Prove PutObject is allowed on `key` without writing: a conditional put that can
        never match. Returns S3's error code (PreconditionFailed or NoSuchKey) on success;
        raises botocore's ClientError for anything else (AccessDenied, NoSuchBucket...).

        HeadBucket would need s3:ListBucket, which the role does not have, and any
        unconditional write would leave something behind."""
        from botocore.exceptions import ClientError

        kwargs = {"Bucket": self._bucket, "Key": key, "Body": b""}
        try:
            _conditional_put(self._client, kwargs, "IfMatch", IMPOSSIBLE_ETAG)
        except ClientError as err:
            # Only these two codes mean "authorised, bucket exists, nothing stored";
            # NoSuchBucket is also a 404, so the status alone would not do.
            code = _error_code(err)
            if code in ("PreconditionFailed", "NoSuchKey"):
                return code
            raise
        # The store ignored the condition and wrote the object. Say so loudly rather
        # than report a healthy, write-free check.
        raise StorageError(f"the S3 endpoint ignored If-Match and wrote {key!r}")


_HEADERS = {"IfMatch": "If-Match", "IfNoneMatch": "If-None-Match"}
_pending = threading.local()


def _supports(client: Any, parameter: str) -> bool:
    # PutObject's IfNoneMatch and IfMatch arrived in botocore 1.35 (2024); the Lambda
    # runtime's boto3 may be older.
    model = client.meta.service_model.operation_model("PutObject")
    return parameter in model.input_shape.members


def _conditional_put(client: Any, kwargs: dict[str, Any], parameter: str, value: str) -> None:
    if _supports(client, parameter):
        client.put_object(**kwargs, **{parameter: value})
        return
    # An older botocore: add the header in a request hook. The hook reads it from a
    # thread-local, so the fetch threads sharing the client never see each other's.
    client.meta.events.register_first(
        "before-sign.s3.PutObject", _add_pending_headers, unique_id="ctb-conditional-put"
    )
    _pending.headers = {_HEADERS[parameter]: value}
    try:
        client.put_object(**kwargs)
    finally:
        _pending.headers = None


def _add_pending_headers(request: Any, **_: Any) -> None:
    headers = getattr(_pending, "headers", None)
    for name, value in (headers or {}).items():
        request.headers[name] = value


def _number(value: float) -> dict[str, str]:
    # The shortest repr that round-trips, spelled as boto3's own serializer spells
    # numbers (str of a Decimal: 0.00001, 1E-7), which DynamoDB is known to accept.
    return {"N": str(Decimal(repr(value))) if isinstance(value, float) else str(value)}


def _bar_attributes(bar: Bar) -> dict[str, Any]:
    return {
        "pk": {"S": bar_pk(bar.symbol, bar.interval)},
        "symbol": {"S": bar.symbol},
        "interval": {"S": bar.interval},
        "ts": {"S": bar.iso_time},
        "open": _number(bar.open),
        "high": _number(bar.high),
        "low": _number(bar.low),
        "close": _number(bar.close),
        "volume": _number(bar.volume),
        "split": _number(bar.split),
        "dividend": _number(bar.dividend),
        "final": {"BOOL": bar.final},
    }


_BAR_FIELDS = (
    "symbol", "interval", "open", "high", "low", "close", "volume", "split", "dividend", "final",
)  # fmt: skip


def _attribute(attr: Mapping[str, Any]) -> object:
    if "N" in attr:
        number = Decimal(attr["N"])
        return int(number) if number == number.to_integral_value() else float(number)
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    return attr.get("S")


def bar_from_item(item: Mapping[str, Any]) -> Bar:
    """The inverse of the bar attributes written here: a bar item, or the LATEST item's
    bar, read back and validated again (`Bar.from_json_dict`); BarError if it is not one."""
    doc = {name: _attribute(item[name]) for name in _BAR_FIELDS if name in item}
    stamp = item.get("ts")
    doc["timestamp"] = _attribute(stamp) if isinstance(stamp, Mapping) else None
    return Bar.from_json_dict(doc)


def bar_items(bars: Sequence[Bar]) -> list[dict[str, Any]]:
    """Items for the most recent MAX_TABLE_BARS bars, in DynamoDB's typed form."""
    items = []
    for bar in sorted(bars, key=lambda b: b.timestamp)[-MAX_TABLE_BARS:]:
        items.append(
            {
                **_bar_attributes(bar),
                "sk": {"S": bar_sk(bar.iso_time)},
                "expires_at": _number(int(bar.timestamp.timestamp()) + BAR_TTL_SECONDS),
            }
        )
    return items


def latest_item(
    bar: Bar,
    *,
    period: str,
    indicators: dict[str, float],
    history: int,
    fetched_at: datetime,
) -> dict[str, Any]:
    """The LATEST item: the newest final bar, raw (the newest bar is its own adjusted
    value), and the indicators over `history` adjusted final bars ending with it."""
    item = {
        **_bar_attributes(bar),
        "sk": {"S": LATEST_SK},
        "period": {"S": period},
        "bars": _number(history),
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
        description: dict[str, Any] = self._client.describe_table(TableName=self._table)["Table"]
        return description
