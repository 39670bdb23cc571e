"""Fixtures for the backend's tests: moto for storage and secrets, fixed clocks."""

from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

BUCKET = "ctb-test-bucket"
TABLE = "ctb-test-market-data"


@pytest.fixture
def aws():
    """moto's S3, DynamoDB and Secrets Manager, with the bucket and the pk/sk table."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield SimpleNamespace(
            s3=s3,
            dynamodb=dynamodb,
            secretsmanager=boto3.client("secretsmanager"),
            bucket=BUCKET,
            table=TABLE,
        )
