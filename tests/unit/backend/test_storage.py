import copy
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import boto3
import botocore.session
import pytest

from backend.layout import (
    BAR_TTL_SECONDS,
    MAX_TABLE_BARS,
    bar_object_key,
    index_key,
    run_record_key,
)
from backend.models import Bar
from backend.storage import (
    DynamoTable,
    S3ObjectStore,
    StorageError,
    bar_items,
    decode_bars,
    encode_bars,
    latest_item,
)
from tests.unit.backend.conftest import BUCKET, TABLE
from tests.unit.backend.s3fakes import AlwaysRefused, RacingS3

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
    day = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    assert (
        bar_object_key("data/dev/", "BRK-B", "1d", day)
        == "data/dev/market/symbol=BRK-B/interval=1d/year=2024.jsonl"
    )
    assert (
        bar_object_key("data/dev/", "BRK-B", "1wk", day)
        == "data/dev/market/symbol=BRK-B/interval=1wk/year=2024.jsonl"
    )
    assert (
        bar_object_key("data/dev/", "BRK-B", "5m", day)
        == "data/dev/market/symbol=BRK-B/interval=5m/date=2024-03-05.jsonl"
    )
    assert index_key("data/dev/") == "data/dev/index.json"
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
        "split": 1.0,
        "dividend": 0.0,
        "final": True,
    }
    assert decode_bars(body, key="k") == bars


def test_a_corrupt_stored_line_names_the_object_and_line():
    body = encode_bars(_bars(2)) + b'{"symbol": "AAPL"}\n'
    with pytest.raises(StorageError, match=r"data/x\.jsonl line 3 is not a stored bar"):
        decode_bars(body, key="data/x.jsonl")


KEY = "data/dev/market/symbol=AAPL/interval=1d/year=2024.jsonl"


def _read(aws, key=KEY):
    return decode_bars(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(), key=key)


def test_merge_bars_creates_then_adds_and_keeps_stored_bars(aws):
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    bars = _bars(5)
    first = store.merge_bars(KEY, bars[:3])
    assert (first.written, first.bars, first.added) == (True, 3, 3)
    # A later run brings two new bars and a different version of a stored one:
    # the stored (final) bar is kept, the new ones are added, in time order.
    changed = replace(bars[2], close=11.5)
    second = store.merge_bars(KEY, [changed, *bars[3:]])
    assert (second.written, second.bars, second.added) == (True, 5, 2)
    assert _read(aws) == bars
    # Nothing new: nothing written (no new object version in the versioned bucket).
    third = store.merge_bars(KEY, bars[1:4])
    assert (third.written, third.bars, third.added) == (False, 5, 0)


def test_moto_enforces_the_conditions_the_writes_rely_on(aws):
    # If the emulator ignored them, the race tests below would prove nothing.
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    assert store.put_if(KEY, b"a", content_type="text/plain", etag=None) is True
    assert store.put_if(KEY, b"b", content_type="text/plain", etag=None) is False
    etag = store.get(KEY).stored.etag
    assert store.put_if(KEY, b"c", content_type="text/plain", etag='"0000"') is False
    assert store.put_if(KEY, b"c", content_type="text/plain", etag=etag) is True
    assert store.put_if(KEY, b"d", content_type="text/plain", etag=etag) is False
    assert store.get(KEY).stored.body == b"c"


@pytest.mark.parametrize("stored_first", [False, True])
def test_a_run_that_loses_the_race_merges_again_and_loses_nothing(aws, stored_first):
    bars = _bars(6)
    if stored_first:
        S3ObjectStore(client=aws.s3, bucket=BUCKET).merge_bars(KEY, bars[:2])
    # GIVEN another run that stores bars 2-3 between this run's read and its write
    racing = RacingS3(aws.s3, KEY, encode_bars(bars[:4]))
    store = S3ObjectStore(client=racing, bucket=BUCKET, sleep=lambda s: None)
    # WHEN this run adds bars 4-5
    merged = store.merge_bars(KEY, bars[4:])
    # THEN its first write was refused, the retry merged both runs' bars
    assert len(racing.puts) == 2
    assert (merged.written, merged.bars, merged.added) == (True, 6, 2)
    assert _read(aws) == bars


def test_a_write_that_keeps_losing_gives_up_with_a_clear_error():
    sleeps = []
    fake = AlwaysRefused()
    store = S3ObjectStore(client=fake, bucket=BUCKET, max_attempts=4, sleep=sleeps.append)
    with pytest.raises(StorageError, match="kept changing under this run"):
        store.merge_bars(KEY, _bars(1))
    assert fake.puts == 4
    assert len(sleeps) == 3 and all(0 <= s <= 1.0 for s in sleeps)


