"""Small helpers shared by the rehearsal unit tests."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "scripts" / "deploy.sh"

FAKE_PULUMI = """#!/bin/sh
# Records how it was called; exits with $FAKE_PULUMI_EXIT (default 0).
printf '%s\\n' "$*" >> "$FAKE_PULUMI_LOG"
printf 'manifest=%s\\n' "$CTB_ARTIFACT_MANIFEST" >> "$FAKE_PULUMI_LOG"
exit "${FAKE_PULUMI_EXIT:-0}"
"""


def script_env(tmp_path: Path, *, pulumi: bool = True, credentials: bool = True) -> dict:
    """An environment for running scripts/deploy.sh in a test.

    VENV points at a stand-in whose python is this venv's and whose requirements
    stamp is current, so bootstrap.sh neither creates a venv nor runs pip. A fake
    `pulumi` records its arguments; credentials are dummies or absent.
    """
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    # bootstrap.sh's stamps (set_hash): each set's files concatenated, in order; a dev
    # venv is current for the run set too, so pip never runs.
    sets = {
        "run": ("requirements.txt", "requirements-local.txt"),
        "dev": ("requirements.txt", "requirements-local.txt", "requirements-dev.txt"),
    }
    for name, files in sets.items():
        reqs = b"".join((ROOT / f).read_bytes() for f in files)
        (venv / f".requirements-{name}.sha256").write_text(hashlib.sha256(reqs).hexdigest() + "\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    if pulumi:
        fake = tools / "pulumi"
        fake.write_text(FAKE_PULUMI)
        fake.chmod(0o755)
    env = {
        "PATH": f"{tools}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        # Where the stack's Python is found (lambda_pkg.interpreters), with HOME moved:
        # the rehearsal runs the strategy service on it.
        "PYENV_ROOT": os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv"),
        "VENV": str(venv),
        "FAKE_PULUMI_LOG": str(tmp_path / "pulumi.log"),
        # Never the developer's AWS config, and no instance-metadata lookups.
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    if credentials:
        env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return env


def run_deploy(*args: str, env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(DEPLOY), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def code_only_artifact(directory: Path):
    """A small real package of the bot's own code (no dependencies), with its
    manifest, like `lambda_pkg build` writes: what CONTRACTS.md §2 lets tests deploy."""
    from lambda_pkg.artifact import Artifact, write_manifest

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "code.zip"
    files = sorted(
        p
        for top in ("backend", "aws")
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    unzipped = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            data = f.read_bytes()
            unzipped += len(data)
            info = zipfile.ZipInfo(f.relative_to(ROOT).as_posix(), (1980, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    data = path.read_bytes()
    artifact = Artifact(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        unzipped_size=unzipped,
        input_hash="0" * 64,
        runtime="python3.12",
        architecture="x86_64",
        builder_version="test-code-only",
        manifest_path=directory / "manifest.json",
    )
    write_manifest(artifact)
    return artifact


def python_version_of(python: str) -> tuple[int, int]:
    """(major, minor) of the interpreter at `python`, as it reports itself."""
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    major, minor = out.stdout.split()
    return int(major), int(minor)
