"""The SHA-256 checksums S3 stores for an upload, computed locally.

A single PUT stores the file's SHA-256. A multipart upload with
ChecksumAlgorithm=SHA256 stores a COMPOSITE checksum (SHA-256 has no FULL_OBJECT
type; only the CRCs do): the SHA-256 of the concatenated raw part digests, so it
depends on where the parts are cut. s3transfer cuts them; `layout_for` asks its
own ChunksizeAdjuster where, so the local value matches S3's byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
# Above this size the file goes up in parts, in parallel, each with its own
# checksum: a failed part is retried alone, and the progress bar has something to
# show. S3 needs parts of at least 5 MiB.
MULTIPART_THRESHOLD = 16 * MiB
PART_SIZE = 8 * MiB
S3_MIN_PART = 5 * MiB
S3_MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartLayout:
    """How s3transfer sends a file: one PUT (part_size 0), or parts of part_size bytes."""

    size: int
    part_size: int = 0

    @property
    def multipart(self) -> bool:
        return self.part_size > 0

    @property
    def parts(self) -> int:
        return len(self.ranges()) if self.multipart else 1

    def ranges(self) -> list[tuple[int, int]]:
        return part_ranges(self.size, self.part_size or max(self.size, 1))


def layout_for(size: int, *, threshold: int, part_size: int) -> PartLayout:
    """s3transfer's own decision: multipart from `threshold` bytes on (>=), with the
    part size its ChunksizeAdjuster picks (at least 5 MiB, at most 10,000 parts)."""
    from s3transfer.utils import ChunksizeAdjuster

    if size < threshold:
        return PartLayout(size)
    return PartLayout(size, ChunksizeAdjuster().adjust_chunksize(part_size, size))


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each part; S3 allows at most 10,000 parts, so the part
    size doubles for very large files, as s3transfer's does."""
    while size > part_size * S3_MAX_PARTS:
        part_size *= 2
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)] or [
        (0, 0)
    ]


def hash_file(path: Path, part_size: int, *, parts: bool = True) -> tuple[str, list[bytes]]:
    """One read: the file's sha256 (hex) and, if asked, each part's raw sha256
    digest. The whole-file digest runs in a worker thread (hashlib releases the
    GIL), so the two digests cost about one pass of wall time on two cores."""
    whole = hashlib.sha256()
    digests: list[bytes] = []
    pending: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1) as pool, open(path, "rb") as fh:
        for _offset, length in part_ranges(path.stat().st_size, part_size):
            chunk = fh.read(length)
            if not parts:
                whole.update(chunk)
                continue
            if pending is not None:
                pending.result()  # keeps updates in order and memory bounded
            pending = pool.submit(whole.update, chunk)
            digests.append(hashlib.sha256(chunk).digest())
        if pending is not None:
            pending.result()
    return whole.hexdigest(), digests


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart upload with ChecksumAlgorithm=SHA256:
    base64(sha256(digest1 || digest2 || ...)) + "-<parts>"."""
    return f"{b64(hashlib.sha256(b''.join(part_digests)).digest())}-{len(part_digests)}"


def same_checksum(stored: str | None, expected: str) -> bool:
    """S3 returns a multipart object's checksum as "<base64>-<parts>"; some stores
    (moto) leave the suffix off. The digest must match either way, and a suffix,
    when present, must give the same number of parts."""
    if stored is None:
        return False
    if stored == expected:
        return True
    base, _, parts = expected.partition("-")
    return bool(parts) and stored == base
