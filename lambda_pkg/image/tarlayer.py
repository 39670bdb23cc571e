"""Deterministic layers: a sorted tar, gzip-compressed with a fixed header.

Per entry: the path inside the image (no leading '/'), uid/gid as given (0, or the
image's non-root id where it must own something), no user or group names, mtime
1970-01-01T00:00:01Z (jib's choice: 0 reads as "unset" to some tools), modes
normalised by the caller (0644/0755 for files, 0755 for directories), PAX format
(the POSIX tar that Go's archive/tar and every runtime read). Parent directories
are added, so a layer never depends on what the base happens to have. Entries are
sorted by path, which also puts every directory before its children.

Compression: gzip, the one layer format every registry and runtime accepts (ECR,
Fargate, containerd, podman); zstd would pull faster but needs a third-party module
to write and is not accepted by every runtime an image may meet. The gzip header is
written here (no file name, mtime 0, OS 255 "unknown"), so only the deflate stream
could differ between machines, and only if their zlib differs: the zlib version is
part of every cache key, as for the Lambda zip. The uncompressed tar's digest (the
diff_id, which the image config lists) does not depend on zlib at all.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from lambda_pkg.errors import InternalError
from lambda_pkg.image.store import BlobStore

if TYPE_CHECKING:  # tarfile loads only when a layer is written
    import tarfile

MTIME = 1
GZIP_LEVEL = 6
ZLIB_ID = f"gzip-{GZIP_LEVEL}/zlib-{zlib.ZLIB_RUNTIME_VERSION}"
_GZIP_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"


@dataclass(frozen=True)
class LayerFile:
    path: str  # inside the image, relative: "opt/ctb/app/backend/__init__.py"
    data: bytes = b""
    mode: int = 0o644
    link: str | None = None  # a symlink to this target
    directory: bool = False
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Layer:
    digest: str  # sha256 of the gzip blob: what the manifest names
    diff_id: str  # sha256 of the tar: what the config lists
    size: int  # compressed bytes
    uncompressed: int  # tar bytes
    files: int


class _GzipSink:
    """A file-like object tarfile writes to: compresses, hashes both sides, counts."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.raw_hash = hashlib.sha256()
        self.gz_hash = hashlib.sha256()
        self.crc = 0
        self.raw_size = 0
        self.size = 0
        self.zobj = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15, 9)
        self._emit(_GZIP_HEADER)

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.gz_hash.update(data)
            self.size += len(data)

    def write(self, data: bytes) -> int:
        self.raw_hash.update(data)
        self.crc = zlib.crc32(data, self.crc)
        self.raw_size += len(data)
        self._emit(self.zobj.compress(data))
        return len(data)

    # The rest of tarfile's file-object protocol; a stream ("w|") only writes.
    def read(self, size: int, /) -> bytes:
        raise io.UnsupportedOperation("write-only")

    def tell(self) -> int:
        return self.raw_size

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("not seekable")

    def close(self) -> None:
        pass

    def finish(self) -> None:
        self._emit(self.zobj.flush())
        self._emit(struct.pack("<II", self.crc, self.raw_size & 0xFFFFFFFF))


def with_parents(files: Iterable[LayerFile]) -> list[LayerFile]:
    """The files plus every parent directory not given, sorted by path."""
    by_path: dict[str, LayerFile] = {}
    for f in files:
        path = f.path.strip("/")
        if not path or ".." in path.split("/"):
            raise InternalError(f"bad path in a layer: {f.path!r}")
        if path in by_path:
            raise InternalError(f"{path} is twice in one layer")
        by_path[path] = f
    for path in list(by_path):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, LayerFile(parent, mode=0o755, directory=True))
    return [by_path[p] for p in sorted(by_path)]


def _info(f: LayerFile) -> tarfile.TarInfo:
    import tarfile

    info = tarfile.TarInfo(f.path.strip("/"))
    info.mtime = MTIME
    info.uid, info.gid = f.uid, f.gid
    info.uname = info.gname = ""
    if f.directory:
        info.type, info.mode = tarfile.DIRTYPE, f.mode
    elif f.link is not None:
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, f.link
    else:
        info.type, info.mode, info.size = tarfile.REGTYPE, f.mode, len(f.data)
    return info


def write_layer(files: Iterable[LayerFile], store: BlobStore) -> Layer:
    """Write the layer's gzip blob into the store and describe it."""
    import tarfile

    entries = with_parents(files)
    with store.staging() as (fh, tmp):
        sink = _GzipSink(fh)
        # Stream mode ("w|") writes headers and data straight through, in order.
        with tarfile.open(
            fileobj=sink,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
        ) as tar:
            for f in entries:
                info = _info(f)
                tar.addfile(info, io.BytesIO(f.data) if info.isreg() else None)
        sink.finish()
        fh.flush()
        digest = "sha256:" + sink.gz_hash.hexdigest()
        store.commit(tmp, digest)
    return Layer(
        digest=digest,
        diff_id="sha256:" + sink.raw_hash.hexdigest(),
        size=sink.size,
        uncompressed=sink.raw_size,
        files=sum(1 for f in entries if not f.directory),
    )
