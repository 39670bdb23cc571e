"""Shared helpers for the operating-command tests (imported, not fixtures)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

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
