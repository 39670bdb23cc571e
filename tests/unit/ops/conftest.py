"""Fixtures for the operating commands: packages on disk and a moto-backed AWS."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ops.session import AwsSession, AwsSettings
from tests.unit.ops.helpers import BUCKET, make_zip


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
    """moto's S3 through the session the commands use (botocore's standard retries)."""
    return AwsSession(AwsSettings(region="us-east-1")).s3()
