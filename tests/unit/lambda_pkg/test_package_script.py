"""scripts/package_lambda.sh: the seed's `package_lambda.sh [output_file.zip]`.

Each test runs the real script from a throwaway copy of the repository layout
(scripts/, lambda_pkg/ linked in, a small project), so the default output, which
goes to the project root, never touches this checkout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lambda_pkg.api import load_manifest

from .conftest import HOST_RUNTIME, lock, make_project, offline

REPO = Path(__file__).resolve().parents[3]
SCRIPT = "scripts/package_lambda.sh"


@pytest.fixture
def repo(tmp_path, wheelhouse) -> Path:
    root = make_project(tmp_path / "repo")
    lock(root, wheelhouse)
    (root / "scripts").mkdir()
    for name in ("package_lambda.sh", "bootstrap.sh"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    (root / "lambda_pkg").symlink_to(REPO / "lambda_pkg", target_is_directory=True)
    # What the printed `.venv/bin/python -m lambda_pkg verify` runs.
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(sys.executable)
    return root


def run(repo: Path, wheelhouse: Path, *args: str, cwd: Path | None = None):
    env = {**os.environ, "VENV_PY": sys.executable}
    env.pop("PYTHONPATH", None)
    build_options = ["--runtime", HOST_RUNTIME, *[f"--pip-arg={a}" for a in offline(wheelhouse)]]
    return subprocess.run(
        ["bash", str(repo / SCRIPT), *args, *build_options],
        cwd=cwd or repo, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def next_steps(stdout: str) -> list[str]:
    return [ln.strip() for ln in stdout.split("Next steps:", 1)[1].splitlines() if ln.strip()]


def test_no_argument_builds_lambda_deployment_zip_in_the_project_root(repo, wheelhouse, tmp_path):
    # WHEN the script runs without an output path, from some other directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run(repo, wheelhouse, cwd=elsewhere)
    # THEN the package and its manifest are in the project root, not the caller's directory
    assert result.returncode == 0, result.stderr
    art = load_manifest(repo / "lambda_deployment.manifest.json")  # the zip matches it
    assert art.path == repo / "lambda_deployment.zip"
    assert list(elsewhere.iterdir()) == []
    assert f"Package:  {repo / 'lambda_deployment.zip'}" in result.stdout
    assert f"Size:     {art.size / 1048576:.1f} MiB ({art.size} bytes)" in result.stdout


def test_an_output_path_is_relative_to_the_caller(repo, wheelhouse, tmp_path):
    cwd = tmp_path / "work"
    cwd.mkdir()
    result = run(repo, wheelhouse, "dist/pkg.zip", cwd=cwd)
    assert result.returncode == 0, result.stderr
    art = load_manifest(cwd / "dist" / "pkg.manifest.json")
    assert art.path == cwd / "dist" / "pkg.zip"
    assert not (repo / "lambda_deployment.zip").exists()


def test_the_printed_next_steps_name_commands_that_exist(repo, wheelhouse):
    result = run(repo, wheelhouse, "out.zip")
    assert result.returncode == 0, result.stderr
    steps = next_steps(result.stdout)
    commands = [s for s in steps if re.match(r"(CTB_ARTIFACT_MANIFEST=\S+ )?(scripts/|\.venv/)", s)]
    assert len(commands) == 5, steps
    deploy_usage = (REPO / "scripts" / "deploy.sh").read_text()
    for line in commands:
        words = line.split("#")[0].split()
        if words[0].startswith("CTB_ARTIFACT_MANIFEST="):
            # the manifest it names is the one just written, and it loads
            assert load_manifest(words.pop(0).split("=", 1)[1]).path == repo / "out.zip"
        script = words[0]
        if script.startswith("scripts/"):
            # every script exists in the repository, and takes the options given
            assert os.access(REPO / script, os.X_OK), script
            for flag in (w for w in words[1:] if w.startswith("--")):
                assert f"{flag})" in deploy_usage, (flag, line)
    upload = next(c for c in commands if "upload_lambda_to_s3.sh" in c).split()
    # the seed's argument order: <zip_file> <s3_bucket> <s3_key> [aws_region]
    assert upload[1:] == [
        str(repo / "out.zip"),
        "cloud-trading-bot-lambda-deployment-m6x4p8e",
        "lambda/dev/lambda_deployment.zip",
        "us-east-1",
    ]
    # AND the printed verify command works as printed, from where the script ran
    verify = next(c for c in commands if "lambda_pkg verify" in c)
    checked = subprocess.run(
        ["bash", "-c", verify], cwd=repo, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith("OK")


def test_from_another_directory_the_commands_carry_the_repository_path(repo, wheelhouse, tmp_path):
    result = run(repo, wheelhouse, "pkg.zip", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    steps = "\n".join(next_steps(result.stdout))
    assert f"{repo}/scripts/deploy.sh --stack dev" in steps
    assert f"{repo}/scripts/upload_lambda_to_s3.sh {tmp_path / 'pkg.zip'}" in steps
    verify = next(s for s in next_steps(result.stdout) if "lambda_pkg verify" in s)
    assert verify.startswith(f"cd {repo} && ")
    checked = subprocess.run(["bash", "-c", verify], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_layer_json_and_errors(repo, wheelhouse, tmp_path):
    # --layer: the layer and its size are reported, and the hand upload is not offered
    result = run(repo, wheelhouse, str(tmp_path / "l.zip"), "--layer", "--json")
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout)  # stdout is the build's JSON alone
    assert built["output"] == str(tmp_path / "l.zip")
    assert load_manifest(built["output_manifest"]).layer.path == tmp_path / "l-layer.zip"
    assert f"Layer:    {tmp_path / 'l-layer.zip'}" in result.stderr
    assert "upload_lambda_to_s3.sh" not in result.stderr
    # the printed rehearsal fits the layered build (the shipped stacks have no layer)
    assert "deploy.sh --stack dev --local --config dependencyLayer=true" in result.stderr
    assert "pulumi config set dependencyLayer true --stack dev" in result.stderr
    # a user error is the build's one line, exit 2, and no summary
    bad = run(repo, wheelhouse, "x.zip", "--architecture", "sparc")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "invalid choice: 'sparc'" in bad.stderr
    twice = run(repo, wheelhouse, "--output", "y.zip")
    assert twice.returncode == 2 and "first argument" in twice.stderr
    helped = subprocess.run(
        ["bash", str(repo / SCRIPT), "--help"], capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0 and "Usage: scripts/package_lambda.sh" in helped.stdout


def test_a_directory_output_gets_the_builds_own_names(repo, wheelhouse, tmp_path):
    # GIVEN an output directory (the build's rule, lambda_pkg.api.output_paths, names the files)
    result = run(repo, wheelhouse, "dist/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    art = load_manifest(tmp_path / "dist" / "lambda_deployment.manifest.json")
    assert f"Package:  {art.path}" in result.stdout
    assert f"Manifest: {art.manifest_path}" in result.stdout


def test_the_direct_upload_limit_is_the_manifests(repo, wheelhouse):
    # GIVEN a packager whose direct-upload limit is below this tiny package's size
    (repo / "lambda_pkg").unlink()
    shutil.copytree(
        REPO / "lambda_pkg", repo / "lambda_pkg", ignore=shutil.ignore_patterns("__pycache__")
    )
    limits_py = repo / "lambda_pkg" / "limits.py"
    text = limits_py.read_text()
    assert "DIRECT_UPLOAD_ZIPPED_MAX = 50 * 1024 * 1024" in text
    limits_py.write_text(
        text.replace(
            "DIRECT_UPLOAD_ZIPPED_MAX = 50 * 1024 * 1024", "DIRECT_UPLOAD_ZIPPED_MAX = 1024"
        )
    )
    # WHEN the script builds
    result = run(repo, wheelhouse, "out.zip")
    # THEN its summary uses the limit the manifest records, not a hard-coded 50 MiB
    assert result.returncode == 0, result.stderr
    report = json.loads((repo / "out.manifest.json").read_text())["report"]
    assert report["direct_upload_limit"] == 1024
    assert "direct-upload limit: it deploys from S3" in result.stdout
