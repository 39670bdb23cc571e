"""The builder's blob store: content-addressed files under <cache>/image/.

  blobs/sha256/<hex>        every blob (base layers, built layers, configs, manifests)
  records/<kind>/<key>.json what a cached step produced (a layer, a base, an image)
  tmp/                      work files, moved into place with os.replace

A blob appears whole or not at all (written under tmp/, then renamed to its digest),
so an interrupted build never leaves a truncated blob behind a valid name. A record
is written after the blobs it names, so a record found is a step that finished.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from lambda_pkg.artifact import write_json_atomic
from lambda_pkg.image import oci


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algo / hexdigest

    def has(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.path(digest).stat()
        except OSError:
            return False
        return size is None or st.st_size == size

    def put_bytes(self, data: bytes) -> str:
        digest = oci.sha256_digest(data)
        if not self.has(digest, len(data)):
            with self.staging() as (fh, tmp):
                fh.write(data)
                fh.flush()
                self.commit(tmp, digest)
        return digest

    def put_image(
        self,
        architecture: str,
        config: Mapping[str, Any],
        layers: Sequence[oci.Descriptor],
        annotations: Mapping[str, str] | None = None,
    ) -> tuple[str, str]:
        """Store a linux image's config (`config` plus the platform fields for
        `architecture`) and the manifest naming it and `layers`: (config, manifest) digest."""
        arch, variant = oci.PLATFORM[architecture]
        platform = {"architecture": arch, "os": "linux"} | ({"variant": variant} if variant else {})
        raw_config = oci.canonical_json({**config, **platform})
        config_digest = self.put_bytes(raw_config)
        manifest = oci.Manifest(
            config=oci.Descriptor(oci.CONFIG, config_digest, len(raw_config)),
            layers=tuple(layers),
            annotations=annotations or {},
        )
        return config_digest, self.put_bytes(manifest.to_bytes())

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    @contextlib.contextmanager
    def staging(self) -> Iterator[tuple[BinaryIO, Path]]:
        """A temp file in the store; commit() it, or it is removed on exit."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, tmp
        finally:
            tmp.unlink(missing_ok=True)

    def commit(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)

    # --- records ------------------------------------------------------------------

    def record_path(self, kind: str, key: str) -> Path:
        return self.root / "records" / kind / f"{key[:40]}.json"

    def load_record(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record_path(kind, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def save_record(self, kind: str, key: str, data: dict[str, Any]) -> None:
        write_json_atomic(self.record_path(kind, key), {**data, "key": key})


def link_or_copy(src: Path, dst: Path) -> None:
    """Put src at dst: a hard link when both are on one file system (no bytes copied),
    else a copy through a temp file. Blobs are never modified in place, so sharing the
    inode with the store is safe."""
    if dst.exists() and dst.stat().st_size == src.stat().st_size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
