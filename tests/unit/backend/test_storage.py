import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from backend.layout import BAR_TTL_SECONDS, MAX_TABLE_BARS, bar_object_key, run_record_key
from backend.models import Bar
from backend.storage import (
    DynamoTable,
    S3ObjectStore,
    StorageError,
    bar_items,
    encode_bars,
    latest_item,
)
from tests.unit.backend.conftest import BUCKET, TABLE

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)


def _bars(n, symbol="AAPL", interval="1d", step=timedelta(days=1)):
    return [
        Bar.create(
            symbol=symbol,
            interval=interval,
            timestamp=datetime(2024, 1, 1, tzinfo=UTC) + step * i,
            open=10.0 + i,
            high=12.0 + i,
            low=9.0 + i,
            close=11.0 + i,
            volume=100 * i,
        )
        for i in range(n)
    ]


def test_key_layout_matches_the_contract():
    assert (
        bar_object_key("data/dev/", "BRK-B", "1d", date(2024, 3, 5))
        == "data/dev/market/symbol=BRK-B/interval=1d/date=2024-03-05.json"
    )
    assert (
        run_record_key("logs/dev/", date(2024, 3, 5), "req-1")
        == "logs/dev/market_data_fetcher/date=2024-03-05/req-1.json"
    )


def test_encoding_is_sorted_json_lines_and_stable():
    bars = _bars(3)
    body = encode_bars(reversed(bars))
    lines = body.decode().splitlines()
    assert [json.loads(line)["timestamp"] for line in lines] == [b.iso_time for b in bars]
    assert body == encode_bars(bars)
    assert json.loads(lines[0]) == {
        "symbol": "AAPL",
        "interval": "1d",
        "timestamp": "2024-01-01T00:00:00Z",
        "open": 10.0,
        "high": 12.0,
        "low": 9.0,
        "close": 11.0,
        "volume": 0,
    }


def test_put_bars_writes_one_object_per_day_and_overwrites_on_rerun(aws):
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    bars = _bars(3)
    keys = store.put_bars("data/dev/", "AAPL", "1d", bars)
    again = store.put_bars("data/dev/", "AAPL", "1d", bars)
    assert keys == again
    listed = aws.s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(keys)
    assert len(keys) == 3
    body = aws.s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
    assert body == encode_bars(bars[:1])


def test_bar_items_keep_only_the_latest_bars_with_ttl():
    bars = _bars(MAX_TABLE_BARS + 20, "SPY", "5m", step=timedelta(minutes=5))
    items = bar_items(bars)
    assert len(items) == MAX_TABLE_BARS
    assert items[0]["pk"] == {"S": "BAR#SPY#5m"}
    assert items[0]["sk"] == {"S": f"TS#{bars[20].iso_time}"}
    assert items[-1]["expires_at"] == {
        "N": str(int(bars[-1].timestamp.timestamp()) + BAR_TTL_SECONDS)
    }


def test_latest_item_carries_indicators_and_fetch_time():
    bars = _bars(3)
    item = latest_item(bars, period="5d", indicators={"rsi_14": 55.5}, fetched_at=NOW)
    assert item["sk"] == {"S": "LATEST"}
    assert item["ts"] == {"S": bars[-1].iso_time}
    assert item["rsi_14"] == {"N": "55.5"}
    assert item["fetched_at"] == {"S": "2024-03-15T14:30:00Z"}


def test_put_items_batches_by_25_and_rerun_adds_no_duplicates(aws):
    table = DynamoTable(client=aws.dynamodb, table_name=TABLE)
    items = bar_items(_bars(60, "SPY", "1h", step=timedelta(hours=1)))
    assert table.put_items(items) == 3  # 25 + 25 + 10
    table.put_items(items)
    assert aws.dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == 60


class ThrottlingDynamo:
    """Leaves the last item of each batch unprocessed `times` times, like a throttled table."""

    def __init__(self, times):
        self.times = times
        self.calls = []

    def batch_write_item(self, RequestItems):
        (requests,) = RequestItems.values()
        self.calls.append(len(requests))
        if self.times:
            self.times -= 1
            return {"UnprocessedItems": {TABLE: requests[-1:]}}
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_retried_with_backoff():
    fake = ThrottlingDynamo(times=2)
    sleeps = []
    table = DynamoTable(client=fake, table_name=TABLE, sleep=sleeps.append)
    requests = table.put_items([{"pk": {"S": str(i)}, "sk": {"S": "x"}} for i in range(3)])
    assert fake.calls == [3, 1, 1]
    assert requests == 3
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)


def test_items_still_unprocessed_after_all_attempts_raise():
    table = DynamoTable(
        client=ThrottlingDynamo(times=99), table_name=TABLE, max_attempts=3, sleep=lambda s: None
    )
    with pytest.raises(StorageError, match="1 items unprocessed after 3 attempts"):
        table.put_items([{"pk": {"S": "a"}, "sk": {"S": "b"}}])


def test_write_probe_proves_access_and_writes_nothing(aws):
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    assert store.probe_write("data/dev/_healthcheck/write-probe") == "NoSuchKey"
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    # An existing object answers 412 and is left untouched.
    aws.s3.put_object(Bucket=BUCKET, Key="data/dev/x", Body=b"keep")
    assert store.probe_write("data/dev/x") == "PreconditionFailed"
    assert aws.s3.get_object(Bucket=BUCKET, Key="data/dev/x")["Body"].read() == b"keep"


def test_write_probe_with_an_older_botocore_sends_the_header_itself(aws, monkeypatch):
    # The Lambda runtime's botocore may predate PutObject's IfMatch parameter.
    from backend import storage

    monkeypatch.setattr(storage, "_supports_if_match", lambda client: False)
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    assert store.probe_write("logs/dev/_healthcheck/write-probe") == "NoSuchKey"
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    # The header hook is removed afterwards: a normal put still works unconditionally.
    store.put("logs/dev/ok", b"1", content_type="text/plain")
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_write_probe_reports_a_missing_bucket(aws):
    from botocore.exceptions import ClientError

    store = S3ObjectStore(client=aws.s3, bucket="no-such-bucket-here")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        store.probe_write("data/dev/_healthcheck/write-probe")


def test_write_probe_refuses_to_call_an_ignored_condition_healthy():
    class IgnoresConditions:
        class meta:
            class service_model:
                @staticmethod
                def operation_model(name):
                    return type(
                        "M", (), {"input_shape": type("S", (), {"members": {"IfMatch": 1}})}
                    )

        def put_object(self, **kwargs):
            return {}

    with pytest.raises(StorageError, match="ignored If-Match"):
        S3ObjectStore(client=IgnoresConditions(), bucket=BUCKET).probe_write("data/dev/p")


def test_numbers_are_spelled_like_boto3_spells_them():
    from boto3.dynamodb.types import TypeSerializer

    from backend.storage import _number

    serializer = TypeSerializer()
    for value in (0.1, 1e-05, 1e-07, 123456.789, 170.0, 5):
        expected = serializer.serialize(Decimal(repr(value)) if isinstance(value, float) else value)
        assert _number(value) == expected
