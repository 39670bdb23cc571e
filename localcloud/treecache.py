"""Unpacked trees kept by content digest, shared by every run on the machine.

Lambda code (code.unpacked, by sha256: the local cloud's and the rehearsal's) and the
service image's own layers (by layer digest) are unpacked once into
`<cache>/<digest>/tree/`, beside a seal (`sealed.json`): a fingerprint of every entry's
path, mode, size and mtime, taken once the tree was complete. Unpacking goes into a
`.unpack-*` staging directory that is os.replace'd into place whole, so another run
sees no entry or a complete one.

Before an entry is used its tree is fingerprinted again (a stat per file, no reads):
an entry without a seal (left by an older layout) or whose tree changed since (a
handler run as root wrote into it, a file was deleted) is discarded and unpacked
afresh, never used. The tree is made read-only, as Lambda's /var/task is, so a run
as any other user cannot write into it at all.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

SEAL = "sealed.json"
TREE = "tree"
_FORMAT = 1  # bumped whenever the seal's meaning changes: older entries are then unsealed
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def cached_tree(cache: Path, key: str, fill: Callable[[Path], object]) -> tuple[Path, bool]:
    """(the tree for `key`, whether it was there before): `fill(dir)` writes the tree
    into an empty directory when no intact entry exists. Safe when runs race: the
    first to finish places its tree, the others use it."""
    entry = cache / key
    if _intact(entry):
        os.utime(entry)  # recently used: pruned last
        return entry / TREE, True
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
    try:
        fill(staging / TREE)
        seal = {"format": _FORMAT, "fingerprint": _fingerprint(staging / TREE, read_only=True)}
        (staging / SEAL).write_text(json.dumps(seal), encoding="utf-8")
        if _placed(staging, entry):
            return entry / TREE, False
        # Looked at again, not discarded on the first look: another run may have placed
        # the same digest meanwhile (same bytes, same tree), and then it is used.
        if not _intact(entry):
            _discard(cache, entry)  # partial or changed: never used
            if _placed(staging, entry):
                return entry / TREE, False
    except BaseException:
        _remove(staging)
        raise
    _remove(staging)
    return entry / TREE, True


def _placed(staging: Path, entry: Path) -> bool:
    try:
        os.replace(staging, entry)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        return False  # an entry is there
    return True


def prune(cache: Path, keep: set[str], extra: int) -> None:
    """Remove all entries but `keep` and the `extra` most recently used others."""
    aged = []
    for p in cache.iterdir():
        if p.name.startswith(".discard-"):  # a crashed run's leftover: nobody uses it
            _remove(p)
        # ".unpack-*" is another run's entry being unpacked: never ours to remove
        if p.name in keep or p.name[0] == ".":
            continue
        with contextlib.suppress(FileNotFoundError):  # another run pruned it first
            aged.append((p.stat().st_mtime, p))
    for _, old in sorted(aged, reverse=True)[extra:]:
        _discard(cache, old)


def _intact(entry: Path) -> bool:
    try:
        seal = json.loads((entry / SEAL).read_text(encoding="utf-8"))
        return bool(
            seal.get("format") == _FORMAT
            and seal.get("fingerprint") == _fingerprint(entry / TREE, read_only=False)
        )
    except (OSError, ValueError, AttributeError):  # no seal, no tree, not a JSON object
        return False


def _fingerprint(tree: Path, *, read_only: bool) -> str:
    """A digest of every entry's relative path, type and mode, size and mtime; with
    `read_only`, the write bits are dropped first (before the stat is taken)."""
    digest = hashlib.sha256()
    if read_only:
        os.chmod(tree, stat.S_IMODE(os.stat(tree).st_mode) & ~_WRITE)
    for rel, path in _walk(tree):
        if read_only:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(path, stat.S_IMODE(mode) & ~_WRITE)
        st = os.lstat(path)
        digest.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _walk(tree: Path) -> Iterator[tuple[str, str]]:
    """(relative path, path) of everything under `tree`, sorted, parents first."""
    pending = [("", str(tree))]
    while pending:
        rel_dir, directory = pending.pop()
        with os.scandir(directory) as found:
            entries = sorted(found, key=lambda e: e.name)
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            yield rel, e.path
            if e.is_dir(follow_symlinks=False):
                pending.append((rel, e.path))


def _discard(cache: Path, entry: Path) -> None:
    """Out of every run's sight first (one rename), then removed."""
    gone = cache / f".discard-{uuid.uuid4().hex}"
    try:
        os.replace(entry, gone)
    except FileNotFoundError:  # another run discarded it first
        return
    _remove(gone)


def _remove(path: Path) -> None:
    # The tree's directories are read-only: writable again, or (unless root) rmtree
    # could not unlink what they hold.
    with contextlib.suppress(FileNotFoundError):
        for directory, _, _ in os.walk(path):
            os.chmod(directory, stat.S_IRWXU)
    shutil.rmtree(path, ignore_errors=True)
