"""The per-environment index: its shape (docs/CONTRACTS.md §8), merging a run's news into
it, and writing it safely against a concurrent run."""

import json
from datetime import UTC, datetime

import pytest

from backend.index import Index, IndexFormatError, Series, read_index, update_index
from backend.storage import S3ObjectStore
from tests.unit.backend.conftest import BUCKET
from tests.unit.backend.s3fakes import RacingS3

KEY = "data/dev/index.json"
NOW = datetime(2024, 3, 15, 21, 5, tzinfo=UTC)
Y23 = "data/dev/market/symbol=AAPL/interval=1d/year=2023.jsonl"
Y24 = "data/dev/market/symbol=AAPL/interval=1d/year=2024.jsonl"


def aapl(first, last, last_final, **counts):
    return Series(
        symbol="AAPL",
        interval="1d",
        first=first,
        last=last,
        last_final=last_final,
        object_bars=counts or {Y24: 50},
    )


def test_the_index_has_the_contract_shape():
    index = Index().with_updates(
        [aapl("2023-03-16T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-14T00:00:00Z")], now=NOW
    )
    doc = json.loads(index.to_bytes())
    assert doc["version"] == 1 and doc["updated_at"] == "2024-03-15T21:05:00Z"
    assert doc["series"]["AAPL/1d"] == {
        "symbol": "AAPL",
        "interval": "1d",
        "first": "2023-03-16T00:00:00Z",
        "last": "2024-03-15T00:00:00Z",
        "last_final": "2024-03-14T00:00:00Z",
        "bars": 50,
        "objects": [Y24],
        "object_bars": {Y24: 50},
    }
    assert Index.from_bytes(index.to_bytes()) == index


def test_a_run_widens_the_bounds_and_replaces_the_counts_of_what_it_rewrote():
    old = aapl("2016-01-04T00:00:00Z", "2024-03-14T00:00:00Z", "2024-03-13T00:00:00Z")
    old = Series(**{**_fields(old), "object_bars": {Y23: 250, Y24: 49}})
    # A scheduled run that fetched one year and rewrote only this year's object:
    new = aapl("2024-03-11T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-14T00:00:00Z")
    merged = old.merge(new)
    assert merged.first == "2016-01-04T00:00:00Z"  # the older history is still there
    assert (merged.last, merged.last_final) == ("2024-03-15T00:00:00Z", "2024-03-14T00:00:00Z")
    assert merged.object_bars == {Y23: 250, Y24: 50} and merged.bars == 300
    # Stale news never moves the bounds back.
    assert merged.merge(old).last_final == "2024-03-14T00:00:00Z"


def _fields(series):
    return {name: getattr(series, name) for name in Series.__slots__}


def test_no_news_leaves_the_index_as_it_was():
    index = Index().with_updates([aapl("a", "b", "b")], now=NOW)
    later = datetime(2024, 3, 16, tzinfo=UTC)
    assert index.with_updates([aapl("a", "b", "b")], now=later) is index


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"version": 2, "series": {}}', b'{"version": 1, "series": 3}']
)
def test_an_index_this_version_cannot_read_is_an_error(body):
    with pytest.raises(IndexFormatError):
        Index.from_bytes(body)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("3", "series.AAPL/1d must be an object"),
        ('{"interval": "1d", "objects": []}', "series.AAPL/1d: symbol must be a string"),
        (
            '{"symbol": "AAPL", "interval": "1d", "object_bars": {"k": "x"}}',
            "series.AAPL/1d: invalid literal",
        ),
    ],
)
def test_a_malformed_series_entry_is_named(entry, message):
    # A reader (the backtester, the service) prints this after the file's name.
    body = f'{{"version": 1, "series": {{"AAPL/1d": {entry}}}}}'.encode()
    with pytest.raises(IndexFormatError, match="^" + message.replace("(", r"\(")):
        Index.from_bytes(body)


def test_update_creates_then_updates_and_skips_an_unchanged_write(aws):
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    first = aapl("2023-03-16T00:00:00Z", "2024-03-14T00:00:00Z", "2024-03-14T00:00:00Z")
    assert update_index(store, KEY, [first], now=NOW) is True
    assert read_index(store, KEY).get("AAPL", "1d") == first
    second = aapl("2024-03-15T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-15T00:00:00Z")
    assert update_index(store, KEY, [second], now=NOW) is True
    assert read_index(store, KEY).get("AAPL", "1d").last_final == "2024-03-15T00:00:00Z"
    assert update_index(store, KEY, [second], now=NOW) is False  # nothing new
    assert update_index(store, KEY, [], now=NOW) is False


def test_concurrent_runs_both_land_in_the_index(aws):
    # GIVEN another run that indexes MSFT between this run's read and its write
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    update_index(store, KEY, [aapl("a", "b", "b")], now=NOW)
    msft = Series(symbol="MSFT", interval="1d", first="a", last="b", last_final="b")
    rival = Index.from_bytes(store.get(KEY).stored.body).with_updates([msft], now=NOW)
    racing = RacingS3(aws.s3, KEY, rival.to_bytes())
    # WHEN this run indexes SPY
    spy = Series(symbol="SPY", interval="1d", first="a", last="c", last_final="c")
    assert update_index(S3ObjectStore(client=racing, bucket=BUCKET), KEY, [spy], now=NOW)
    # THEN its first write was refused (stale ETag) and the retry kept everyone's series
    assert len(racing.puts) == 2
    assert sorted(read_index(store, KEY).series) == ["AAPL/1d", "MSFT/1d", "SPY/1d"]


def test_an_unreadable_index_reads_as_empty_and_is_replaced_on_update(aws, capsys):
    store = S3ObjectStore(client=aws.s3, bucket=BUCKET)
    aws.s3.put_object(Bucket=BUCKET, Key=KEY, Body=b"{truncated")
    # Reading it for the run's plan: empty, so the run writes everything it fetched.
    assert read_index(store, KEY) == Index()
    assert update_index(store, KEY, [aapl("a", "b", "b")], now=NOW) is True
    assert sorted(read_index(store, KEY).series) == ["AAPL/1d"]
    logged = capsys.readouterr().out
    assert '"message":"index unreadable"' in logged and '"message":"index replaced"' in logged
