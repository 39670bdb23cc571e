"""Keep the image cache bounded: the newest images, and only the blobs they need.

After every build the image records beyond the KEEP_IMAGES most recently used are
dropped (a no-change build touches its record, so "used" means built or asked for);
then every blob no kept image reaches is deleted, with the layer and base records
that named them. A blob younger than MIN_AGE is never deleted: another build may
have just written it and not yet recorded it. Output layouts written with
`--output` hold hard links, so pruning the cache never empties them. The compiled
sources (pyc/) are bounded where they are written, as the package's are
(bytecode.compile_cached); files there named by the bare key, as builders before that
named them (only an age limit here removed them), are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from lambda_pkg.image import oci
from lambda_pkg.image.store import BlobStore

KEEP_IMAGES = 5
MIN_AGE = 600.0  # seconds


def _records(store: BlobStore, kind: str) -> list[Path]:
    directory = store.root / "records" / kind
    return list(directory.glob("*.json")) if directory.is_dir() else []


def _load(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _reached(store: BlobStore, image: dict[str, object]) -> set[str]:
    """The image's manifest, config and layers, and its base's manifest and config."""
    found = {str(image.get("digest")), str(image.get("config_digest"))}
    layers = image.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict):
            found.add(str(layer.get("digest")))
    base = image.get("base")
    if isinstance(base, dict) and base.get("digest"):
        digest = str(base["digest"])
        found.add(digest)
        with contextlib.suppress(OSError, oci.FormatError):
            found.add(oci.parse_manifest(store.read(digest), digest).config.digest)
    return found


def prune(store: BlobStore, keep: int = KEEP_IMAGES, now: float | None = None) -> int:
    """Drop old image records and unreachable blobs; returns the number of blobs deleted."""
    images = sorted(_records(store, "image"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in images[keep:]:
        old.unlink(missing_ok=True)
    reached: set[str] = set()
    for path in images[:keep]:
        reached |= _reached(store, _load(path))
    cutoff = (now if now is not None else time.time()) - MIN_AGE
    pyc = store.root / "pyc"
    for stale in list(pyc.iterdir()) if pyc.is_dir() else []:
        # The old names were the bare key; a dotted name is a .pyc or another build's
        # temp file (.<key>.<pid>.tmp), never touched here.
        if "." not in stale.name:
            stale.unlink(missing_ok=True)
    deleted = 0
    blobs = store.root / "blobs" / "sha256"
    for blob in list(blobs.iterdir()) if blobs.is_dir() else []:
        if f"sha256:{blob.name}" not in reached and blob.stat().st_mtime < cutoff:
            blob.unlink(missing_ok=True)
            deleted += 1
    if deleted:
        for kind in ("layer-deps", "layer-code", "base-local", "base-pulled"):
            for path in _records(store, kind):
                data = _load(path)
                layer = data.get("layer")
                digest = layer.get("digest") if isinstance(layer, dict) else data.get("digest")
                if digest and not store.has(str(digest)):
                    path.unlink(missing_ok=True)
    return deleted


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)
