"""The runtime's test world, in one place for tests/unit/{aws,backend}, the e2e handler
test and bench/handler.py.

- `deploy()` creates what the Pulumi program deploys for the runtime (the bucket, the
  pk/sk table, the API-key secret) wherever boto3 points: moto's in-process `mock_aws`,
  or a moto_server named by AWS_ENDPOINT_URL (`client=` lets a caller pass its own).
- `lambda_env()` is the environment infra/function.py sets (docs/CONTRACTS.md §3), with
  the names from infra.names; tests/unit/aws/test_contract.py checks it against
  `infra.function.runtime_environment`, so the tests run under the deployed contract.
- `FakeContext` has the LambdaContext attributes the handler reads.
- `RecordingClients` is `AwsClients` that also records every API call it makes.

Importing it needs boto3 (the tests and the benchmark have it), not pulumi.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3

from backend.clients import AwsClients
from infra.names import Names

SYMBOLS = ("SPY", "QQQ", "AAPL")
SECRET_VALUE = "sk-live-do-not-log-0123456789"
# What infra/data.py creates: pk/sk strings, on demand (docs/CONTRACTS.md §5).
TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def create_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(TableName=name, **TABLE_SCHEMA)


def lambda_env(
    *,
    environment: str,
    bucket: str,
    table: str,
    secret_arn: str | None,
    symbols: Sequence[str] = SYMBOLS,
    provider: str = "fixture",
    log_level: str = "INFO",
) -> dict[str, str]:
    names = Names.for_env(environment)
    env = {
        "ENVIRONMENT": environment,
        "BUCKET_NAME": bucket,
        "DATA_PREFIX": names.data_prefix,
        "LOGS_PREFIX": names.logs_prefix,
        "TABLE_NAME": table,
        "SYMBOLS": ",".join(symbols),
        "MARKET_DATA_PROVIDER": provider,
        "LOG_LEVEL": log_level,
    }
    if secret_arn is not None:
        env["API_KEY_SECRET_ARN"] = secret_arn
    return env


@dataclass
class Deployment:
    """The deployed resources, clients to look at them, and the function's environment."""

    s3: Any
    dynamodb: Any
    secretsmanager: Any
    bucket: str
    table: str
    secret_arn: str | None
    secret_value: str | None
    env: dict[str, str]

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, key -> bytes."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return {
            o["Key"]: self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            for page in pages
            for o in page.get("Contents", [])
        }

    def items(self) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.table)
        return [item for page in pages for item in page["Items"]]


def deploy(
    *,
    bucket: str,
    environment: str = "dev",
    table: str | None = None,
    secret: bool = True,
    secret_value: str | None = SECRET_VALUE,
    client: Callable[[str], Any] = boto3.client,
    **env: Any,
) -> Deployment:
    """Create the bucket, the table (default: the environment's name) and, if `secret`,
    the API-key secret (with `secret_value`, or no value at all when None). Extra keyword
    arguments go to `lambda_env` (symbols, provider, log_level)."""
    names = Names.for_env(environment)
    table = table or names.table
    s3, dynamodb, secrets = client("s3"), client("dynamodb"), client("secretsmanager")
    s3.create_bucket(Bucket=bucket)
    create_table(dynamodb, table)
    arn = None
    if secret:
        arn = secrets.create_secret(Name=names.secret)["ARN"]
        if secret_value is not None:
            secrets.put_secret_value(SecretId=arn, SecretString=secret_value)
    return Deployment(
        s3=s3,
        dynamodb=dynamodb,
        secretsmanager=secrets,
        bucket=bucket,
        table=table,
        secret_arn=arn,
        secret_value=secret_value if secret else None,
        env=lambda_env(environment=environment, bucket=bucket, table=table, secret_arn=arn, **env),
    )


@dataclass
class FakeContext:
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    function_name: str = "market_data_fetcher-dev"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass(frozen=True)
class Call:
    service: str  # boto3's name: s3, dynamodb, secretsmanager
    operation: str  # the API name, which is also the IAM action's: PutObject
    params: dict[str, Any] = field(hash=False, compare=False)


class RecordingClients(AwsClients):
    """The runtime's own clients (same config), recording each API call as it is made
    and counting the HTTP requests sent (retries included)."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.calls: list[Call] = []
        self.sent: list[str] = []

    def _create(self, service: str) -> Any:
        client = super()._create(service)

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.calls.append(Call(service, model.name, dict(params)))

        # The bare event name matches every operation of the client.
        client.meta.events.register("provide-client-params", record)
        client.meta.events.register("before-send", lambda **_: self.sent.append(service))
        return client
