"""Deterministic zip files, written by hand so that every byte is chosen here.

zipfile.ZipFile cannot copy an already-compressed member, and it writes extra
fields and host data we would have to undo. This writer emits, per entry: a fixed
timestamp (1980-01-01 00:00), mode 0644 or 0755, "made by Unix", no extra fields,
no data descriptors, names sorted; and nothing host-specific at all.

The dependencies are kept in a *segment* (segment.bin: the compressed payloads
back to back, plus an index in segment.json), so a code-only rebuild copies their
compressed bytes as they are instead of compressing them again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_pkg.errors import InternalError, UserError

# Every entry we compress uses this level: zlib's default, the level wheels use too.
COMPRESS_LEVEL = 6
STORED, DEFLATED = 0, 8
DOS_TIME = 0  # 00:00:00
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the earliest date a zip can hold
_MADE_BY = (3 << 8) | 20  # create_system 3 (Unix), spec version 2.0
_NEEDED = 20
_UTF8 = 0x800
_S_IFREG = 0o100000
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_FLUSH_AT = 1 << 20
_DIRECT_AT = 64 << 10


@dataclass(frozen=True, slots=True)
class Entry:
    """One file in a zip: its name, mode and compressed payload."""

    name: str
    mode: int
    method: int
    crc: int
    size: int  # uncompressed bytes
    data: bytes | memoryview  # the compressed payload


def normalize_mode(st_mode: int) -> int:
    """0755 if any execute bit is set, else 0644: what the umask or checkout did is irrelevant."""
    return 0o755 if st_mode & 0o111 else 0o644


def make_entry(name: str, content: bytes, mode: int = 0o644) -> Entry:
    """Compress content at the fixed level; store it when deflate would not help."""
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    packed = compressor.compress(content) + compressor.flush()
    crc = zlib.crc32(content)
    if len(packed) >= len(content):
        return Entry(name, mode, STORED, crc, len(content), content)
    return Entry(name, mode, DEFLATED, crc, len(content), packed)


def renamed(entry: Entry, name: str) -> Entry:
    return Entry(name, entry.mode, entry.method, entry.crc, entry.size, entry.data)


def check_order(entries: Sequence[Entry]) -> None:
    for before, after in itertools.pairwise(entries):
        if before.name >= after.name:
            raise InternalError(f"zip entries not sorted or duplicated at {after.name!r}")


class _Sink:
    """Buffers small writes, and hashes exactly the bytes that reach the file. A large
    payload (a slice of the cached segment's mmap) goes to the file as it is: copying
    50 MB through a buffer was most of a code-only rebuild."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.digest, self.pos, self.buf = fh, hashlib.sha256(), 0, bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.pos += len(data)
        if len(data) >= _DIRECT_AT:
            self.flush()
            self.fh.write(data)
            self.digest.update(data)
            return
        self.buf += data
        if len(self.buf) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.fh.write(self.buf)
            self.digest.update(self.buf)
            self.buf = bytearray()


def write_zip(path: Path, entries: Sequence[Entry]) -> tuple[str, int]:
    """Write entries (already sorted) to path; return (sha256 hex, size in bytes)."""
    check_order(entries)
    central = bytearray()
    with open(path, "wb") as fh:
        sink = _Sink(fh)
        for entry in entries:
            name = entry.name.encode("utf-8")
            flags = 0 if name.isascii() else _UTF8
            offset = sink.pos
            if offset > 0xFFFFFFFF:
                raise UserError("the package is over 4 GiB; Lambda cannot take it")
            fields = (entry.method, DOS_TIME, DOS_DATE, entry.crc, len(entry.data), entry.size)
            sink.write(_LOCAL.pack(0x04034B50, _NEEDED, flags, *fields, len(name), 0))
            sink.write(name)
            sink.write(entry.data)
            central += _CENTRAL.pack(
                0x02014B50, _MADE_BY, _NEEDED, flags, *fields, len(name), 0, 0, 0, 0,
                (_S_IFREG | entry.mode) << 16, offset,
            )  # fmt: skip
            central += name
        cd_offset, count = sink.pos, len(entries)
        sink.write(central)
        if count > 0xFFFF or cd_offset > 0xFFFFFFFF:
            # Zip64 end records: more entries than the classic 16-bit count can hold.
            end64 = sink.pos
            sink.write(
                _END64.pack(0x06064B50, 44, _MADE_BY, _NEEDED, 0, 0, count, count,
                            len(central), cd_offset)
            )  # fmt: skip
            sink.write(_LOCATOR64.pack(0x07064B50, 0, end64, 1))
            sink.write(_END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
        else:
            sink.write(_END.pack(0x06054B50, 0, 0, count, count, len(central), cd_offset, 0))
        sink.flush()
        size = sink.pos
        fh.flush()
        os.fsync(fh.fileno())
    return sink.digest.hexdigest(), size


# --- segments: pre-compressed entries kept in the dependency cache -----------------


def write_segment(directory: Path, entries: Iterable[Entry], meta: dict[str, Any]) -> None:
    """Write segment.bin (payloads back to back) and segment.json (index + meta)."""
    index = []
    offset = 0
    with open(directory / "segment.bin", "wb") as fh:
        for e in entries:
            fh.write(e.data)
            index.append([e.name, e.mode, e.method, e.crc, e.size, offset, len(e.data)])
            offset += len(e.data)
    (directory / "segment.json").write_text(
        json.dumps({**meta, "entries": index}, sort_keys=True, separators=(",", ":")),
        encoding="utf-8",
    )


def read_segment(directory: Path) -> tuple[list[Entry], dict[str, Any]]:
    """Load a segment's entries; payloads are slices of a read-only mmap (no copy)."""
    meta = json.loads((directory / "segment.json").read_text(encoding="utf-8"))
    rows = meta.pop("entries")
    with open(directory / "segment.bin", "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        view = memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)) if size else None
    entries = [
        Entry(name, mode, method, crc, usize, view[off : off + clen] if view else b"")
        for name, mode, method, crc, usize, off, clen in rows
    ]
    return entries, meta
