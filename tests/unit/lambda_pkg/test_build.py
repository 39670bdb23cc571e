import errno
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambda_pkg import deps, interpreters, limits, zipper
from lambda_pkg.api import load_manifest
from lambda_pkg.errors import UserError

from .conftest import HOST_RUNTIME, lock, make_project, offline, write

TAG = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"


def names(path):
    with zipfile.ZipFile(path) as zf:
        return [i.filename for i in zf.infolist()]


def test_same_inputs_give_same_bytes_across_paths_mtimes_and_umask(tmp_path, build):
    # GIVEN two checkouts of the same project in different places
    a = make_project(tmp_path / "one" / "checkout")
    old = os.umask(0o077)  # AND the second is written under another umask
    try:
        b = make_project(tmp_path / "two" / "deeper" / "x")
    finally:
        os.umask(old)
    assert (b / "bot.py").stat().st_mode & 0o777 == 0o600
    for path in b.rglob("*"):  # AND with every file touched
        os.utime(path, (1_700_000_000, 1_700_000_000))
    # WHEN each is built with its own cache
    art_a, art_b = build(a), build(b)
    # THEN the packages are byte-identical, dependencies and bytecode included
    assert art_a.path != art_b.path
    assert art_a.sha256 == art_b.sha256
    assert art_a.path.read_bytes() == art_b.path.read_bytes()
    assert art_a.input_hash == art_b.input_hash
    assert f"tinydep/__pycache__/core.{TAG}.pyc" in names(art_a.path)


def test_package_contents_deps_stripped_and_bytecode(project, build):
    art = build(project)
    got = names(art.path)
    assert got == sorted(got)
    # the project's files and their bytecode
    assert "aws/market_data_fetcher.py" in got
    assert f"aws/__pycache__/market_data_fetcher.{TAG}.pyc" in got
    # dependencies, with .data/purelib installed at the top and scripts left out
    assert "tinydep/core.py" in got
    assert "tinydep_extra.py" in got
    assert "tinydep/assets.data/table.csv" in got
    assert not any(n.startswith("tinydep-1.0.data/") or "tinydep-cli" in n for n in got)
    # stripped: tests, docs, foreign bytecode, installer bookkeeping
    assert not any(n.startswith("tinydep/tests/") for n in got)
    assert "tinydep/docs/guide.txt" not in got
    assert "tinydep/__pycache__/core.cpython-39.pyc" not in got
    assert "tinydep-1.0.dist-info/RECORD" not in got
    # kept: what importlib.metadata reads, a real `testing` module, tests that are imported
    assert "tinydep-1.0.dist-info/METADATA" in got
    assert "tinydep/testing/__init__.py" in got
    assert "leafdep/tests/__init__.py" in got
    with zipfile.ZipFile(art.path) as zf:
        assert zf.getinfo("tinydep/bin_tool.sh").external_attr >> 16 == 0o100755
        pyc = zf.read(f"tinydep/__pycache__/core.{TAG}.pyc")
    # PEP 552 flags: hash-based (bit 0), unchecked (bit 1 clear)
    assert int.from_bytes(pyc[4:8], "little") == 0b01
    notes = "\n".join(art.details.notes)
    assert "stripped" in notes
    assert "tests" in notes
    dists = {d.name: d for d in art.details.distributions}
    assert dists["tinydep"].version == "1.0"
    assert dists["tinydep"].unzipped > 0


