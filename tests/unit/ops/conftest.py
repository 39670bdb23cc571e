"""Fixtures for the operating commands: packages on disk and a moto-backed AWS."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lambda_pkg.awsclient import RetryingClient

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


@pytest.fixture
def package(tmp_path) -> Path:
    return make_zip(tmp_path / "lambda_deployment.zip")


@pytest.fixture
def aws():
    with mock_aws():
        yield


@pytest.fixture
def bucket(aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


@pytest.fixture
def s3(aws):
    """moto's S3 behind our retrying wrapper, with sleeps recorded instead of taken."""
    client = RetryingClient(boto3.client("s3", region_name="us-east-1"), sleep=lambda _s: None)
    return client


@pytest.fixture
def small_parts(monkeypatch):
    # moto enforces S3's 5 MiB minimum part size; lower it so multipart tests stay fast.
    import moto.s3.models

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 256)
