"""Stored bar history, read the way the fetcher writes it (docs/CONTRACTS.md section 8):
the index `<DATA_PREFIX>index.json` names every object, and each JSON-lines object holds
final raw bars, oldest first. A reader never lists the bucket.

The format is the fetcher's own code: `backend.index.Index` parses the index and
`backend.storage.decode_bars` the objects, so reader and writer cannot drift apart. What
this module adds is where the bytes come from, two sources with one method:
`DirectorySource` (a local copy of `data/<env>/`, for `--data DIR`) and `S3Source` (a
bucket, through `backend.storage.S3ObjectStore`), and errors that name the file: a bad
file is one line, `<file> line <n> is not a stored bar (...)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from backend.index import Index, IndexFormatError, Series
from backend.layout import INDEX_NAME
from backend.models import Bar
from backend.storage import S3ObjectStore, StorageError, decode_bars

# Objects read at once: below botocore's default pool of 10 connections per client, so
# no thread ever waits for (or urllib3 warns about) a connection.
READ_WORKERS = 8


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
        except OSError as err:
            raise HistoryError(f"{self.where(key)}: {err.strerror or err}") from None

    def where(self, key: str) -> str:
        return str(self._path(key))


class S3Source:
    """Objects of one bucket. Keys are full keys (`data/dev/index.json`)."""

    def __init__(self, *, client: Any, bucket: str):
        self._store = S3ObjectStore(client=client, bucket=bucket)
        self._bucket = bucket

    def read(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            lookup = self._store.get(key)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "error")
            raise HistoryError(f"{self.where(key)}: {code}") from None
        if lookup.denied:
            # Without s3:ListBucket S3 answers 403 for a missing key too.
            raise HistoryError(
                f"{self.where(key)}: access denied (or no such object): reading stored bars "
                "needs s3:GetObject on the data prefix"
            )
        return lookup.stored.body if lookup.stored else None

    def where(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}"


def load_index(source: ObjectSource, index_key: str) -> Index:
    data = source.read(index_key)
    if data is None:
        raise HistoryError(
            f"{source.where(index_key)} does not exist: no market data has been stored "
            "there yet (run the fetcher first, or point at a copy of data/<env>/)"
        )
    try:
        return Index.from_bytes(data)
    except IndexFormatError as err:
        raise HistoryError(f"{source.where(index_key)}: {err}") from None


def read_series(source: ObjectSource, series: Series, *, newest: int | None = None) -> list[Bar]:
    """The series' bars, oldest first, one per time. `newest`: read objects from the
    newest back only until at least that many bars are in hand (a warm-up)."""
    by_time: dict[datetime, Bar] = {}
    # Keys end in year=YYYY.jsonl or date=YYYY-MM-DD.jsonl: name order is time order.
    for key in sorted(series.object_bars, reverse=True):
        body = source.read(key)
        if body is None:
            raise HistoryError(f"{source.where(key)} is listed in the index but missing")
        try:
            bars = decode_bars(body, key=source.where(key))
        except StorageError as err:
            raise HistoryError(str(err)) from None
        for bar in bars:
            by_time.setdefault(bar.timestamp, bar)
        if newest is not None and len(by_time) >= newest:
            break
    ordered = [by_time[t] for t in sorted(by_time)]
    return ordered if newest is None else ordered[-newest:]


def load_history(
    source: ObjectSource,
    index_key: str = INDEX_NAME,
    *,
    interval: str = "1d",
    symbols: Iterable[str] | None = None,
    newest: int | None = None,
    index: Index | None = None,
) -> dict[str, list[Bar]]:
    """Every stored bar of the chosen series (or the `newest` per symbol), per symbol,
    oldest first. Symbols asked for but not stored are an error naming them."""
    if index is None:
        index = load_index(source, index_key)
    wanted = None if symbols is None else sorted(set(symbols))
    chosen = [
        s
        for s in index.series.values()
        if s.interval == interval and (wanted is None or s.symbol in wanted)
    ]
    if wanted is not None:
        missing = sorted(set(wanted) - {s.symbol for s in chosen})
        if missing:
            raise HistoryError(
                f"{source.where(index_key)}: no {interval} bars stored for {', '.join(missing)}"
            )
    if not chosen:
        return {}
    with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(chosen))) as pool:
        read = list(pool.map(lambda s: read_series(source, s, newest=newest), chosen))
    return {s.symbol: bars for s, bars in sorted(zip(chosen, read, strict=True), key=_symbol)}


def _symbol(pair: tuple[Series, list[Bar]]) -> str:
    return pair[0].symbol
