"""Shared helpers for the operating-command tests (imported, not fixtures)."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

from lambda_pkg.artifact import Artifact, write_manifest

BUCKET = "ctb-test-bucket"
KEY = "lambda/dev/lambda_deployment.zip"
HANDLER = "aws/market_data_fetcher.py"


def make_zip(path: Path, *, payload: int = 1024, handler: bool = True, seed: bytes = b"") -> Path:
    """A package with a handler and `payload` incompressible bytes (stored, so the
    zip's size tracks the payload and multipart thresholds are easy to cross)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        if handler:
            zf.writestr(HANDLER, "def handler(event, context):\n    return {'ok': True}\n")
        zf.writestr("backend/blob.bin", seed + os.urandom(payload))
    return path


def zip_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(HANDLER, text)
    return buffer.getvalue()


def write_test_manifest(
    zip_path: Path,
    manifest_path: Path,
    *,
    data: bytes | None = None,
    sha256: str | None = None,
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    builder_version: str = "b",
) -> Artifact:
    """A manifest as the packager writes it, for `zip_path`'s bytes (or `data`, when the
    zip itself is absent), unless `sha256` names other content on purpose."""
    content = zip_path.read_bytes() if data is None else data
    art = Artifact(
        path=zip_path,
        sha256=sha256 or hashlib.sha256(content).hexdigest(),
        size=len(content),
        unzipped_size=1,
        input_hash="x",
        runtime=runtime,
        architecture=architecture,
        builder_version=builder_version,
        manifest_path=manifest_path,
    )
    write_manifest(art)
    return art
