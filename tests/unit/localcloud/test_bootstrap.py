"""scripts/bootstrap.sh: which requirements each set installs, when pip runs at all, and
the progress it shows. The venv's `python` is a stand-in that records its arguments and
prints what pip prints, so no test installs anything."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FAKE_PYTHON = """#!/bin/sh
echo "$@" >> "$FAKE_LOG"
if [ -n "$FAKE_FAIL" ]; then
  echo "ERROR: No matching distribution found for nothing" >&2; exit 1
fi
cat <<'OUT'
Collecting pulumi<4,>=3.200 (from -r requirements.txt (line 3))
  Downloading pulumi-3.272.0-py3-none-any.whl.metadata (3.8 kB)
Collecting pulumi-aws<8,>=7 (from -r requirements.txt (line 4))
  Downloading pulumi_aws-7.51.1-py3-none-any.whl (13.0 MB)
Collecting six (from x)
  Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)
Installing collected packages: six, pulumi, pulumi-aws
Successfully installed pulumi pulumi-aws six
OUT
"""


@pytest.fixture
def venv(tmp_path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return venv


def bootstrap(
    venv: Path, dependency_set: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ["PATH"],
        "VENV": str(venv),
        "FAKE_LOG": str(venv / "calls.log"),
        **env,
    }
    if dependency_set:
        environ["BOOTSTRAP_SET"] = dependency_set
    return subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/bootstrap.sh" && echo "VENV_PY=$VENV_PY"'],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(venv: Path) -> list[str]:
    log = venv / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def stamp(*files: str) -> str:
    return hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in files)).hexdigest()


def test_the_run_set_installs_the_main_jobs_requirements_and_shows_progress(venv):
    done = bootstrap(venv, "run")
    assert done.returncode == 0, done.stderr
    (call,) = calls(venv)
    assert call.startswith("-m pip install --no-compile") and call.endswith(
        "requirements-local.txt"
    )
    # It says what and roughly how much, each large download with a package count, the end.
    assert "installing the 'run' dependencies from requirements-local.txt" in done.stderr
    assert "MB to download" in done.stderr
    assert "    [  2] downloading pulumi_aws-7.51.1-py3-none-any.whl (13.0 MB)" in done.stderr
    assert "metadata" not in done.stderr and "six-1.16.0" not in done.stderr  # under 1 MB
    assert "==> 3 packages collected; installing" in done.stderr
    assert "==> dependencies installed in" in done.stderr
    assert f"VENV_PY={venv}/bin/python" in done.stdout
    stamped = (venv / ".requirements-run.sha256").read_text().strip()
    assert stamped == stamp("requirements.txt", "requirements-local.txt")


def test_pip_runs_only_when_the_sets_files_changed(venv):
    assert bootstrap(venv, "run").returncode == 0
    assert bootstrap(venv, "run").returncode == 0
    assert len(calls(venv)) == 1
    # A run venv is not enough for the test tools: dev installs requirements-dev.txt.
    assert bootstrap(venv, None).returncode == 0
    assert calls(venv)[-1].endswith("requirements-dev.txt")
    # AND a dev venv satisfies run
    (venv / ".requirements-run.sha256").unlink()
    assert bootstrap(venv, "run").returncode == 0
    assert len(calls(venv)) == 2


def test_a_failed_install_stamps_nothing_and_says_which_file(venv):
    done = bootstrap(venv, "run", FAKE_FAIL="1")
    assert done.returncode == 1
    assert "No matching distribution" in done.stderr
    assert "error: could not install requirements-local.txt" in done.stderr
    assert not (venv / ".requirements-run.sha256").exists()


def test_an_unknown_set_is_a_one_line_error(venv):
    done = bootstrap(venv, "prod")
    assert done.returncode == 2 and calls(venv) == []
    assert done.stderr.strip().startswith("error: BOOTSTRAP_SET=prod: use run (the main job's")


def test_dev_is_a_superset_of_run_and_run_of_the_program():
    # Each set's file -r's the one before, so no package is pinned in two places.
    assert "-r requirements.txt" in (ROOT / "requirements-local.txt").read_text().splitlines()
    assert "-r requirements-local.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
