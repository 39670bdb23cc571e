"""Issue 10 section 2: `verify` on a hostile zip, and its sandboxed import check."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from lambda_pkg import verify as verify_module
from lambda_pkg.__main__ import main
from lambda_pkg.verify import verify

from .conftest import make_project, write

ROOT = Path(__file__).resolve().parents[3]
HANDLER = "aws/market_data_fetcher.py"


def zip_of(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def symlink_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("../../etc/cron.d/evil", "points outside the extraction directory (zip-slip)"),
        ("/etc/passwd", "has an absolute path"),
        ("aws\\evil.py", "has a backslash in its name"),
        (symlink_entry("aws/link"), "is a symlink"),
    ],
)
def test_unsafe_entries_are_problems_and_nothing_is_extracted(tmp_path, entry, problem):
    z = zip_of(tmp_path / "p.zip", [(HANDLER, b"def handler(e, c): pass\n"), (entry, b"x")])
    result = verify(z)
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems
    assert any("import check skipped" in n for n in result.notes)


def test_duplicate_entries_are_a_problem(tmp_path):
    z = tmp_path / "dup.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(HANDLER, b"def handler(e, c): pass\n")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr(HANDLER, b"import os\n")
    result = verify(z, import_check=False)
    assert f"entry '{HANDLER}' appears more than once" in result.problems


def _peak_rss_of_verify(zip_path: Path) -> tuple[int, list[str]]:
    # VmHWM, the peak of this process's own memory: ru_maxrss would carry the parent's
    # peak across fork and exec on Linux.
    code = (
        "import json, re, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from lambda_pkg.verify import verify\n"
        "r = verify(sys.argv[1], import_check=False)\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())\n"
        "print(json.dumps([int(hwm.group(1)), r.problems]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(zip_path)], capture_output=True, text=True,
        check=True, timeout=300,
    )  # fmt: skip
    kib, problems = json.loads(out.stdout)
    return kib * 1024, problems


def _zeros_zip(path: Path, size: int) -> Path:
    """A zip whose one big member is `size` zero bytes, written in chunks (the test
    itself never holds it in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(HANDLER, b"def handler(e, c): pass\n")
        with zf.open("blob.bin", "w") as fh:
            chunk = bytes(1 << 20)
            for _ in range(size // len(chunk)):
                fh.write(chunk)
            fh.write(bytes(size % len(chunk)))
    return path


def test_a_zip_bomb_is_never_read_whole(tmp_path):
    # GIVEN a 600 KB zip that inflates to 600 MB (over the unzipped limit), and one that
    # inflates to 250 MB (just under it, so every byte is inflated and scanned)
    bomb = _zeros_zip(tmp_path / "bomb.zip", 600_000_000)
    big = _zeros_zip(tmp_path / "big.zip", 250_000_000)
    assert bomb.stat().st_size < 1_000_000
    # WHEN verify reads them, THEN its peak memory stays under 256 MB
    rss, problems = _peak_rss_of_verify(bomb)
    assert rss < 256 * 1024 * 1024, rss
    assert any("package too large" in p for p in problems)
    rss, problems = _peak_rss_of_verify(big)
    assert rss < 256 * 1024 * 1024, rss
    assert problems == []


def _patch_size(path: Path, name: bytes, size: int) -> None:
    """Make the zip's headers (local and central) claim `size` bytes for member `name`."""
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(sig, at)) >= 0:
            name_at = at + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, at + offset, size)
            at += 4
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("claimed", [1_000, 50_000_000])
def test_a_header_that_lies_about_its_size_is_one_line_exit_2(tmp_path, capsys, claimed):
    z = zip_of(tmp_path / "liar.zip", [(HANDLER, b"x = 1\n" * 2_000_000)])
    _patch_size(z, HANDLER.encode(), claimed)
    code = main(["verify", str(z), "--no-import"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert f"entry {HANDLER} is corrupt or lies about its size" in err


def test_too_many_entries_are_refused_before_they_are_parsed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(verify_module, "MAX_ENTRIES", 10)
    z = zip_of(tmp_path / "many.zip", [(f"f{i}", b"") for i in range(11)])
    assert main(["verify", str(z)]) == 2
    assert "11 entries, more than any Lambda package holds" in capsys.readouterr().err


# --- the import check runs the package's code: sandboxed -------------------------------


def _package(tmp_path: Path, build, handler_code: str) -> Path:
    root = make_project(tmp_path / "p", requirements=None)
    write(
        root / "aws" / "market_data_fetcher.py", handler_code + "\ndef handler(e, c):\n    pass\n"
    )
    return build(root, bytecode=False).path


@pytest.mark.skipif(sys.platform != "linux", reason="namespaces are Linux's")
def test_the_import_check_sees_no_credentials_no_home_and_no_network(tmp_path, build, monkeypatch):
    # GIVEN credentials in the environment and in ~/.aws, and a server on 127.0.0.1
    home = tmp_path / "home"
    write(home / ".aws" / "credentials", "[default]\naws_access_key_id = secret\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    # AND a handler that, on import, reports whatever it can reach
    zipped = _package(
        tmp_path,
        build,
        f"""
import os, socket
seen = [k for k in os.environ if k.startswith("AWS_SECRET")]
try:
    seen.append(open({str(home / ".aws" / "credentials")!r}).read())
except OSError:
    pass
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    seen.append("network")
except OSError:
    pass
if seen:
    raise SystemExit("LEAK: " + repr(seen))
""",
    )
    # WHEN it is verified, THEN the import runs and sees none of it
    result = verify(zipped)
    server.close()
    if any("without namespace isolation" in n for n in result.notes):
        pytest.skip("no user namespaces here")
    assert result.ok, result.problems
    assert result.import_seconds is not None


def test_an_import_that_hangs_is_killed_at_the_time_limit(tmp_path, build, monkeypatch):
    monkeypatch.setattr(verify_module, "IMPORT_TIMEOUT", 2)
    zipped = _package(tmp_path, build, "import time\ntime.sleep(600)\n")
    start = time.monotonic()
    result = verify(zipped)
    assert time.monotonic() - start < 30
    assert any("did not finish within 2 s (killed)" in p for p in result.problems)


def test_help_says_that_verify_runs_the_packages_code(capsys):
    assert main(["verify", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "EXECUTES the package's code" in text
    assert "--no-import" in text


def test_a_broken_handler_still_fails_verify(tmp_path, build):
    zipped = _package(tmp_path, build, "raise RuntimeError('boom at import')\n")
    result = verify(zipped)
    assert any("boom at import" in p for p in result.problems)
    assert os.path.exists(zipped)


def test_an_encrypted_entry_is_a_problem_not_a_crash(tmp_path, capsys):
    z = zip_of(tmp_path / "enc.zip", [(HANDLER, b"def handler(e, c): pass\n")])
    data = bytearray(z.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        flags = struct.unpack_from("<H", data, at + offset)[0]
        struct.pack_into("<H", data, at + offset, flags | 1)
    z.write_bytes(bytes(data))
    code = main(["verify", str(z)])
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    assert f"entry '{HANDLER}' is encrypted" in captured.out
