"""`python -m lambda_pkg image`: JSON out, an OCI layout written, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lambda_pkg.cli import main
from tests.unit.image.helpers import lock_offline

ROOT = Path(__file__).resolve().parents[3]


def _args(project: Path, wheelhouse: Path, base: Path, *extra: str) -> list[str]:
    lock_offline(project, wheelhouse)
    return [
        "image", "--source", str(project), "--base", str(base),
        "--pip-arg=--no-index", f"--pip-arg=--find-links={wheelhouse}", *extra,
    ]  # fmt: skip


def test_json_names_the_digest_and_the_layers(
    service_project, image_wheelhouse, base_layout, tmp_path, capsys
):
    out = tmp_path / "layout"
    args = _args(service_project, image_wheelhouse, base_layout, "--output", str(out), "--json")
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["digest"].startswith("sha256:") and result["built"] is True
    assert [x["role"] for x in result["layers"]] == ["base", "dependencies", "code"]
    assert all(x["size"] > 0 for x in result["layers"])
    assert result["output"] == str(out)
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == result["digest"]
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["built"] is False and again["digest"] == result["digest"]


def test_an_unpinned_base_is_one_line_and_exit_2(service_project, capsys):
    code = main(["image", "--source", str(service_project), "--base", "python:3.12-slim"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: --base python:3.12-slim: a tag can move")
    assert "Traceback" not in err


def test_the_human_summary(service_project, image_wheelhouse, base_layout, capsys):
    assert main(_args(service_project, image_wheelhouse, base_layout)) == 0
    out = capsys.readouterr().out
    assert out.startswith("built: sha256:")
    assert "dependencies sha256:" in out and "code         sha256:" in out


def test_help_lists_the_base_options():
    # Through the packaging CLI's entry point, in a fresh interpreter.
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from lambda_pkg.cli import main; "
         "sys.exit(main(['image', '--help']))"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0
    assert "--base REF|DIR" in proc.stdout and "local" in proc.stdout
