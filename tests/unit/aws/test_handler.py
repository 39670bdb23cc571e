"""The handler end to end in moto: GIVEN deployed resources, WHEN invoked, THEN what it
wrote and answered."""

import dataclasses
import json
import sys
import types
from datetime import UTC, datetime

import botocore.exceptions
import pytest

from aws import market_data_fetcher
from aws.market_data_fetcher import AllSymbolsFailedError, handle
from backend.providers import ProviderError
from backend.providers.fixture import FixtureProvider
from backend.settings import SettingsError

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
RUN_RECORD = (
    "logs/dev/market_data_fetcher/date=2024-03-15/11111111-2222-3333-4444-555555555555.json"
)


def _invoke(world, event, context, *, env=None, provider=None, now=NOW):
    return handle(
        event,
        context,
        env=env if env is not None else world.env,
        clients=world.clients,
        provider=provider or FixtureProvider(clock=lambda: now),
        now=lambda: now,
    )


class FailingFor(FixtureProvider):
    def __init__(self, *symbols):
        super().__init__(clock=lambda: NOW)
        self.failing = symbols

    def fetch(self, symbol, interval, period):
        if symbol in self.failing:
            raise ProviderError(f"no route to Yahoo for {symbol}")
        return super().fetch(symbol, interval, period)


