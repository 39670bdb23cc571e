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
diff_id, which the image config lists) does not depend on zlib at all. The deflate
stream is made of 1 MiB pieces compressed in parallel (see _GzipSink): one core
compresses about 25 MB/s, and the dependency layer is 160 MB.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from lambda_pkg.errors import InternalError
from lambda_pkg.image.store import BlobStore

if TYPE_CHECKING:  # tarfile and the thread pool load only when a layer is written
    import tarfile
    from concurrent.futures import Future

MTIME = 1
GZIP_LEVEL = 6
CHUNK = 1 << 20  # bytes of tar per independently compressed piece
_WINDOW = 32 * 1024  # deflate's window: how far back a piece may refer
ZLIB_ID = f"gzip-{GZIP_LEVEL}-chunk{CHUNK}/zlib-{zlib.ZLIB_RUNTIME_VERSION}"
# The last deflate block: empty, final, fixed Huffman codes (what Z_FINISH writes).
_FINAL_BLOCK = b"\x03\x00"
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


def _deflate(chunk: bytes, previous: bytes) -> bytes:
    """One chunk of the deflate stream: primed with the 32 KiB before it, ending on a
    byte boundary with a sync flush (an empty stored block), so chunks concatenate."""
    zobj = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15, 9, zdict=previous[-_WINDOW:])
    return zobj.compress(chunk) + zobj.flush(zlib.Z_SYNC_FLUSH)


class _GzipSink:
    """A file-like object tarfile writes to: compresses, hashes both sides, counts.

    The tar is cut into fixed CHUNK-byte pieces compressed in parallel (pigz's method:
    each piece primed with the previous 32 KiB, ended with a sync flush), which zlib
    does without the GIL. The pieces depend on the bytes and CHUNK only, never on the
    number of threads, so the output is the same on any machine with the same zlib.
    """

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.raw_hash = hashlib.sha256()
        self.gz_hash = hashlib.sha256()
        self.crc = 0
        self.raw_size = 0
        self.size = 0
        self.pending = bytearray()
        self.previous = b""
        from concurrent.futures import ThreadPoolExecutor

        self.workers = max(1, min(8, os.cpu_count() or 1))
        self.pool = ThreadPoolExecutor(self.workers)
        self.queue: deque[Future[bytes]] = deque()
        self._emit(_GZIP_HEADER)

    def _emit(self, data: bytes) -> None:
        if data:
            self.out.write(data)
            self.gz_hash.update(data)
            self.size += len(data)

    def _submit(self, chunk: bytes) -> None:
        self.queue.append(self.pool.submit(_deflate, chunk, self.previous))
        self.previous = chunk
        while len(self.queue) > 2 * self.workers or (self.queue and self.queue[0].done()):
            self._emit(self.queue.popleft().result())

    def write(self, data: bytes) -> int:
        self.raw_hash.update(data)
        self.crc = zlib.crc32(data, self.crc)
        self.raw_size += len(data)
        self.pending += data
        while len(self.pending) >= CHUNK:
            self._submit(bytes(self.pending[:CHUNK]))
            del self.pending[:CHUNK]
        return len(data)

    # The rest of tarfile's file-object protocol; a stream ("w|") only writes.
    def read(self, size: int, /) -> bytes:
        raise io.UnsupportedOperation("write-only")

    def tell(self) -> int:
        return self.raw_size

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("not seekable")

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)

    def finish(self) -> None:
        if self.pending:
            self._submit(bytes(self.pending))
            self.pending.clear()
        while self.queue:
            self._emit(self.queue.popleft().result())
        self.pool.shutdown()
        self._emit(_FINAL_BLOCK)
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
