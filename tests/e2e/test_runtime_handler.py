"""The handler in its own process against moto_server, configured only by environment
variables (AWS_ENDPOINT_URL included), the way the rehearsal and Lambda run it."""

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from infra.emulator import EMULATOR_ENV, moto_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
INVOKE = """
import json, sys
from aws.market_data_fetcher import handler
class Context:
    aws_request_id = sys.argv[2]
    def get_remaining_time_in_millis(self):
        return 60_000
print(json.dumps(handler(json.loads(sys.argv[1]), Context())))
"""


def _invoke(env, event, request_id):
    result = subprocess.run(
        [sys.executable, "-c", INVOKE, json.dumps(event), request_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    *logs, answer = result.stdout.splitlines()
    return json.loads(answer), [json.loads(line) for line in logs]


def test_fixture_run_against_moto_server():
    with moto_server() as url:
        s3 = boto3.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket="ctb-e2e")
        dynamodb = boto3.client("dynamodb", endpoint_url=url)
        dynamodb.create_table(
            TableName="cloud-trading-bot-dev-market-data",
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
        secrets = boto3.client("secretsmanager", endpoint_url=url)
        arn = secrets.create_secret(Name="cloud-trading-bot/dev/market-data-api-key")["ARN"]
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            **EMULATOR_ENV,
            "AWS_ENDPOINT_URL": url,
            "ENVIRONMENT": "dev",
            "BUCKET_NAME": "ctb-e2e",
            "DATA_PREFIX": "data/dev/",
            "LOGS_PREFIX": "logs/dev/",
            "TABLE_NAME": "cloud-trading-bot-dev-market-data",
            "API_KEY_SECRET_ARN": arn,
            "SYMBOLS": "SPY,QQQ,AAPL",
            "MARKET_DATA_PROVIDER": "fixture",
            "LOG_LEVEL": "INFO",
        }

        # WHEN the seed's smoke test runs: THEN healthy, with only a warning for the
        # secret that has no value yet, and nothing written
        report, _ = _invoke(env, {"test": True}, "req-test")
        assert report["ok"] is True
        assert {c["name"]: c["status"] for c in report["checks"]}["secret"] == "warning"
        assert s3.list_objects_v2(Bucket="ctb-e2e")["KeyCount"] == 0

        # WHEN a scheduled fetch runs: THEN bars, items and the run record land
        answer, logs = _invoke(env, {}, "req-fetch")
        assert answer["counts"] == {"requested": 3, "succeeded": 3, "failed": 0}
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="ctb-e2e")["Contents"]]
        assert sum(k.startswith("data/dev/market/symbol=SPY/interval=1d/") for k in keys) == 5
        assert "logs/dev/market_data_fetcher/" in answer["run_record"]
        assert answer["run_record"] in keys
        table = dynamodb.scan(TableName="cloud-trading-bot-dev-market-data", Select="COUNT")
        assert table["Count"] == 18
        assert {line["request_id"] for line in logs} == {"req-fetch"}
