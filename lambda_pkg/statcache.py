"""Content hashes of source files, remembered by their stat stamp.

A no-change rebuild should cost little more than start-up plus a walk: a file whose
(size, mtime_ns, inode, ctime_ns) is what it was when it was last hashed still has
that hash, so only changed files are read. ctime covers an edit that restores the
mtime (`touch -r`), and a file modified within the last two seconds is not
remembered at all (on a file system with coarse timestamps a second edit in the
same tick would keep its stamp), so a stale hash is never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from lambda_pkg.artifact import write_bytes_atomic
from lambda_pkg.sources import SourceFile

_RACY_NS = 2_000_000_000


def stamp(path: Path | str) -> list[int] | None:
    """(size, mtime_ns, inode, ctime_ns) of the file itself (links followed), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


class HashCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[str, list[object]] = {}
        self.seen: dict[str, list[object]] = {}
        self.memos: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("files"), dict):
                self.known = data["files"]
                self.memos = data.get("memos") or {}
        self.changed = False
        self.now = time.time_ns()

    def recall(self, key: str) -> Any:
        """A value remembered for key, if none of the files it was derived from changed."""
        memo = self.memos.get(key)
        if not isinstance(memo, dict) or not isinstance(memo.get("stamps"), dict):
            return None
        for path, old in memo["stamps"].items():
            if stamp(path) != old:
                return None
        return memo.get("value")

    def remember(self, key: str, paths: list[Path | str], value: Any) -> None:
        stamps = {str(p): stamp(p) for p in paths}
        if any(s is None or self.now - s[1] <= _RACY_NS for s in stamps.values()):
            return
        self.memos[key] = {"stamps": stamps, "value": value}
        self.changed = True

    def digest(self, src: SourceFile) -> str:
        key = str(src.path)
        stamp = list(src.stamp)
        row = self.known.get(key)
        if isinstance(row, list) and row[:4] == stamp and isinstance(row[4], str):
            self.seen[key] = row
            return row[4]
        digest = hashlib.sha256(src.read()).hexdigest()
        if self.now - src.stamp[1] > _RACY_NS:
            self.seen[key] = [*stamp, digest]
        return digest

    def save(self) -> None:
        """Write what this walk saw (and nothing else), if it differs; best effort."""
        if self.seen == self.known and not self.changed:
            return
        data = {"files": self.seen, "memos": self.memos}
        with contextlib.suppress(OSError):
            write_bytes_atomic(self.path, json.dumps(data, separators=(",", ":")).encode())


def fingerprint(sources: list[SourceFile], cache: HashCache) -> list[list[object]]:
    """Path, mode and content hash of each file: what the input hash sees.
    Neither mtimes nor the checkout path are part of it."""
    return [[s.arcname, s.mode, cache.digest(s)] for s in sources]
