"""Fixtures for the handler's tests: moto's AWS with the deployed resources, the Lambda
environment the infrastructure sets, and a fake LambdaContext."""

from dataclasses import dataclass
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from backend.clients import AwsClients

BUCKET = "ctb-handler-test"
TABLE = "cloud-trading-bot-dev-market-data"
SECRET_VALUE = "sk-live-do-not-log-0123456789"


@dataclass
class FakeContext:
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_name: str = "market_data_fetcher-dev"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


def _create_table(dynamodb):
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


@pytest.fixture
def world():
    """Deployed resources in moto, and helpers to see what the handler wrote."""
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        dynamodb = boto3.client("dynamodb")
        _create_table(dynamodb)
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name="cloud-trading-bot/dev/market-data-api-key")["ARN"]
        secrets.put_secret_value(SecretId=arn, SecretString=SECRET_VALUE)
        env = {
            "ENVIRONMENT": "dev",
            "BUCKET_NAME": BUCKET,
            "DATA_PREFIX": "data/dev/",
            "LOGS_PREFIX": "logs/dev/",
            "TABLE_NAME": TABLE,
            "API_KEY_SECRET_ARN": arn,
            "SYMBOLS": "SPY,QQQ,AAPL",
            "MARKET_DATA_PROVIDER": "fixture",
            "LOG_LEVEL": "INFO",
        }

        def objects():
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            return {
                o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                for page in pages
                for o in page.get("Contents", [])
            }

        def items():
            return dynamodb.scan(TableName=TABLE)["Items"]

        yield SimpleNamespace(
            s3=s3,
            dynamodb=dynamodb,
            secrets=secrets,
            arn=arn,
            secret_value=SECRET_VALUE,
            env=env,
            clients=AwsClients(),
            objects=objects,
            items=items,
        )


@pytest.fixture
def context():
    return FakeContext()
