"""Issue 10 section 6: locks per target, the service's lock, and the API the image
builder installs from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lambda_pkg.api import ensure_artifact, resolve_dependencies
from lambda_pkg.errors import UserError
from lambda_pkg.lock import lock_project, read_lock
from tests.wheelhouse import offline_args

from .conftest import HOST_RUNTIME, make_project, make_wheel, offline, write

ROOT = Path(__file__).resolve().parents[3]


def service_project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "p", requirements="tinydep\n")
    write(root / "requirements-service.txt", "-r requirements_Version9.txt\nusesboto\nleafdep\n")
    return root


def test_lock_writes_one_lock_per_input_and_target_the_service_constrained(tmp_path, wheelhouse):
    root = service_project(tmp_path)
    locks = lock_project(
        root, targets=[(HOST_RUNTIME, "x86_64"), ("python3.12", "arm64")],
        index_args=offline(wheelhouse),
    )  # fmt: skip
    assert sorted(p.path.name for p in locks) == sorted([
        f"requirements_Version9.{HOST_RUNTIME}-x86_64.txt",
        f"requirements-service.{HOST_RUNTIME}-x86_64.txt",
        "requirements_Version9.python3.12-arm64.txt",
        "requirements-service.python3.12-arm64.txt",
    ])  # fmt: skip
    lam = read_lock(root / "locks" / f"requirements_Version9.{HOST_RUNTIME}-x86_64.txt")
    svc = read_lock(root / "locks" / f"requirements-service.{HOST_RUNTIME}-x86_64.txt")
    lam_pins = {p.name: p.version for p in lam.pins}
    svc_pins = {p.name: p.version for p in svc.pins}
    # THEN the service has the Lambda's versions of every package they share
    assert lam_pins == {"tinydep": "1.0", "leafdep": "2.0"}
    assert {k: svc_pins[k] for k in lam_pins} == lam_pins
    assert {"usesboto", "boto3", "botocore"} <= set(svc_pins)
    assert svc.constraints == (lam.path.name, lam.digest)
    assert all(p.hashes for p in svc.pins)


def test_the_lambda_lock_keeps_what_the_runtimes_botocore_requires(tmp_path):
    # GIVEN a dependency that would take the newest python-dateutil (4.0), which the
    # Lambda runtime's botocore refuses (it requires < 3), and so would shadow the
    # runtime's copy with one botocore was never meant to run with
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "python_dateutil", "2.9.0", {"dateutil/__init__.py": ""})
    make_wheel(wheels, "python_dateutil", "4.0.0", {"dateutil/__init__.py": ""})
    make_wheel(wheels, "usesdates", "1.0", requires=("python-dateutil>=2",))
    root = make_project(tmp_path / "p", requirements="usesdates\n")
    # WHEN the Lambda's requirements are locked
    (lam,) = lock_project(root, targets=[(HOST_RUNTIME, "x86_64")], index_args=offline(wheels))
    # THEN the lock holds the version the runtime's botocore accepts, and no boto3
    pins = {p.name: p.version for p in lam.pins}
    assert pins == {"usesdates": "1.0", "python-dateutil": "2.9.0"}


def test_the_documented_command_refreshes_the_locks(tmp_path, wheelhouse):
    root = service_project(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "lambda_pkg.lock", "--source", str(root), "--target",
         f"{HOST_RUNTIME}/x86_64", *offline(wheelhouse)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "locked requirements-service.txt for" in out.stdout
    # a bad target is one line, exit 2
    bad = subprocess.run(
        [sys.executable, "-m", "lambda_pkg.lock", "--source", str(root), "--target", "py/sparc"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "'py/sparc' is not a target" in bad.stderr


def test_resolve_dependencies_gives_the_locked_audited_files(tmp_path, wheelhouse):
    root = service_project(tmp_path)
    lock_project(root, targets=[(HOST_RUNTIME, "x86_64")], index_args=offline(wheelhouse))
    deps = resolve_dependencies(
        project_dir=root, requirements=root / "requirements-service.txt", runtime=HOST_RUNTIME,
        architecture="x86_64", cache_dir=tmp_path / "cache", bundle_boto3=True,
        pip_args=offline(wheelhouse),
    )  # fmt: skip
    files = {f.name: f for f in deps.files}
    assert files["tinydep/core.py"].read() == b"VALUE = 42\n"
    assert "boto3/__init__.py" in files  # bundled: a container has no runtime's boto3
    assert "tinydep/tests/test_core.py" not in files  # stripped as in the zip
    assert any(n.endswith(".pyc") for n in files)
    assert deps.lock == root / "locks" / f"requirements-service.{HOST_RUNTIME}-x86_64.txt"
    assert deps.lock_sha256 == read_lock(deps.lock).digest
    assert {d.name for d in deps.distributions} >= {"tinydep", "usesboto", "boto3"}
    # AND the Lambda's own dependencies through the same API are what its zip holds
    lam = resolve_dependencies(project_dir=root, runtime=HOST_RUNTIME, cache_dir=root / ".build",
                               pip_args=offline(wheelhouse))  # fmt: skip
    art = ensure_artifact(project_dir=root, runtime=HOST_RUNTIME, pip_args=offline(wheelhouse))
    with zipfile.ZipFile(art.path) as zf:
        for f in lam.files:
            assert zf.read(f.name) == f.read()


def test_a_service_lock_made_against_another_lambda_lock_is_stale(tmp_path, wheelhouse):
    root = service_project(tmp_path)
    lock_project(root, targets=[(HOST_RUNTIME, "x86_64")], index_args=offline(wheelhouse))
    # the Lambda's lock alone is refreshed against another input
    write(
        root / "requirements_Version9.txt",
        "tinydep\nsix-like-nothing-else==0; python_version < '3'\n",
    )
    lock_project(root, requirements=[root / "requirements_Version9.txt"],
                 targets=[(HOST_RUNTIME, "x86_64")], index_args=offline(wheelhouse))  # fmt: skip
    with pytest.raises(UserError, match=r"requirements-service\..*(does not match|was locked "
                       r"against another).*python -m lambda_pkg\.lock"):  # fmt: skip
        resolve_dependencies(project_dir=root, requirements=root / "requirements-service.txt",
                             runtime=HOST_RUNTIME, pip_args=offline(wheelhouse))  # fmt: skip


@pytest.mark.network
def test_two_clones_with_two_caches_build_the_same_bytes_from_the_lock(tmp_path, locked_wheels):
    # GIVEN two clones of the bot (its sources, requirements and committed lock)
    def clone(dest: Path) -> Path:
        for top in ("backend", "aws"):
            shutil.copytree(ROOT / top, dest / top, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "requirements_Version9.txt", dest)
        shutil.copytree(ROOT / "locks", dest / "locks")
        return dest

    a, b = clone(tmp_path / "one"), clone(tmp_path / "elsewhere" / "two")
    os.utime(b / "backend", (1_000_000_000, 1_000_000_000))
    # WHEN each builds with its own empty cache, installing the locked wheels (fetched
    # once per session from PyPI, then kept in the session's wheel store; each is checked
    # against the lock's hashes, by pip when it downloads, by the store when it gives)
    pip_args = offline_args(locked_wheels)
    art_a = ensure_artifact(project_dir=a, cache_dir=tmp_path / "cache-a", pip_args=pip_args)
    art_b = ensure_artifact(project_dir=b, cache_dir=tmp_path / "cache-b", pip_args=pip_args)
    # THEN the zips are byte-identical
    assert art_a.sha256 == art_b.sha256
    assert hashlib.sha256(art_b.path.read_bytes()).hexdigest() == art_a.sha256
    assert {d.name for d in art_a.details.distributions} >= {"yfinance", "pandas", "numpy"}
