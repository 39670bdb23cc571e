"""Ledger stores for the trading tests: in memory, and on moto's DynamoDB."""

import boto3
import pytest
from moto import mock_aws

from backend.trading.dynamo import DynamoStore, ensure_table
from backend.trading.ledger import Ledger, MemoryStore

LEDGER_TABLE = "cloud-trading-bot-test-ledger"


@pytest.fixture
def dynamo_store():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, LEDGER_TABLE)
        yield DynamoStore(client=client, table_name=LEDGER_TABLE)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("dynamo_store")


@pytest.fixture
def ledger(store):
    return Ledger(store)
