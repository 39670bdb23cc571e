import os
import shutil
import subprocess
import zipfile
import zlib

import pytest

from lambda_pkg.errors import InternalError
from lambda_pkg.zipper import (
    DEFLATED,
    STORED,
    Entry,
    make_entry,
    read_segment,
    renamed,
    write_segment,
    write_zip,
)


def entry_content(entry: Entry) -> bytes:
    """An entry's uncompressed bytes (only these tests need them)."""
    if entry.method == STORED:
        return bytes(entry.data)
    assert entry.method == DEFLATED
    return zlib.decompress(entry.data, -15)


def _entries():
    return [
        make_entry("a/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        make_entry("a/x.py", b"print('x')\n" * 50),
        make_entry("b/\u00e9t\u00e9.txt", b"\x00\x01"),
    ]


def test_every_entry_has_fixed_time_mode_system_and_no_extras(tmp_path):
    # GIVEN entries with an executable, compressible text and a non-ASCII name
    write_zip(tmp_path / "p.zip", _entries())
    # THEN the zip carries nothing from the host
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["a/run.sh", "a/x.py", "b/\u00e9t\u00e9.txt"]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.create_system == 3
            assert info.extra == b""
            assert info.comment == b""
        assert infos[0].external_attr >> 16 == 0o100755
        assert infos[1].external_attr >> 16 == 0o100644
        assert infos[1].compress_type == DEFLATED
        assert infos[2].compress_type == STORED  # deflate would not shrink two bytes
        assert zf.read("a/x.py") == b"print('x')\n" * 50
        assert zf.testzip() is None


def test_same_entries_give_same_bytes_and_reported_hash(tmp_path):
    sha1, size1 = write_zip(tmp_path / "1.zip", _entries())
    sha2, _ = write_zip(tmp_path / "2.zip", _entries())
    assert sha1 == sha2
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    assert size1 == (tmp_path / "1.zip").stat().st_size
    import hashlib

    assert hashlib.sha256((tmp_path / "1.zip").read_bytes()).hexdigest() == sha1


def test_info_zip_accepts_it(tmp_path):
    if shutil.which("unzip") is None:
        # scripts/test.sh installs it (scripts/install_test_tools.sh); on CI it must run.
        if os.environ.get("CI") == "true":
            pytest.fail("unzip is not installed (CI): scripts/install_test_tools.sh installs it")
        pytest.skip("needs Info-ZIP unzip: apt-get install -y unzip")
    write_zip(tmp_path / "p.zip", _entries())
    out = subprocess.run(["unzip", "-t", str(tmp_path / "p.zip")], capture_output=True, check=False)
    assert out.returncode == 0, out.stdout


def test_unsorted_or_duplicate_entries_are_refused(tmp_path):
    a, b = make_entry("b", b"1"), make_entry("a", b"2")
    with pytest.raises(InternalError, match="not sorted"):
        write_zip(tmp_path / "p.zip", [a, b])
    with pytest.raises(InternalError, match="duplicated"):
        write_zip(tmp_path / "p.zip", [b, b])


def test_more_than_65535_entries_use_zip64_end_records(tmp_path):
    entries = [make_entry(f"f{i:06d}", b"") for i in range(70_000)]
    write_zip(tmp_path / "big.zip", entries)
    with zipfile.ZipFile(tmp_path / "big.zip") as zf:
        assert len(zf.infolist()) == 70_000


def test_segment_round_trip_copies_compressed_bytes(tmp_path):
    entries = _entries()
    write_segment(tmp_path, entries, {"dists": []})
    loaded, meta = read_segment(tmp_path)
    assert meta == {"dists": []}
    assert [bytes(e.data) for e in loaded] == [bytes(e.data) for e in entries]
    assert entry_content(loaded[1]) == b"print('x')\n" * 50
    # A renamed entry (layer prefix) keeps its payload.
    assert renamed(loaded[0], "python/a/run.sh").data == loaded[0].data
