"""Stored bar history, read the way docs/CONTRACTS.md section 8 lays it out: the index
`<DATA_PREFIX>index.json` names every object, then each JSON-lines object holds raw bars
(oldest first). A reader never lists the bucket.

Two sources with one method: `DirectorySource` (a local copy of `data/<env>/`, for
`--data DIR`) and `S3Source` (a stack's bucket, through any boto3 S3 client).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from backend.models import Bar, BarError

INDEX_NAME = "index.json"


class HistoryError(ValueError):
    """Stored history cannot be read; the message names the file (and line or field)."""


class ObjectSource(Protocol):
    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""

    def where(self, key: str) -> str:
        """How to name the object in an error message."""


class DirectorySource:
    """`root` holds what `data/<env>/` holds: index.json and market/... Index entries name
    bucket keys (`data/dev/market/...`); they are found under `root` from `market/` on."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        direct = self.root / key
        if direct.is_file() or "market/" not in key:
            return direct
        return self.root / key[key.index("market/") :]

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def where(self, key: str) -> str:
        return str(self._path(key))


class S3Source:
    def __init__(self, *, client: Any, bucket: str):
        self._client = client
        self._bucket = bucket

    def read(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                return None
            raise HistoryError(
                f"{self.where(key)}: {err.response.get('Error', {}).get('Code', 'error')}"
            ) from None
        body: bytes = response["Body"].read()
        return body

    def where(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"


@dataclass(frozen=True, slots=True)
class SeriesEntry:
    symbol: str
    interval: str
    first: str
    last: str
    last_final: str
    bars: int
    objects: tuple[str, ...]


def parse_index(data: bytes, where: str) -> dict[str, SeriesEntry]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise HistoryError(
            f"{where}: not JSON ({err.msg if hasattr(err, 'msg') else err})"
        ) from None
    series = doc.get("series") if isinstance(doc, dict) else None
    if not isinstance(series, dict):
        raise HistoryError(f"{where}: no `series` object (docs/CONTRACTS.md section 8)")
    out = {}
    for name, entry in sorted(series.items()):
        if not isinstance(entry, dict):
            raise HistoryError(f"{where}: series.{name} is not an object")
        try:
            out[name] = SeriesEntry(
                symbol=str(entry["symbol"]),
                interval=str(entry["interval"]),
                first=str(entry.get("first", "")),
                last=str(entry.get("last", "")),
                last_final=str(entry.get("last_final", "")),
                bars=int(entry.get("bars", 0)),
                objects=tuple(str(k) for k in entry["objects"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise HistoryError(f"{where}: series.{name} lacks a valid field {err}") from None
    return out


def bar_from_json(doc: dict[str, Any]) -> Bar:
    """A stored bar (section 8): raw OHLCV plus split, dividend and final."""
    stamp = doc["timestamp"]
    if not isinstance(stamp, str):
        raise BarError(f"timestamp must be an ISO string, got {stamp!r}")
    return Bar.create(
        symbol=str(doc["symbol"]),
        interval=str(doc["interval"]),
        timestamp=datetime.fromisoformat(stamp),
        open=doc["open"],
        high=doc["high"],
        low=doc["low"],
        close=doc["close"],
        volume=doc["volume"],
        split=doc.get("split", 1.0),
        dividend=doc.get("dividend", 0.0),
        final=doc.get("final", True),
    )


def parse_bars(data: bytes, where: str) -> list[Bar]:
    bars = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            bars.append(bar_from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, ValueError, TypeError) as err:
            raise HistoryError(f"{where}:{number}: not a stored bar ({err})") from None
    return bars


def load_history(
    source: ObjectSource,
    index_key: str,
    *,
    interval: str = "1d",
    symbols: Iterable[str] | None = None,
) -> dict[str, list[Bar]]:
    """Every stored bar of the chosen series, per symbol, oldest first, duplicates (a
    bar stored twice, as final and not) resolved in favour of the last one read."""
    data = source.read(index_key)
    if data is None:
        raise HistoryError(
            f"{source.where(index_key)} does not exist: no market data has been stored "
            "there yet (run the fetcher first, or point --data at a copy of data/<env>/)"
        )
    index = parse_index(data, source.where(index_key))
    wanted = None if symbols is None else set(symbols)
    out: dict[str, list[Bar]] = {}
    for entry in index.values():
        if entry.interval != interval or (wanted is not None and entry.symbol not in wanted):
            continue
        by_time: dict[datetime, Bar] = {}
        for key in entry.objects:
            body = source.read(key)
            if body is None:
                raise HistoryError(f"{source.where(key)} is listed in the index but missing")
            for bar in parse_bars(body, source.where(key)):
                by_time[bar.timestamp] = bar
        out[entry.symbol] = [by_time[t] for t in sorted(by_time)]
    if wanted is not None:
        missing = sorted(wanted - set(out))
        if missing:
            raise HistoryError(
                f"{source.where(index_key)}: no {interval} bars stored for {', '.join(missing)}"
            )
    return out
