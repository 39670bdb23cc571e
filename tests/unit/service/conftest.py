import signal

import boto3
import pytest
from moto import mock_aws

from tests.unit.service.helpers import create_world


@pytest.fixture
def world():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        create_world(ddb, s3)
        yield ddb, s3


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    # main() installs SIGTERM/SIGINT handlers, as the real process must.
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)
