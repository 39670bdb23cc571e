"""Deterministic layers: order, parents, metadata and compression are chosen here."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from pathlib import Path

import pytest

from lambda_pkg.errors import InternalError
from lambda_pkg.image.store import BlobStore
from lambda_pkg.image.tarlayer import LayerFile, write_layer

FILES = [
    LayerFile("opt/app/b.py", b"b = 1\n"),
    LayerFile("opt/app/a.py", b"a = 1\n"),
    LayerFile("opt/app/run.sh", b"#!/bin/sh\n", mode=0o755),
    LayerFile("usr/local/bin/python", link="python3.12"),
    LayerFile("opt/app/" + "long/" * 40 + "deep.py", b"x = 1\n"),  # over ustar's 100 chars
]


def test_the_same_files_in_any_order_give_the_same_bytes(tmp_path):
    one = write_layer(FILES, BlobStore(tmp_path / "one"))
    two = write_layer(reversed(FILES), BlobStore(tmp_path / "two"))
    assert one == two
    assert (tmp_path / "one/blobs/sha256" / one.digest[7:]).read_bytes() == (
        tmp_path / "two/blobs/sha256" / two.digest[7:]
    ).read_bytes()


def test_digests_sizes_and_diff_id_describe_the_blob(tmp_path):
    store = BlobStore(tmp_path)
    layer = write_layer(FILES, store)
    blob = store.path(layer.digest).read_bytes()
    raw = gzip.decompress(blob)
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (layer.size, layer.uncompressed, layer.files) == (len(blob), len(raw), 5)


def test_parents_come_first_and_metadata_is_fixed(tmp_path):
    store = BlobStore(tmp_path)
    layer = write_layer(FILES, store)
    with tarfile.open(fileobj=io.BytesIO(store.path(layer.digest).read_bytes())) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names[:2] == ["opt", "opt/app"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(1, 0, 0, "", "")}
    by_name = {m.name: m for m in members}
    assert by_name["opt"].isdir() and by_name["opt"].mode == 0o755
    assert by_name["opt/app/run.sh"].mode == 0o755
    assert by_name["usr/local/bin/python"].issym()
    assert by_name["usr/local/bin/python"].linkname == "python3.12"
    assert any(len(n) > 100 for n in names)


def test_a_path_twice_or_outside_the_root_is_a_bug(tmp_path):
    with pytest.raises(InternalError, match="twice"):
        write_layer([LayerFile("a"), LayerFile("/a")], BlobStore(tmp_path))
    with pytest.raises(InternalError, match="bad path"):
        write_layer([LayerFile("a/../../etc/passwd")], BlobStore(tmp_path))


def test_an_interrupted_write_leaves_no_blob(tmp_path):
    # "b" fails while the stream is half written ("a" is already in it).
    store = BlobStore(tmp_path)
    with pytest.raises(TypeError):
        write_layer([LayerFile("a", b"1"), LayerFile("b", data=None)], store)
    assert not list(Path(tmp_path).rglob("blobs/*/*"))
    assert not list((tmp_path / "tmp").iterdir())


def test_a_layer_of_many_compressed_pieces_is_one_valid_gzip_stream(tmp_path):
    # Over three 1 MiB pieces, with repeats across piece boundaries (the priming window).
    block = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB, compressible only by repeats
    files = [LayerFile(f"data/{i:02d}.bin", block * 3) for i in range(10)]
    store = BlobStore(tmp_path)
    layer = write_layer(files, store)
    blob = store.path(layer.digest).read_bytes()
    raw = zlib.decompress(blob, 31)  # gzip framing: checks the CRC and the length too
    assert hashlib.sha256(raw).hexdigest() == layer.diff_id[7:]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert tar.extractfile("data/09.bin").read() == block * 3
    assert layer.size < len(raw) / 2