SPY_2024 = "data/dev/market/symbol=SPY/interval=1d/year=2024.jsonl"
SCHEDULED = {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def test_fetch_writes_bars_items_index_and_run_record(world, context):
    # WHEN an explicit fetch runs on Friday 2024-03-15 at 10:30 in New York (market open)
    response = _invoke(world, {}, context)
    # THEN every configured symbol succeeded; the first run puts the period's bars in
    # the table and, the series being new, all it fetched into the S3 history: a year
    # of sessions, the indicators' warm-up
    assert response["ok"] is True and response["status"] == "ok"
    assert response["fetch_period"] == "1y" and response["scheduled"] is False
    assert response["market"] == {
        "exchange": "XNYS",
        "calendar": response["market"]["calendar"],
        "open": True,
        "last_closed_session": "2024-03-14",
    }
    assert [
        (r["symbol"], r["status"], r["bars"], r["fetched"], r["added"]) for r in response["results"]
    ] == [
        ("SPY", "ok", 5, 252, 251),  # Friday's session is still open: not history yet
        ("QQQ", "ok", 5, 251, 250),  # one of QQQ's sessions in that year is a bad row
        ("AAPL", "ok", 5, 252, 251),
    ]
    assert response["dropped_rows"] == 1
    assert response["run_record"] == RUN_RECORD and response["index"] == "data/dev/index.json"
    # AND the final bars are in S3, raw, one object per symbol and year (changed by
    # issue 12 from one adjusted object per day)
    objects = world.objects()
    bar_keys = sorted(k for k in objects if k.startswith("data/dev/market/"))
    assert len(bar_keys) == 6 and SPY_2024 in bar_keys
    lines = [json.loads(line) for line in objects[SPY_2024].splitlines()]
    assert lines[0]["timestamp"] == "2024-01-02T00:00:00Z" and lines[0]["symbol"] == "SPY"
    assert {"split", "dividend", "final"} <= set(lines[0])
    # Friday's unfinished bar is not history yet: the newest stored bar is Thursday's.
    assert lines[-1]["timestamp"] == "2024-03-14T00:00:00Z" and all(x["final"] for x in lines)
    # AND the index lists every object, so a reader never lists the bucket
    index = json.loads(objects["data/dev/index.json"])
    assert sorted(o for s in index["series"].values() for o in s["objects"]) == bar_keys
    assert index["series"]["SPY/1d"]["last"] == "2024-03-15T00:00:00Z"
    assert index["series"]["SPY/1d"]["last_final"] == "2024-03-14T00:00:00Z"
    # AND the run record says what happened
    record = json.loads(objects[RUN_RECORD])
    assert record["request_id"] == context.aws_request_id
    assert record["symbols"] == ["SPY", "QQQ", "AAPL"]
    assert record["counts"] == {"requested": 3, "succeeded": 3, "failed": 0}
    assert record["failures"] == [] and isinstance(record["duration_ms"], int)
    assert record["dropped_rows"] == 1 and record["index"] == "data/dev/index.json"
    # AND nothing was written outside the two prefixes
    assert all(k.startswith(("data/dev/", "logs/dev/")) for k in objects)
    # AND DynamoDB has the period's 5 bars + 1 LATEST item per symbol; LATEST is the
    # last closed bar, with every indicator
    items = world.items()
    assert len(items) == 18
    latest = next(i for i in items if i["pk"]["S"] == "BAR#SPY#1d" and i["sk"]["S"] == "LATEST")
    assert latest["ts"]["S"] == "2024-03-14T00:00:00Z" and latest["final"] == {"BOOL": True}
    assert {"return_1", "sma_20", "ema_20", "rsi_14"} <= set(latest)
    assert int(latest["expires_at"]["N"]) > NOW.timestamp()
    live = next(i for i in items if i["sk"]["S"] == "TS#2024-03-15T00:00:00Z")
    assert live["final"] == {"BOOL": False}


def test_event_symbols_interval_and_period_are_used(world, context):
    response = _invoke(world, {"symbols": ["msft"], "interval": "1m", "period": "1d"}, context)
    (result,) = response["results"]
    assert (result["symbol"], result["status"]) == ("MSFT", "ok")
    assert response["interval"] == "1m" and response["fetch_period"] == "5d"
    # Five sessions of minute bars, one object per UTC date; today's closed minutes too
    keys = sorted(k for k in world.objects() if k.startswith("data/dev/market/"))
    assert keys == [
        f"data/dev/market/symbol=MSFT/interval=1m/date=2024-03-{d}.jsonl"
        for d in (11, 12, 13, 14, 15)
    ]


def test_a_scheduled_run_on_a_closed_market_calls_nothing(world, context):
    class Untouchable(FixtureProvider):
        def fetch(self, symbol, interval, period):
            raise AssertionError("the provider was called")

    saturday = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
    response = handle(SCHEDULED, context, env=world.env, clients=world.clients,
                      provider=Untouchable(), now=lambda: saturday)  # fmt: skip
    assert response == {
        "ok": True,
        "mode": "fetch",
        "status": "market_closed",
        "request_id": context.aws_request_id,
        "environment": "dev",
        "scheduled": True,
        "market": {
            "exchange": "XNYS",
            "calendar": response["market"]["calendar"],
            "open": False,
            "last_closed_session": "2024-03-15",
        },
        "next_open": "2024-03-18T13:30:00Z",
        "duration_ms": response["duration_ms"],
    }
    # Not one AWS call, nothing written.
    assert world.clients.calls == []
    assert world.objects() == {} and world.items() == []


@pytest.mark.parametrize(
    ("when", "runs"),
    [
        (datetime(2024, 3, 15, 14, 30, tzinfo=UTC), True),  # open
        (datetime(2024, 3, 15, 22, 0, tzinfo=UTC), True),  # after the close: the final bar
        (datetime(2024, 12, 25, 15, 0, tzinfo=UTC), False),  # Christmas
        (datetime(2024, 3, 18, 3, 0, tzinfo=UTC), False),  # Sunday night
    ],
)
def test_the_schedule_follows_the_exchange_calendar(world, context, when, runs):
    response = _invoke(world, SCHEDULED, context, now=when)
    assert (response["status"] != "market_closed") is runs
    # An explicit event always runs, whatever the calendar says.
    assert _invoke(world, {}, context, now=when)["status"] == "ok"


def test_old_daily_objects_are_left_alone(world, context):
    # GIVEN a bucket with an object in the layout used before issue 12 (adjusted prices,
    # one object per day, .json)
    old = "data/dev/market/symbol=SPY/interval=1d/date=2024-03-13.json"
    world.s3.put_object(Bucket=world.bucket, Key=old, Body=b'{"close": 1.0}\n')
    # WHEN the fetcher runs: THEN it neither reads, rewrites nor indexes it
    _invoke(world, {}, context)
    assert world.objects()[old] == b'{"close": 1.0}\n'
    assert not any(c.params.get("Key") == old for c in world.clients.calls)
    assert old not in world.objects()["data/dev/index.json"].decode()


def test_rerun_overwrites_objects_and_adds_no_items(world, context):
    _invoke(world, {}, context)
    first_objects = world.objects()
    first_items = world.items()
    # WHEN the same fetch runs again (a Lambda retry, or an overlapping schedule)
    _invoke(world, {}, dataclasses.replace(context, aws_request_id="retry-2"))
    second_objects = world.objects()
    # THEN the bar objects are the same keys with the same bytes
    bars = {k: v for k, v in second_objects.items() if k.startswith("data/")}
    assert bars == {k: v for k, v in first_objects.items() if k.startswith("data/")}
    # AND only a second run record was added
    assert set(second_objects) - set(first_objects) == {
        "logs/dev/market_data_fetcher/date=2024-03-15/retry-2.json"
    }
    # AND the table holds the same keys, no duplicates
    keys = lambda items: sorted((i["pk"]["S"], i["sk"]["S"]) for i in items)  # noqa: E731
    assert keys(world.items()) == keys(first_items)


def test_partial_failure_is_reported_per_symbol(world, context):
    response = _invoke(world, {}, context, provider=FailingFor("QQQ"))
    assert response["ok"] is False and response["status"] == "partial"
    assert {r["symbol"]: r["status"] for r in response["results"]} == {
        "SPY": "ok",
        "QQQ": "failed",
        "AAPL": "ok",
    }
    failed = next(r for r in response["results"] if r["symbol"] == "QQQ")
    assert failed["reason"] == "provider_error" and "no route to Yahoo" in failed["error"]
    record = json.loads(world.objects()[RUN_RECORD])
    assert record["counts"] == {"requested": 3, "succeeded": 2, "failed": 1}
    assert [f["symbol"] for f in record["failures"]] == ["QQQ"]
    assert not any("symbol=QQQ" in k for k in world.objects())


def test_every_symbol_failing_raises_after_recording_the_run(world, context):
    with pytest.raises(AllSymbolsFailedError, match="all 3 symbols failed"):
        _invoke(world, {}, context, provider=FailingFor("SPY", "QQQ", "AAPL"))
    record = json.loads(world.objects()[RUN_RECORD])
    assert record["counts"]["failed"] == 3
    assert world.items() == []


def test_offline_yfinance_is_a_failure_not_a_silent_success(world, context, monkeypatch):
    # GIVEN the default provider, and yfinance answering with an empty frame (offline)
    fake = types.ModuleType("yfinance")

    class EmptyFrame:
        empty = True

    fake.Ticker = lambda symbol: types.SimpleNamespace(history=lambda **kw: EmptyFrame())
    monkeypatch.setitem(sys.modules, "yfinance", fake)
    env = {**world.env, "MARKET_DATA_PROVIDER": "yfinance"}
    # WHEN the handler picks its provider from the environment
    with pytest.raises(AllSymbolsFailedError, match="SPY: provider_error"):
        handle({}, context, env=env, clients=world.clients, now=lambda: NOW)
    assert not any(k.startswith("data/") for k in world.objects())


@pytest.mark.parametrize(
    ("event", "field"),
    [
        # not an object
        ("not an object", "event"),
        (["AAPL"], "event"),
        (42, "event"),
        (True, "event"),
        # wrong types
        ({"symbols": "AAPL"}, "symbols"),
        ({"symbols": [1, 2]}, "symbols[0]"),
        ({"symbols": ["AAPL", None]}, "symbols[1]"),
        ({"interval": None}, "interval"),
        ({"period": 5}, "period"),
        ({"test": "true"}, "test"),
        # unknown interval or period, or one Yahoo does not serve
        ({"interval": "2d"}, "interval"),
        ({"period": "7d"}, "period"),
        ({"interval": "1m", "period": "1mo"}, "period"),
        # too many or too few symbols
        ({"symbols": [f"T{i}" for i in range(201)]}, "symbols"),
        ({"symbols": []}, "symbols"),
        # malformed tickers
        ({"symbols": ["AAPL", "rm -rf"]}, "symbols[1]"),
        ({"symbols": ["../../etc/passwd"]}, "symbols[0]"),
        ({"symbols": ["A" * 21]}, "symbols[0]"),
        ({"symbols": [""]}, "symbols[0]"),
        # unknown keys, and test mode mixed with a fetch
        ({"symbolz": ["AAPL"]}, "symbolz"),
        ({"test": True, "symbols": ["AAPL"]}, "symbols"),
    ],
)
def test_bad_event_gets_an_error_response_and_nothing_is_written(world, context, event, field):
    response = _invoke(world, event, context)
    assert response == {
        "ok": False,
        "error": "bad_event",
        "field": field,
        "message": response["message"],
        "request_id": context.aws_request_id,
    }
    assert response["message"].startswith(f"{field}: ")
    # Nothing written, and not a single AWS call made (not even a read)
    assert world.clients.calls == []
    assert world.objects() == {} and world.items() == []


def test_bad_event_is_answered_even_when_the_settings_are_broken(world, context):
    response = _invoke(world, {"interval": "2d"}, context, env={})
    assert response["error"] == "bad_event" and response["field"] == "interval"


def test_a_huge_bad_value_is_not_echoed_in_full(world, context, capsys):
    response = _invoke(world, {"symbols": ["X" * 100_000]}, context)
    assert response["field"] == "symbols[0]" and len(response["message"]) < 300
    assert len(capsys.readouterr().out) < 1000


def test_test_mode_reports_health_and_writes_nothing(world, context, capsys):
    response = _invoke(world, {"test": True}, context)
    assert response["ok"] is True and response["mode"] == "test"
    statuses = {c["name"]: c["status"] for c in response["checks"]}
    assert statuses == {
        "settings": "ok",
        "provider": "ok",
        "secret": "ok",
        "data_prefix": "ok",
        "logs_prefix": "ok",
        "table": "ok",
    }
    assert world.objects() == {} and world.items() == []
    # The key was read but appears nowhere: not in the answer, not in the logs.
    assert world.secret_value not in json.dumps(response)
    assert world.secret_value not in capsys.readouterr().out


def test_test_mode_warns_when_the_secret_has_no_value(world, context):
    arn = world.secretsmanager.create_secret(Name="cloud-trading-bot/dev/unset")["ARN"]
    response = _invoke(world, {"test": True}, context, env={**world.env, "API_KEY_SECRET_ARN": arn})
    secret = next(c for c in response["checks"] if c["name"] == "secret")
    assert secret["status"] == "warning" and "no value set" in secret["detail"]
    assert response["ok"] is True  # the yfinance provider needs no key


def test_test_mode_reports_missing_table_and_bucket(world, context):
    env = {**world.env, "TABLE_NAME": "no-such-table", "BUCKET_NAME": "no-such-bucket"}
    response = _invoke(world, {"test": True}, context, env=env)
    assert response["ok"] is False
    statuses = {c["name"]: (c["status"], c["detail"]) for c in response["checks"]}
    assert statuses["table"][0] == "error" and "ResourceNotFoundException" in statuses["table"][1]
    assert statuses["data_prefix"][0] == "error" and "NoSuchBucket" in statuses["data_prefix"][1]


def test_test_mode_reports_every_bad_setting_instead_of_raising(world, context):
    env = {**world.env, "DATA_PREFIX": "data/dev", "LOG_LEVEL": "LOUD"}
    response = _invoke(world, {"test": True}, context, env=env)
    assert response["ok"] is False
    details = [c["detail"] for c in response["checks"] if c["status"] == "error"]
    assert any("DATA_PREFIX" in d for d in details) and any("LOG_LEVEL" in d for d in details)


def test_fetch_with_bad_settings_raises_naming_the_variable(world, context):
    with pytest.raises(SettingsError, match="TABLE_NAME is not set"):
        _invoke(world, {}, context, env={**world.env, "TABLE_NAME": ""})
    assert world.objects() == {}


def test_logs_are_json_lines_carrying_the_request_id(world, context, capsys):
    _invoke(world, {}, context, provider=FailingFor("QQQ"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["request_id"] for line in lines} == {context.aws_request_id}
    messages = [line["message"] for line in lines]
    assert messages[0] == "fetch started" and messages[-1] == "fetch finished"
    assert any(line.get("symbol") == "QQQ" and line["level"] == "WARN" for line in lines)


def test_log_level_debug_adds_per_symbol_lines(world, context, capsys):
    _invoke(world, {}, context, env={**world.env, "LOG_LEVEL": "DEBUG"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sum(line["message"] == "symbol stored" for line in lines) == 3


def test_malformed_request_id_is_not_used_in_a_key(world, context):
    response = _invoke(world, {}, dataclasses.replace(context, aws_request_id="../../etc"))
    assert "../" not in response["run_record"] and response["request_id"] != "../../etc"


def test_run_record_failure_is_logged_but_bars_still_count(world, context, capsys):
    # GIVEN a role that may not write under logs/: S3 answers AccessDenied there
    def deny_logs(params, **_):
        if params["Key"].startswith("logs/"):
            error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
            raise botocore.exceptions.ClientError(error, "PutObject")

    world.clients.get("s3").meta.events.register("before-parameter-build.s3.PutObject", deny_logs)
    response = _invoke(world, {}, context)
    assert response["ok"] is True and response["run_record"] is None
    assert '"message":"run record not written"' in capsys.readouterr().out


def test_handler_entry_point_reads_os_environ_and_reuses_clients(world, context, monkeypatch):
    for name, value in world.env.items():
        monkeypatch.setenv(name, value)
    market_data_fetcher.container_clients.cache_clear()  # a new container
    first = market_data_fetcher.handler({"test": True}, context)
    second = market_data_fetcher.handler({"test": True}, context)
    assert first["ok"] and second["ok"]
    # per container, not per call: made on the first call, reused by the second
    assert market_data_fetcher.container_clients.cache_info().misses == 1
    assert market_data_fetcher.container_clients.cache_info().hits == 1
    market_data_fetcher.container_clients.cache_clear()  # no clients of this test's env left


def test_out_of_time_symbols_are_failures(world, context):
    with pytest.raises(AllSymbolsFailedError, match="out_of_time"):
        _invoke(world, {}, dataclasses.replace(context, remaining_ms=2000))


def test_a_later_run_only_appends_to_the_history(world, context):
    _invoke(world, {}, context)
    before = world.objects()
    # WHEN the next run comes after Friday's close
    _invoke(world, SCHEDULED, dataclasses.replace(context, aws_request_id="evening"),
            now=datetime(2024, 3, 15, 22, 0, tzinfo=UTC))  # fmt: skip
    after = world.objects()
    # THEN no new bar object, the 2023 objects untouched, and each 2024 object is the
    # same bytes plus Friday's now final bar: a stored bar never changes
    assert {k for k in after if "/market/" in k} == {k for k in before if "/market/" in k}
    for key, body in before.items():
        if "year=2023" in key:
            assert after[key] == body
        if "year=2024" in key:
            assert after[key].startswith(body)
            (added,) = after[key][len(body) :].splitlines()
            assert json.loads(added)["timestamp"] == "2024-03-15T00:00:00Z"
    # AND Friday's table item is rewritten as final, and LATEST moved to it
    items = {(i["pk"]["S"], i["sk"]["S"]): i for i in world.items()}
    assert items[("BAR#SPY#1d", "TS#2024-03-15T00:00:00Z")]["final"] == {"BOOL": True}
    assert items[("BAR#SPY#1d", "LATEST")]["ts"] == {"S": "2024-03-15T00:00:00Z"}