def test_a_denied_read_of_an_existing_object_says_which_permission_is_missing():
    # Without s3:ListBucket S3 answers a read of a missing key with AccessDenied, so a
    # denied read is first taken for "no object"; the refused create proves otherwise.
    store = S3ObjectStore(client=AlwaysRefused("AccessDenied"), bucket=BUCKET, sleep=lambda s: None)
    with pytest.raises(StorageError, match="needs s3:GetObject on DATA_PREFIX"):
        store.merge_bars(KEY, _bars(1))


def test_bar_items_keep_only_the_latest_bars_with_ttl():
    bars = _bars(MAX_TABLE_BARS + 20, "SPY", "5m", step=timedelta(minutes=5))
    items = bar_items(bars)
    assert len(items) == MAX_TABLE_BARS
    assert items[0]["pk"] == {"S": "BAR#SPY#5m"}
    assert items[0]["sk"] == {"S": f"TS#{bars[20].iso_time}"}
    assert items[-1]["expires_at"] == {
        "N": str(int(bars[-1].timestamp.timestamp()) + BAR_TTL_SECONDS)
    }


def test_bar_items_carry_the_actions_and_finality():
    bar = replace(_bars(1)[0], split=4.0, dividend=0.5, final=False)
    (item,) = bar_items([bar])
    assert (item["split"], item["dividend"], item["final"]) == (
        {"N": "4.0"},
        {"N": "0.5"},
        {"BOOL": False},
    )


def test_latest_item_carries_indicators_and_fetch_time():
    bar = _bars(3)[-1]
    item = latest_item(bar, period="5d", indicators={"rsi_14": 55.5}, history=250, fetched_at=NOW)
    assert item["sk"] == {"S": "LATEST"}
    assert item["ts"] == {"S": bar.iso_time}
    assert item["final"] == {"BOOL": True}
    assert item["rsi_14"] == {"N": "55.5"}
    assert item["bars"] == {"N": "250"}
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


def _s3_before_conditional_puts(tmp_path):
    """An S3 client of a botocore that predates PutObject's IfMatch and IfNoneMatch (1.35,
    2024): this botocore's own S3 model without them, found first on its search path."""
    # a copy: botocore shares its parsed data (and tests/conftest.py across sessions)
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model("s3", "service-2"))
    members = model["shapes"]["PutObjectRequest"]["members"]
    for name in ("IfMatch", "IfNoneMatch"):
        del members[name]
    path = tmp_path / "models" / "s3" / model["metadata"]["apiVersion"] / "service-2.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(model))
    session = botocore.session.get_session()  # a fresh loader, with the old model first
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path / "models"))
    client = boto3.Session(botocore_session=session).client("s3", region_name="us-east-1")
    assert (
        "IfMatch" not in client.meta.service_model.operation_model("PutObject").input_shape.members
    )
    return client


def test_write_probe_with_an_older_botocore_sends_the_header_itself(aws, tmp_path):
    # The Lambda runtime's botocore may predate PutObject's IfMatch parameter.
    store = S3ObjectStore(client=_s3_before_conditional_puts(tmp_path), bucket=BUCKET)
    assert store.probe_write("logs/dev/_healthcheck/write-probe") == "NoSuchKey"
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    # The header hook is removed afterwards: a normal put still works unconditionally.
    store.put("logs/dev/ok", b"1", content_type="text/plain")
    assert aws.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 1


def test_conditional_writes_with_an_older_botocore_stay_per_thread(aws, tmp_path):
    # The header hook is shared by the fetch threads' one client: each thread's
    # condition must reach its own request only.
    store = S3ObjectStore(client=_s3_before_conditional_puts(tmp_path), bucket=BUCKET)
    keys = [f"data/dev/t{i}.jsonl" for i in range(8)]

    def create_twice(key):
        return store.put_if(key, b"1", content_type="text/plain", etag=None), store.put_if(
            key, b"2", content_type="text/plain", etag=None
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(create_twice, keys))
    assert outcomes == [(True, False)] * len(keys)
    assert {store.get(k).stored.body for k in keys} == {b"1"}
    # And an unconditional put after them carries no leftover condition.
    store.put(keys[0], b"3", content_type="text/plain")
    assert store.get(keys[0]).stored.body == b"3"


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
