"""The per-environment index `<DATA_PREFIX>index.json`: which series exist, their first
and last bars, and every object that holds them, so a reader never lists the bucket
(docs/CONTRACTS.md section 8).

The fetcher writes it after the bars, as a read-modify-write with S3 conditional
writes (`S3ObjectStore.update`): a run that lost a race to another run re-reads the
index and applies its own changes again, so neither run's series is lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from backend import jsonlog
from backend.storage import S3ObjectStore

VERSION = 1


class IndexFormatError(ValueError):
    """The stored index is not one this version can read."""


@dataclass(frozen=True, slots=True)
class Series:
    """One (symbol, interval) series. `first`, `last_final` and `bars` describe the
    final bars in S3; `last` is the newest bar stored anywhere (an unfinished bar lives
    in the table only). `object_bars` counts the bars in each object, so `bars` stays
    exact whichever run rewrote which object."""

    symbol: str
    interval: str
    first: str | None
    last: str | None
    last_final: str | None
    object_bars: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.symbol}/{self.interval}"

    @property
    def bars(self) -> int:
        return sum(self.object_bars.values())

    def to_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "first": self.first,
            "last": self.last,
            "last_final": self.last_final,
            "bars": self.bars,
            "objects": sorted(self.object_bars),
            "object_bars": dict(sorted(self.object_bars.items())),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> Series:
        counts = doc.get("object_bars")
        objects = doc.get("objects")
        object_bars: dict[str, int] = {}
        if isinstance(counts, dict):
            object_bars = {str(k): int(v) for k, v in counts.items()}
        elif isinstance(objects, list):
            object_bars = {str(k): 0 for k in objects}
        return cls(
            symbol=_text(doc, "symbol"),
            interval=_text(doc, "interval"),
            first=_optional(doc, "first"),
            last=_optional(doc, "last"),
            last_final=_optional(doc, "last_final"),
            object_bars=object_bars,
        )

    def merge(self, update: Series) -> Series:
        """This series with `update`'s news: bounds widen, object counts are replaced."""
        return replace(
            self,
            first=_min(self.first, update.first),
            last=_max(self.last, update.last),
            last_final=_max(self.last_final, update.last_final),
            object_bars={**self.object_bars, **update.object_bars},
        )


@dataclass(frozen=True, slots=True)
class Index:
    updated_at: str | None = None
    series: Mapping[str, Series] = field(default_factory=dict)

    def get(self, symbol: str, interval: str) -> Series | None:
        return self.series.get(f"{symbol}/{interval}")

    def with_updates(self, updates: Iterable[Series], *, now: datetime) -> Index:
        series = dict(self.series)
        changed = False
        for update in updates:
            old = series.get(update.key)
            new = old.merge(update) if old else update
            if new != old:
                series[update.key] = new
                changed = True
        if not changed:
            return self
        return Index(updated_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), series=series)

    def to_bytes(self) -> bytes:
        doc = {
            "version": VERSION,
            "updated_at": self.updated_at,
            "series": {k: self.series[k].to_json() for k in sorted(self.series)},
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, body: bytes | None) -> Index:
        if not body:
            return cls()
        try:
            doc = json.loads(body)
        except ValueError as err:
            raise IndexFormatError(f"not JSON: {err}") from None
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            raise IndexFormatError(f"expected an object with version {VERSION}")
        raw = doc.get("series")
        if not isinstance(raw, dict):
            raise IndexFormatError("'series' must be an object")
        series = {}
        for name, entry in raw.items():
            # Name the entry: a reader's error must say where to look.
            if not isinstance(entry, dict):
                raise IndexFormatError(f"series.{name} must be an object")
            try:
                series[str(name)] = Series.from_json(entry)
            except (TypeError, ValueError) as err:
                raise IndexFormatError(f"series.{name}: {err}") from None
        updated = doc.get("updated_at")
        return cls(updated_at=updated if isinstance(updated, str) else None, series=series)


def _text(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _optional(doc: Mapping[str, object], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) else None


def _min(a: str | None, b: str | None) -> str | None:
    # ISO-8601 UTC strings of one format compare in time order.
    return b if a is None else a if b is None else min(a, b)


def _max(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)


def read_index(objects: S3ObjectStore, key: str) -> Index:
    """The index as it is now, for deciding what a run must write. Unreadable or
    missing reads as empty, which only makes the run write more than it needs to."""
    try:
        lookup = objects.get(key)
        return Index.from_bytes(lookup.stored.body if lookup.stored else None)
    except Exception as err:  # a run must not fail because its hint is unreadable
        jsonlog.log(
            logging.WARNING, "index unreadable", key=key, error=f"{type(err).__name__}: {err}"
        )
        return Index()


def update_index(
    objects: S3ObjectStore, key: str, updates: Iterable[Series], *, now: datetime
) -> bool:
    """Apply `updates` to the stored index with conditional writes (retrying on a lost
    race). Returns whether it was written (False: nothing new). A stored index this
    version cannot read is replaced, and an ERROR line says so: the bars are intact,
    and a run with a long period (e.g. {"period": "max"}) lists its objects again."""
    changes = list(updates)

    def change(current: bytes | None) -> bytes:
        try:
            index = Index.from_bytes(current)
        except IndexFormatError as err:
            jsonlog.log(logging.ERROR, "index replaced", key=key, error=str(err))
            index = Index()
        return index.with_updates(changes, now=now).to_bytes() if changes else (current or b"")

    if not changes:
        return False
    _, written = objects.update(key, change, content_type="application/json")
    return written
