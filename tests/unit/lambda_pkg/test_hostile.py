"""Issue 10 section 1: hostile sources, requirements, wheels and environments are
refused with one line (exit 2) naming the file and the fix, before anything runs."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from lambda_pkg import lock as lock_module
from lambda_pkg.__main__ import main
from lambda_pkg.errors import UserError
from lambda_pkg.reqfile import parse
from lambda_pkg.sources import collect_sources

from .conftest import HOST_RUNTIME, lock, make_project, make_wheel, offline, write

ROOT = Path(__file__).resolve().parents[3]


def names(path):
    with zipfile.ZipFile(path) as zf:
        return zf.namelist()


# --- sources --------------------------------------------------------------------------


def test_a_symlink_out_of_the_project_is_refused_naming_link_and_target(tmp_path):
    # GIVEN a link to the build's own environment inside backend/ (it holds a token)
    root = make_project(tmp_path / "p")
    os.symlink("/proc/self/environ", root / "backend" / "env.txt")
    # THEN collecting the sources refuses it, naming the link and its target
    with pytest.raises(UserError, match=r"backend/env\.txt is a symlink to /proc/self/environ"):
        collect_sources(root)


def test_a_symlink_to_a_file_elsewhere_in_the_project_is_refused(tmp_path):
    root = make_project(tmp_path / "p")
    write(root / "infra" / "secrets.py", "TOKEN = 1\n")
    os.symlink("../../infra/secrets.py", root / "backend" / "settings.py")
    with pytest.raises(UserError, match=r"outside the project's backend/ and aws/"):
        collect_sources(root)


def test_a_symlink_within_the_sources_ships_the_file(tmp_path, build):
    root = make_project(tmp_path / "p", requirements=None)
    os.symlink("core.py", root / "backend" / "alias.py")
    art = build(root)
    with zipfile.ZipFile(art.path) as zf:
        assert zf.read("backend/alias.py") == zf.read("backend/core.py")
        assert zf.getinfo("backend/alias.py").external_attr >> 16 == 0o100644


def test_a_dangling_symlink_is_refused(tmp_path):
    root = make_project(tmp_path / "p")
    os.symlink("missing.py", root / "backend" / "gone.py")
    with pytest.raises(UserError, match=r"backend/gone\.py is a symlink to missing\.py, which"):
        collect_sources(root)


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    root = make_project(tmp_path / "p")
    os.mkfifo(root / "backend" / "pipe")  # opening it for reading would hang the build
    with pytest.raises(UserError, match=r"backend/pipe is a FIFO; remove it"):
        collect_sources(root)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path, build):
    root = make_project(tmp_path / "p", requirements=None)
    with open(root / "backend" / "dump.bin", "wb") as fh:  # sparse: nothing is written
        fh.truncate(300_000_000)
    with pytest.raises(UserError, match=r"package too large: backend/dump\.bin alone is "):
        build(root)


def test_a_file_name_that_is_not_utf8_is_one_line_exit_2(tmp_path, capsys):
    root = make_project(tmp_path / "p", requirements=None)
    (root / "backend").joinpath(os.fsdecode(b"caf\xe9.py")).write_text("X = 1\n")
    code = main(["build", "--source", str(root), "--runtime", HOST_RUNTIME])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "backend/caf\\xe9.py: the file name is not valid UTF-8; rename it" in err


@pytest.mark.parametrize("name", ["new\nline.py", "back\\slash.py"])
def test_names_with_control_characters_or_backslashes_are_refused(tmp_path, name):
    root = make_project(tmp_path / "p")
    write(root / "backend" / name, "X = 1\n")
    with pytest.raises(UserError, match=r"control character or a backslash; rename it"):
        collect_sources(root)


# --- requirement files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("evil @ https://example.invalid/evil-1.0.tar.gz", r"is a URL, path or VCS requirement"),
        ("git+https://example.invalid/evil.git#egg=evil", r"is a URL, path or VCS requirement"),
        ("./wheels/evil-1.0-py3-none-any.whl", r"is a URL, path or VCS requirement"),
        ("/abs/evil", r"is a URL, path or VCS requirement"),
        ("-e .", r"editable requirements cannot be packaged"),
        ("--index-url https://example.invalid/simple", r"--index-url in a requirements file"),
        ("--extra-index-url=https://x.invalid/", r"--extra-index-url in a requirements file"),
        ("--find-links /tmp/wheels", r"--find-links in a requirements file changes where"),
        ("--trusted-host example.invalid", r"--trusted-host in a requirements file"),
        ("-f /tmp/wheels", r"-f in a requirements file changes where packages come from"),
        ("six --config-settings=x=y", r"unsupported option '--config-settings=x=y'"),
        ("--config-settings x=y", r"--config-settings configures building a package from source"),
        ("six==${VERSION}", r"'VERSION' in \$\{\.\.\.\} would be read from the build's env"),
        ("-r req.txt", r"-r req\.txt includes a file that includes it \(req\.txt -> req\.txt\)"),
        ("-r https://example.invalid/r.txt", r"only local files can be included"),
        ("-r ../../outside.txt", r"is outside the project"),
    ],
)  # fmt: skip
def test_requirement_lines_that_run_code_or_change_the_source_are_refused(tmp_path, line, message):
    write(tmp_path / "outside.txt", "six\n")
    path = write(tmp_path / "a" / "b" / "req.txt", f"requests\n{line}\n")
    with pytest.raises(UserError, match=r"req\.txt:2: .*" + message):
        parse(path)


def test_an_include_cycle_names_the_chain(tmp_path):
    write(tmp_path / "b.txt", "six\n-r req.txt\n")
    path = write(tmp_path / "req.txt", "requests\n-r b.txt\n")
    with pytest.raises(UserError, match=r"b\.txt:2: .*\(req\.txt -> b\.txt -> req\.txt\)"):
        parse(path)


def test_a_url_requirement_is_refused_before_uv_or_pip_start(tmp_path, monkeypatch):
    # GIVEN a requirement whose sdist would run setup.py
    root = make_project(tmp_path / "p", requirements="evil @ https://example.invalid/e.tar.gz\n")

    def must_not_run(*args, **kwargs):
        raise AssertionError("a resolver was started")

    monkeypatch.setattr(lock_module, "find_uv", must_not_run)
    monkeypatch.setattr(subprocess, "Popen", must_not_run)
    with pytest.raises(UserError, match="URL, path or VCS requirement"):
        lock_module.lock_project(root)


# --- the lock ---------------------------------------------------------------------------


def test_markers_are_evaluated_for_the_target_not_the_host(tmp_path, wheelhouse, build):
    # GIVEN a dependency only Python 3.12+ needs, built for python3.12 on this 3.11 host
    assert sys.version_info[:2] != (3, 12)
    make_wheel(wheelhouse, "markerdep", "1.0")
    root = make_project(tmp_path / "p", requirements='markerdep; python_version >= "3.12"\n')
    # WHEN it is locked and built for python3.12 and, separately, for python3.11
    art12 = build(root, runtime="python3.12", bytecode=False)
    art11 = build(root, runtime="python3.11", bytecode=False)
    # THEN python3.12's package has it and python3.11's does not
    assert "markerdep/__init__.py" in names(art12.path)
    assert "markerdep/__init__.py" not in names(art11.path)


def test_a_missing_lock_names_the_command_that_creates_it(project, build):
    with pytest.raises(UserError, match=r"no lock for requirements_Version9\.txt on python3\.\d+ "
                       r"x86_64 .*create it with: python -m lambda_pkg\.lock "):  # fmt: skip
        build(project, lock_first=False)


def test_an_edited_input_makes_the_lock_stale(project, build, wheelhouse):
    build(project)
    write(project / "requirements_Version9.txt", "tinydep\nleafdep>=2\n")
    with pytest.raises(UserError, match=r"does not match requirements_Version9\.txt .*refresh "
                       r"the lock with: python -m lambda_pkg\.lock$"):  # fmt: skip
        build(project, lock_first=False)
    # a comment is not a change
    write(project / "requirements_Version9.txt", "tinydep  # why\n\n")
    lock(project, wheelhouse)
    write(project / "requirements_Version9.txt", "# the one dependency\ntinydep\n")
    assert build(project, lock_first=False).path.is_file()


def test_the_build_installs_exactly_the_lock_not_what_is_newest(tmp_path, wheelhouse, build):
    # GIVEN a lock made while leafdep 2.0 was the newest
    house = tmp_path / "house"
    house.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        (house / wheel.name).write_bytes(wheel.read_bytes())
    root = make_project(tmp_path / "p")
    lock(root, house)
    # WHEN leafdep 3.0 appears on the index, THEN the build still ships 2.0
    make_wheel(house, "leafdep", "3.0")
    art = build(root, lock_first=False, pip_args=offline(house))
    assert {d.name: d.version for d in art.details.distributions}["leafdep"] == "2.0"
    assert art.details.lock == f"requirements_Version9.{HOST_RUNTIME}-x86_64.txt"


def test_a_lock_edited_by_hand_is_refused(project, build, wheelhouse):
    (locked,) = lock(project, wheelhouse)
    text = locked.path.read_text()
    locked.path.write_text(text + "evil @ https://example.invalid/evil.tar.gz\n")
    with pytest.raises(UserError, match=r"is not a name==version pin; a lock is generated"):
        build(project, lock_first=False)


def test_a_wrong_hash_in_the_lock_is_its_own_one_line_error(project, wheelhouse, capsys):
    (locked,) = lock(project, wheelhouse)
    text = locked.path.read_text()
    real = [h for p in locked.pins if p.name == "tinydep" for h in p.hashes]
    locked.path.write_text(text.replace(real[0], "0" * 64))
    code = main(["build", "--source", str(project), "--runtime", HOST_RUNTIME,
                 *[f"--pip-arg={a}" for a in offline(wheelhouse)]])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "tinydep" in err and "matches no hash in requirements_Version9" in err


@pytest.mark.usefixtures("own_wheel_store")  # pip must run again, under that configuration
def test_ambient_pip_and_uv_configuration_changes_nothing(project, wheelhouse, build, monkeypatch):
    # GIVEN a host whose pip and uv configuration would pin an older leafdep and look
    # at an index that does not exist
    first = build(project)
    bad = write(project.parent / "constraints.txt", "leafdep==1.0\n")
    conf = write(project.parent / "pip.conf", f"[global]\nconstraint = {bad}\nno-index = true\n")
    for key, value in {
        "PIP_CONFIG_FILE": str(conf), "PIP_CONSTRAINT": str(bad), "PIP_NO_BINARY": ":all:",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "UV_CONSTRAINT": str(bad),
        "UV_INDEX_URL": "http://127.0.0.1:9/simple", "UV_NO_BINARY": "1",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    # WHEN the same project is locked and built again from empty caches
    (project / ".build").rename(project.parent / "old-build")
    again = build(project)
    # THEN the package is byte for byte the same
    assert again.sha256 == first.sha256


def test_index_credentials_never_reach_the_log(project, build):
    url = "http://alice:s3cret-token@127.0.0.1:9/simple"
    with pytest.raises(UserError) as info:
        build(project, pip_args=["--index-url", url, "--retries", "0", "--timeout", "1"])
    assert "s3cret" not in str(info.value)
    logs = list((project / ".build" / "logs").glob("*.log"))
    assert logs
    text = "".join(p.read_text() for p in logs)
    assert "s3cret-token" not in text
    assert "http://****@127.0.0.1:9/simple" in text


# --- wheels that lie or overreach ---------------------------------------------------------


def raw_wheel(directory: Path, name: str, files: dict[str, bytes], record: dict[str, bytes]):
    """A wheel whose RECORD lists `record` (path -> the bytes it claims), written as is."""
    dist_info = f"{name}-1.0.dist-info"
    meta = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    rows = []
    for path, data in {**meta, **record}.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    body = {**meta, **files, f"{dist_info}/RECORD": ("\n".join(rows) + "\n").encode()}
    path = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in body.items():
            zf.writestr(member, data)
    return path


@pytest.mark.parametrize(
    ("files", "record", "message"),
    [
        ({"liar/__init__.py": b"X = 2\n"}, {"liar/__init__.py": b"X = 1\n"},
         r"liar/__init__\.py does not match its RECORD entry"),
        ({"liar/__init__.py": b"X = 1\n", "liar/extra.py": b""},
         {"liar/__init__.py": b"X = 1\n"}, r"RECORD does not match the wheel's contents"),
        ({"../escape.py": b"X = 1\n"}, {"../escape.py": b"X = 1\n"},
         r"unsafe path '\.\./escape\.py'"),
        ({"liar.pth": b"import os\n"}, {"liar.pth": b"import os\n"},
         r"liar\.pth is a \.pth file, which would run code whenever Python starts"),
        ({"liar/.env": b"TOKEN=x\n"}, {"liar/.env": b"TOKEN=x\n"}, r"liar/\.env:1: a \.env file"),
        ({"liar/k.py": b"K = 'AKIAABCDEFGHIJKLMNOP'\n"},
         {"liar/k.py": b"K = 'AKIAABCDEFGHIJKLMNOP'\n"},
         r"secret scan: liar-1\.0-py3-none-any\.whl: liar/k\.py:1: looks like an AWS access key"),
        ({"liar/k.txt": "K = 'AKIAABCDEFGHIJKLMNOP'\n".encode("utf-16")},
         {"liar/k.txt": "K = 'AKIAABCDEFGHIJKLMNOP'\n".encode("utf-16")},
         r"liar/k\.txt:1: looks like"),
        ({"boto3/__init__.py": b"X = 1\n"}, {"boto3/__init__.py": b"X = 1\n"},
         r"installs boto3/__init__\.py, shadowing boto3, which the Lambda runtime provides"),
    ],
)  # fmt: skip
def test_a_wheel_that_lies_or_overreaches_is_refused(tmp_path, build, files, record, message):
    house = tmp_path / "house"
    house.mkdir()
    raw_wheel(house, "liar", files, record)
    root = make_project(tmp_path / "p", requirements="liar\n")
    lock(root, house)
    with pytest.raises(UserError, match=message):
        build(root, lock_first=False, pip_args=offline(house))
    assert not list((root / ".build").glob("artifacts/*"))


def test_a_wheel_writing_into_the_project_is_refused_even_in_a_layer(tmp_path, build):
    house = tmp_path / "house"
    house.mkdir()
    raw_wheel(house, "intruder", {"backend/evil.py": b"X = 1\n"}, {"backend/evil.py": b"X = 1\n"})
    root = make_project(tmp_path / "p", requirements="intruder\n")
    lock(root, house)
    with pytest.raises(UserError, match=r"a dependency installs backend/evil\.py, inside the "
                       r"project's own backend"):  # fmt: skip
        build(root, lock_first=False, pip_args=offline(house), layer=True)


def test_two_wheels_writing_the_same_file_differently_are_refused(tmp_path, build):
    house = tmp_path / "house"
    house.mkdir()
    raw_wheel(house, "first", {"shared/x.py": b"A = 1\n"}, {"shared/x.py": b"A = 1\n"})
    raw_wheel(house, "second", {"shared/x.py": b"A = 2\n"}, {"shared/x.py": b"A = 2\n"})
    root = make_project(tmp_path / "p", requirements="first\nsecond\n")
    lock(root, house)
    with pytest.raises(UserError, match=r"both install shared/x\.py, with different contents"):
        build(root, lock_first=False, pip_args=offline(house))


# --- what a killed build leaves ---------------------------------------------------------


def test_a_killed_builds_temp_directory_is_swept_by_the_next_build(tmp_path, build):
    # GIVEN a build process killed with SIGKILL while it held a work directory
    root = make_project(tmp_path / "p", requirements=None)
    cache = root / ".build"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(ROOT)!r})
            from pathlib import Path
            from lambda_pkg.tmpdirs import work_dir
            with work_dir(Path({str(cache)!r}), "deps-killed") as work:
                (work / "wheel.whl").write_bytes(b"x" * 1000)
                print(work, flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    left = Path(child.stdout.readline().strip())
    # AND another build running at the same time holds its own
    from lambda_pkg.tmpdirs import work_dir

    with work_dir(cache, "deps-alive") as alive:
        assert left.is_dir()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        time.sleep(0.1)
        # WHEN the next build runs
        build(root)
        # THEN the killed one's directory is gone and the live one's is not
        assert not left.exists()
        assert alive.is_dir()


def test_a_wheel_that_unpacks_past_the_limit_is_refused_before_it_is_inflated(
    tmp_path, build, monkeypatch
):
    from lambda_pkg import limits

    house = tmp_path / "house"
    house.mkdir()
    raw_wheel(house, "bomb", {"bomb/z.bin": bytes(2_000_000)}, {"bomb/z.bin": bytes(2_000_000)})
    root = make_project(tmp_path / "p", requirements="bomb\n")
    lock(root, house)
    monkeypatch.setattr(limits, "UNZIPPED_MAX", 1_000_000)
    pattern = r"package too large: bomb-1\.0-py3-none-any\.whl alone unpacks to 2,00\d,\d+ bytes"
    with pytest.raises(UserError, match=pattern + r", over Lambda's 1,000,000-byte limit"):
        build(root, lock_first=False, pip_args=offline(house))


def test_a_requirements_file_with_a_byte_order_mark_reads_as_pip_reads_it(tmp_path):
    path = tmp_path / "req.txt"
    path.write_bytes("\ufeffrequests\nsix\n".encode())
    assert parse(path).names == ("requests", "six")
