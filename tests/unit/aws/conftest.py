"""Fixtures for the handler's tests: moto's AWS with the deployed resources and the
Lambda environment the infrastructure sets (tests/runtime_support.py), and a fake
LambdaContext."""

import pytest
from moto import mock_aws

from tests.runtime_support import FakeContext, RecordingClients, deploy

BUCKET = "ctb-handler-test"


@pytest.fixture
def world():
    """Deployed resources in moto, the function's environment, the runtime's clients
    (recording their calls), and helpers to see what the handler wrote."""
    with mock_aws():
        deployment = deploy(bucket=BUCKET)
        deployment.clients = RecordingClients()
        yield deployment


@pytest.fixture
def context():
    return FakeContext()
