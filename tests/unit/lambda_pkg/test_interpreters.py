import os
import sys

import pytest

from lambda_pkg import interpreters
from lambda_pkg.interpreters import candidates, find_interpreter

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.fixture(autouse=True)
def _fresh_cache():
    find_interpreter.cache_clear()
    yield
    find_interpreter.cache_clear()


def _fake_home(tmp_path, monkeypatch, *, shim: bool, real_version: str | None):
    """PATH holds a pyenv-style shim that fails; ~/.pyenv/versions may hold a real one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim_path = bin_dir / "python3.99"
    # It fails at once on every machine: pointed at a real pyenv (as it once was), it
    # ran itself in a loop, and uv, which runs what PATH holds, waited out its 20 s bound.
    libexec = tmp_path / "missing-pyenv" / "libexec" / "pyenv"
    shim_path.write_text(f'#!/usr/bin/env bash\nexec "{libexec}" exec "$0"\n')
    shim_path.chmod(0o755)
    broken = bin_dir / f"python{HOST}"
    broken.write_text("#!/bin/sh\nexit 127\n")  # on PATH, but does not run
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.delenv("LAMBDA_PKG_PYTHON", raising=False)
    if real_version:
        versions = tmp_path / "pyenv" / "versions"
        for v in (f"{real_version}.0", f"{real_version}.10"):
            exe = versions / v / "bin" / f"python{real_version}"
            exe.parent.mkdir(parents=True)
            exe.symlink_to(sys.executable)
    return bin_dir


def test_shims_are_skipped_and_pyenv_versions_are_found_newest_first(tmp_path, monkeypatch):
    _fake_home(tmp_path, monkeypatch, shim=True, real_version="3.99")
    found = candidates("3.99")
    assert not any(p.endswith("bin/python3.99") and "/pyenv/" not in p for p in found)
    assert found[0].endswith("versions/3.99.10/bin/python3.99")


def test_a_candidate_that_does_not_run_is_passed_over(tmp_path, monkeypatch):
    # GIVEN a broken python3.X first on PATH and the running interpreter's version
    real = sys.executable
    _fake_home(tmp_path, monkeypatch, shim=False, real_version=None)
    monkeypatch.setattr(interpreters.sys, "executable", str(tmp_path / "bin" / f"python{HOST}"))
    monkeypatch.setenv("LAMBDA_PKG_PYTHON", real)  # AND a working one configured
    interp = find_interpreter(HOST)
    assert interp is not None
    assert interp.path == real
    assert interp.cache_tag == sys.implementation.cache_tag


def test_wrong_version_is_not_accepted(tmp_path, monkeypatch):
    _fake_home(tmp_path, monkeypatch, shim=True, real_version="3.99")
    # the pyenv "3.99" entries are really the host Python: the probe sees through it
    assert find_interpreter("3.99") is None


def test_the_running_interpreter_is_used_for_its_own_version():
    interp = find_interpreter(HOST)
    assert interp is not None
    assert interp.version.startswith(HOST + ".")
    assert interp.bytecode_id.startswith(sys.implementation.cache_tag + ":")
