"""`python -m infra.rehearsal` before any step runs: the environment and the
commands it prints."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.rehearsal.helpers import ROOT


def test_a_missing_environment_is_one_clear_line():
    # GIVEN an interpreter without the project's packages (-S: no site-packages)
    proc = subprocess.run(
        [sys.executable, "-S", "-m", "infra.rehearsal"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    # THEN one line says what is missing and the command that works, exit 2
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "lacks the project's packages (pulumi" in line
    assert "scripts/bootstrap.sh" in line and ".venv/bin/python -m infra.rehearsal" in line


def test_usage_names_the_interpreter_that_works():
    # GIVEN the venv's interpreter, run from the project
    proc = subprocess.run(
        [sys.executable, "-m", "infra.rehearsal", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    # THEN the usage line shows that interpreter, not a bare `python`
    usage = proc.stdout.splitlines()[0]
    assert not usage.startswith("usage: python -m")
    assert usage.startswith("usage: ") and " -m infra.rehearsal" in usage
    assert "python" in usage.split(" -m ")[0]
