"""Fixtures for the backend's tests: moto's S3, DynamoDB and Secrets Manager with the
bucket and the pk/sk table (tests/runtime_support.py)."""

import pytest
from moto import mock_aws

from tests.runtime_support import deploy

BUCKET = "ctb-test-bucket"
TABLE = "ctb-test-market-data"


@pytest.fixture
def aws():
    with mock_aws():
        yield deploy(bucket=BUCKET, table=TABLE, secret=False)