def test_the_package_imports_and_reads_its_own_metadata(project, build, tmp_path):
    art = build(project)
    target = tmp_path / "task"
    with zipfile.ZipFile(art.path) as zf:
        zf.extractall(target)
    # An unchecked-hash .pyc is loaded without a look at its source: with the source
    # changed after extraction, the module still has the value it was compiled from.
    # (If the .pyc were missing or ignored, Python would compile the new source.)
    (target / "tinydep" / "core.py").write_text("VALUE = -1\n")
    code = (
        "import sys, importlib.metadata as md; sys.path.insert(0, sys.argv[1]);"
        "import tinydep, leafdep, aws.market_data_fetcher as h, tinydep.core as c;"
        "assert tinydep.VALUE == 42 and md.version('tinydep') == '1.0';"
        "assert h.handler({}, None) == 'ok';"
        "assert c.__cached__.endswith('.pyc');"
        "assert c.VALUE == 42, f'tinydep.core ran its source, not its .pyc: {c.VALUE}';"
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code, str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.stdout.strip() == "ok", out.stderr


def _files(root: Path) -> dict[str, tuple[int, int, int]]:
    return {
        str(p.relative_to(root)): ((st := p.stat()).st_size, st.st_mtime_ns, st.st_ino)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_no_change_rebuild_returns_the_artifact_without_building(project, build, wheelhouse):
    # GIVEN a locked project whose files are older than the stat cache's racy window
    # (lambda_pkg/statcache.py remembers no file modified in the last 2 s: with files
    # written just now, a second build more than 2 s later, as on a loaded machine,
    # remembered them then and rewrote hashes.json)
    lock(project, wheelhouse)
    hour_ago = os.stat(project).st_mtime - 3600
    for path in project.rglob("*"):
        os.utime(path, (hour_ago, hour_ago))
    first = build(project, lock_first=False)
    before = _files(project / ".build")
    again = build(project, lock_first=False)
    assert again == first
    # nothing was built: not one file of the cache was written, replaced or added
    assert _files(project / ".build") == before


def test_a_cached_manifest_with_wrong_field_types_is_rebuilt(project, build):
    # GIVEN a cached build whose manifest was damaged by hand ("zip" is not a name)
    first = build(project)
    data = json.loads(first.manifest_path.read_text())
    first.manifest_path.write_text(json.dumps({**data, "zip": 5}))
    # WHEN the same inputs are built again, THEN the cache entry is rebuilt, not a crash
    again = build(project)
    assert again == first
    assert load_manifest(first.manifest_path) == first


def test_code_only_change_reuses_the_compressed_dependencies(project, build, monkeypatch):
    first = build(project)
    segment = next((project / ".build" / "deps").glob("*/segment.bin"))
    stamp = segment.stat().st_mtime_ns

    def no_pip(*args, **kwargs):
        raise AssertionError("pip ran for a code-only change")

    monkeypatch.setattr(deps, "run_pip", no_pip)
    write(project / "backend" / "core.py", "def run():\n    return 2\n")
    second = build(project)
    assert second.sha256 != first.sha256
    assert segment.stat().st_mtime_ns == stamp  # the segment was read, not rewritten
    with zipfile.ZipFile(first.path) as z1, zipfile.ZipFile(second.path) as z2:
        assert z2.read("backend/core.py") == b"def run():\n    return 2\n"
        i1, i2 = z1.getinfo("tinydep/core.py"), z2.getinfo("tinydep/core.py")
        assert (i1.CRC, i1.compress_size) == (i2.CRC, i2.compress_size)
    assert first.path.exists()  # the previous artifact is still there


def test_layer_splits_dependencies_into_their_own_zip(project, build):
    art = build(project, layer=True)
    assert art.layer is not None
    code, layer = names(art.path), names(art.layer.path)
    assert not any(n.startswith("tinydep") for n in code)
    assert "aws/market_data_fetcher.py" in code
    assert all(n.startswith("python/") for n in layer)
    assert "python/tinydep/core.py" in layer
    loaded = load_manifest(art.manifest_path)  # the manifest lists both, and both check out
    assert loaded.layer.sha256 == art.layer.sha256
    assert loaded.sha256 == art.sha256
    assert art.layer.unzipped_size + art.unzipped_size == art.details.report["unzipped_total"]
    assert build(project, layer=True).layer.sha256 == art.layer.sha256


def test_boto3_is_left_out_unless_bundled(tmp_path, build):
    project = make_project(tmp_path / "p", requirements="usesboto\n")
    default = build(project)
    assert not any(n.startswith(("boto3", "botocore")) for n in names(default.path))
    assert "usesboto/__init__.py" in names(default.path)
    assert any("left out boto3, botocore" in n for n in default.details.notes)
    bundled = build(project, bundle_boto3=True)
    assert "boto3/__init__.py" in names(bundled.path)
    assert "botocore/__init__.py" in names(bundled.path)
    assert any("leave boto3 out" in r for r in bundled.details.report["recommendations"])


def test_dependency_bytecode_compiled_once_serves_another_build_of_that_python(tmp_path, build):
    # GIVEN a package built (usesboto's modules compiled and kept in .build/pyc-deps)
    project = make_project(tmp_path / "p", requirements="usesboto\n")
    first = build(project)
    kept = _files(project / ".build" / "pyc-deps")
    assert kept
    # WHEN another build of the same Python needs the same modules and more (the image's)
    bundled = build(project, bundle_boto3=True)
    # THEN the modules compiled before were taken as they were (not one rewritten), only
    # boto3's and botocore's were compiled, and both packages hold the same usesboto .pyc
    again = _files(project / ".build" / "pyc-deps")
    assert {k: again[k] for k in kept} == kept
    assert len(again) == len(kept) + 2  # boto3/__init__.py, botocore/__init__.py
    pyc = next(n for n in names(first.path) if n.startswith("usesboto/__pycache__/"))
    with zipfile.ZipFile(first.path) as a, zipfile.ZipFile(bundled.path) as b:
        assert a.read(pyc) == b.read(pyc)


def test_native_wheel_for_the_target_passes_the_audit(tmp_path, build):
    project = make_project(tmp_path / "p", requirements="fastext\n")
    art = build(project, runtime="python3.12", bytecode=False)
    assert "fastext/_speed.so" in names(art.path)


@pytest.mark.parametrize(
    ("requirement", "message"),
    [
        ("armext", r"audit failed: armext: armext/_speed.so: built for aarch64, "
                   r"but the target is x86_64"),
        ("newglibc", r"audit failed: newglibc: newglibc/_x.so: needs GLIBC_2.38, "
                     r"but python3.12 has glibc 2.34"),
        ("onlyarm", r"no wheel of onlyarm for python3.12 on x86_64"),
    ],
)  # fmt: skip
def test_wrong_platform_dependencies_are_refused(tmp_path, build, requirement, message):
    project = make_project(tmp_path / "p", requirements=f"{requirement}\n")
    with pytest.raises(UserError, match=message):
        build(project, runtime="python3.12", bytecode=False)
    assert not list((project / ".build").glob("artifacts/*"))
    assert not list((project / ".build").glob("deps/*"))


def test_arm64_takes_aarch64_wheels(tmp_path, build):
    project = make_project(tmp_path / "p", requirements="onlyarm\n")
    art = build(project, runtime="python3.12", architecture="arm64", bytecode=False)
    assert "onlyarm/__init__.py" in names(art.path)


def test_failure_mid_build_leaves_the_previous_artifact_intact(project, build, monkeypatch):
    # GIVEN a good artifact
    good = build(project)
    before = good.path.read_bytes()
    # WHEN the next build dies half-way through writing its zip (the disk fills up)
    real = zipper.write_zip

    def half_then_full_disk(path, entries):
        real(path, entries[: len(entries) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipper, "write_zip", half_then_full_disk)
    write(project / "backend" / "core.py", "def run():\n    return 3\n")
    with pytest.raises(UserError, match=r"cannot write the build cache .*No space left"):
        build(project)
    # THEN the good artifact is untouched, no half-written one exists, no temp is left
    assert good.path.read_bytes() == before
    assert load_manifest(good.manifest_path) == good
    assert [p.name for p in (project / ".build" / "artifacts").iterdir()] == [good.path.parent.name]
    assert list((project / ".build" / "tmp").iterdir()) == []


def test_bytecode_is_dropped_when_only_it_breaks_the_budget(tmp_path, build, monkeypatch):
    project = make_project(tmp_path / "p", requirements=None)
    full = build(project)
    without = (
        sum(s.stat().st_size for s in (project / "aws").rglob("*.py"))
        + sum(s.stat().st_size for s in (project / "backend").rglob("*") if s.is_file())
        + (project / "bot.py").stat().st_size
    )
    assert full.unzipped_size > without
    monkeypatch.setattr(limits, "UNZIPPED_MAX", without)
    shutil.rmtree(project / ".build")
    slim = build(project)
    assert slim.unzipped_size == without
    assert not any(n.endswith(".pyc") for n in names(slim.path))
    assert any("bytecode left out" in n for n in slim.details.notes)


def test_without_an_interpreter_it_says_so_and_builds_without_bytecode(project, build, monkeypatch):
    monkeypatch.setattr(interpreters, "find_interpreter", lambda version: None)
    art = build(project, runtime="python3.12")
    assert not any(n.endswith(".pyc") for n in names(art.path))
    assert any("no python3.12 interpreter found" in n for n in art.details.notes)
    assert art.details.bytecode is None


def test_a_secret_in_the_sources_stops_the_build(project, build):
    write(project / "backend" / "settings.py", "X = 1\nKEY = 'AKIAABCDEFGHIJKLMNOP'\n")
    with pytest.raises(
        UserError, match=r"secret scan: backend/settings\.py:2: looks like an AWS access key id"
    ):
        build(project)
    assert not (project / ".build" / "artifacts").exists()


def test_secrets_in_two_sources_are_counted_and_code_that_does_not_compile_is_named(project, build):
    write(project / "backend" / "a.py", "KEY = 'AKIAABCDEFGHIJKLMNOP'\n")
    write(project / "backend" / "b.py", "KEY = 'AKIAABCDEFGHIJKLMNOQ'\n")
    with pytest.raises(UserError, match=r"backend/a\.py:1: .*\(and 1 more\); remove it from"):
        build(project)
    (project / "backend" / "a.py").unlink()
    write(project / "backend" / "b.py", "def (:\n")
    with pytest.raises(UserError, match=r"^backend/b\.py does not compile for Python 3\.\d+"):
        build(project)


def test_a_project_module_shadowing_a_dependency_is_refused(project, build):
    write(project / "tinydep_extra.py", "X = 1\n")
    with pytest.raises(
        UserError, match=r"tinydep_extra\.py is both a project file and part of a dependency"
    ):
        build(project)


def test_unsupported_runtime_is_a_user_error(project, build):
    with pytest.raises(UserError, match=r"--runtime 'python2\.7' is not supported"):
        build(project, runtime="python2.7")


@pytest.mark.usefixtures("own_wheel_store")  # so its build downloads, and says so
def test_progress_goes_to_stderr_only_when_asked(project, build, capsys):
    build(project, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "downloading the locked wheels" in err
    assert "writing" in err
    shutil.rmtree(project / ".build")
    build(project)
    assert capsys.readouterr() == ("", "")


def test_separate_processes_in_other_places_write_the_same_bytes(tmp_path, wheelhouse):
    # GIVEN two checkouts, one written under umask 077 with every file touched
    a = make_project(tmp_path / "a")
    old = os.umask(0o077)
    try:
        b = make_project(tmp_path / "elsewhere" / "deeper" / "b")
    finally:
        os.umask(old)
    for path in b.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    root = Path(__file__).resolve().parents[3]

    def cli_build(project, umask, seed, tz):
        # WHEN each is built by its own process: another cwd, umask, hash seed, zone
        out = project.parent / "out" / "pkg.zip"
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": seed, "TZ": tz}
        subprocess.run(
            [sys.executable, "-m", "lambda_pkg", "build", "--source", str(project),
             "--runtime", HOST_RUNTIME, "--output", str(out), "--json",
             *[f"--pip-arg={x}" for x in offline(wheelhouse)]],
            cwd=project.parent, env=env, preexec_fn=lambda: os.umask(umask),
            capture_output=True, check=True, timeout=300,
        )  # fmt: skip
        return out

    lock(a, wheelhouse)
    lock(b, wheelhouse)
    one = cli_build(a, 0o022, "1", "UTC")
    two = cli_build(b, 0o077, "2", "Asia/Kolkata")
    # THEN the zips are byte-identical, and each is 0644 whatever the umask
    assert one.read_bytes() == two.read_bytes()
    assert (two.stat().st_mode & 0o777, one.stat().st_mode & 0o777) == (0o644, 0o644)
    manifest = two.with_name("pkg.manifest.json")
    assert manifest.stat().st_mode & 0o777 == 0o644
    assert (
        load_manifest(manifest).sha256 == load_manifest(one.with_name("pkg.manifest.json")).sha256
    )


def test_a_failed_output_placement_leaves_the_previous_output_whole(
    project, build, tmp_path, monkeypatch
):
    from lambda_pkg import api

    out = tmp_path / "out" / "pkg.zip"
    first = api.place_artifact(build(project, layer=True), out)
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    write(project / "backend" / "core.py", "def run():\n    return 4\n")
    second = build(project, layer=True)

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    # WHEN the disk fills up after both zips were copied, while writing the manifest
    monkeypatch.setattr(api, "stage_json", full_disk)
    with pytest.raises(UserError, match=r"cannot write --output .*pkg\.zip: No space left"):
        api.place_artifact(second, out)
    # THEN the previous zip, layer and manifest are exactly as they were; no temp is left
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    assert load_manifest(first.manifest_path).sha256 == first.sha256


def test_a_cache_directory_that_cannot_be_written_is_a_user_error(project, build, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"cannot write the build cache .*a-file/cache"):
        build(project, cache_dir=blocker / "cache")
