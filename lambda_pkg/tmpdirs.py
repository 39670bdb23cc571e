"""Work directories under <cache>/tmp that a killed build never leaves behind for long.

Each work directory holds an `.owner` file its build keeps locked (flock) while it
runs. The kernel drops the lock when the process dies, however it dies (SIGKILL
included), so the next build removes every directory whose lock it can take: those
are leftovers. A directory without an owner file yet (being created right now) is
left alone unless it is over an hour old.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

OWNER = ".owner"
_ORPHAN_AGE = 3600


def try_lock(fd: int) -> bool:
    """Take an exclusive flock on fd if no other process holds one; False if one does."""
    try:
        import fcntl
    except ImportError:  # not POSIX: never sweep
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep(tmp_root: Path) -> list[Path]:
    """Remove the work directories of builds that are no longer running."""
    removed: list[Path] = []
    if not tmp_root.is_dir():
        return removed
    for entry in tmp_root.iterdir():
        if not entry.is_dir() or entry.is_symlink():
            with contextlib.suppress(OSError):  # an owner file never moved into its directory
                if (
                    entry.name.startswith(OWNER)
                    and time.time() - entry.stat().st_mtime > _ORPHAN_AGE
                ):
                    entry.unlink()
            continue
        owner = entry / OWNER
        try:
            fd = os.open(owner, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            with contextlib.suppress(OSError):
                if time.time() - entry.stat().st_mtime > _ORPHAN_AGE:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry)
            continue
        try:
            if try_lock(fd):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def work_dir(cache_dir: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory under <cache>/tmp, locked while the block runs, removed after;
    leftovers of killed builds are swept first."""
    tmp_root = cache_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    sweep(tmp_root)
    # The owner file is locked before it is moved into the directory, so a sweep never
    # sees a directory with an unlocked owner file while its build is alive.
    fd, owner = tempfile.mkstemp(prefix=OWNER, dir=tmp_root)
    try_lock(fd)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=tmp_root))
    try:
        os.replace(owner, work / OWNER)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(owner)
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` while the block runs (builds of the same inputs,
    or downloads into the same wheel store, one at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, os.replace still keeps every file whole
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
