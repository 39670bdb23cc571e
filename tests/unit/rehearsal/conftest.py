"""Fixtures for the rehearsal engine's unit tests: in-process moto (fast), with the
engine's clients pointed at it (endpoint_url=None is the in-process mode)."""

from __future__ import annotations

import pytest
from moto import mock_aws
from pulumi.runtime import MockResourceArgs

from infra.rehearsal.clients import EmulatorClients
from infra.rehearsal.engine import EmulatorMocks


@pytest.fixture
def aws():
    with mock_aws():
        yield EmulatorClients(endpoint_url=None)


@pytest.fixture
def engine(aws) -> EmulatorMocks:
    return EmulatorMocks(aws)


class Deployer:
    """Calls the engine the way Pulumi's mock monitor does."""

    def __init__(self, engine: EmulatorMocks) -> None:
        self.engine = engine

    def __call__(self, typ: str, logical: str, /, **inputs):
        return self.engine.new_resource(
            MockResourceArgs(typ=typ, name=logical, inputs=inputs, custom=True)
        )

    def bucket(self, name: str = "ctb-test-bucket", *, versioned: bool = True) -> str:
        self("aws:s3/bucket:Bucket", "bucket", bucket=name)
        if versioned:
            self(
                "aws:s3/bucketVersioning:BucketVersioning",
                "versioning",
                bucket=name,
                versioningConfiguration={"status": "Enabled"},
            )
        return name

    def role(self, name: str = "fn-role") -> str:
        _, out = self(
            "aws:iam/role:Role",
            "role",
            name=name,
            assumeRolePolicy='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}',
        )
        return out["arn"]


@pytest.fixture
def deploy(engine) -> Deployer:
    return Deployer(engine)
