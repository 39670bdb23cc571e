"""The service's steps against moto: newly closed bars, replay, restart, records."""

import json
from dataclasses import replace

import pytest

from backend.service.__main__ import main
from backend.trading.dynamo import DynamoStore
from backend.trading.ledger import Ledger
from tests.unit.service.helpers import (
    BUCKET,
    LEDGER,
    loads_lines,
    put_bars,
    service_env,
    wave_closes,
)
from tests.unit.trading.helpers import WeekdayCalendar, bars

CAL = WeekdayCalendar()


def ledger(ddb):
    return Ledger(DynamoStore(client=ddb, table_name=LEDGER))


def run(args, env, capsys):
    code = main(args, env=env, calendar=CAL)
    out = capsys.readouterr()
    return code, loads_lines(out.out), out.err


def test_replay_trades_the_newest_bars_once_and_a_restart_adds_nothing(world, tmp_path, capsys):
    ddb, s3 = world
    history = {s: bars(s, wave_closes(60)) for s in ("AAA", "BBB")}
    put_bars(ddb, s3, history["AAA"] + history["BBB"])
    env = service_env(["AAA", "BBB"], tmp_path / "hb.json")

    code, lines, _ = run(["--replay", "30"], env, capsys)
    assert code == 0
    decisions = [line for line in lines if line["message"] == "decision"]
    assert len(decisions) == 60  # 30 bars x 2 symbols, one line each
    assert {d["environment"] for d in decisions} == {"test"}
    orders = ledger(ddb).orders()
    assert len(orders) >= 4
    assert len({o.client_order_id for o in orders}) == len(orders)

    # The same command again (a restarted task, a repeated rehearsal): nothing new.
    code, lines, _ = run(["--replay", "30"], env, capsys)
    assert code == 0
    assert [line for line in lines if line["message"] == "decision"] == []
    assert len(ledger(ddb).orders()) == len(orders)

    # A new closed bar: processed once, by the next step.
    more = {s: bars(s, wave_closes(61))[-1:] for s in history}
    put_bars(ddb, s3, more["AAA"] + more["BBB"])
    code, lines, _ = run(["--once"], env, capsys)
    step = next(line for line in lines if line["message"] == "step")
    assert (step["dates"], step["bars"]) == (1, 2)
    assert ledger(ddb).cursor().bars["AAA"] == more["AAA"][0].iso_time


def test_first_start_trades_only_the_newest_bar(world, tmp_path, capsys):
    ddb, s3 = world
    put_bars(ddb, s3, bars("AAA", wave_closes(40)))
    code, lines, _ = run(["--once"], service_env(["AAA"], tmp_path / "hb.json"), capsys)
    assert code == 0
    (decision,) = [line for line in lines if line["message"] == "decision"]
    assert decision["bar_time"] == bars("AAA", wave_closes(40))[-1].iso_time


def test_an_unfinished_bar_is_not_traded_until_it_is_final(world, tmp_path, capsys):
    ddb, s3 = world
    history = bars("AAA", wave_closes(40))
    history[-1] = replace(history[-1], final=False)
    put_bars(ddb, s3, history)
    env = service_env(["AAA"], tmp_path / "hb.json")
    run(["--once"], env, capsys)
    assert ledger(ddb).cursor().bars["AAA"] == history[-2].iso_time
    put_bars(ddb, s3, [replace(history[-1], final=True)])
    run(["--once"], env, capsys)
    assert ledger(ddb).cursor().bars["AAA"] == history[-1].iso_time


def test_decision_records_are_written_under_logs_env_strategy(world, tmp_path, capsys):
    ddb, s3 = world
    history = bars("AAA", wave_closes(20))
    put_bars(ddb, s3, history)
    run(["--replay", "3"], service_env(["AAA"], tmp_path / "hb.json"), capsys)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="logs/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    days = [b.timestamp.date().isoformat() for b in history[-3:]]
    assert keys == [f"logs/test/strategy/date={d}/decisions.jsonl" for d in days]
    body = s3.get_object(Bucket=BUCKET, Key=keys[-1])["Body"].read().decode()
    (record,) = [json.loads(line) for line in body.splitlines()]
    assert record["symbol"] == "AAA" and record["bar_time"] == history[-1].iso_time


def test_summary_and_health_after_a_step(world, tmp_path, capsys):
    ddb, s3 = world
    put_bars(ddb, s3, bars("AAA", wave_closes(40)))
    env = service_env(["AAA"], tmp_path / "hb.json")
    run(["--replay", "20"], env, capsys)
    code = main(["summary"], env=env)
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["orders"] >= 1 and doc["equity"] > 0
    assert set(doc) >= {"orders", "positions", "equity", "halted"}
    code = main(["health"], env=env)
    health = json.loads(capsys.readouterr().out)
    assert code == 0 and health["status"] == "healthy"


def test_bad_settings_exit_2_with_one_line_each(tmp_path, capsys):
    env = service_env(["AAA"], tmp_path / "hb.json")
    env["SYMBOLS"] = "AAA,b@d"
    assert main(["--once"], env=env, calendar=CAL) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SYMBOLS: malformed ticker 'b@d'") and err.count("\n") == 1


def test_a_broker_secret_without_a_value_is_one_line(world, tmp_path, capsys):
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    arn = sm.create_secret(Name="alpaca")["ARN"]
    env = service_env(["AAA"], tmp_path / "hb.json", tradingMode="alpaca-paper")
    env["BROKER_SECRET_ARN"] = arn
    assert main(["--once"], env=env, calendar=CAL) == 2
    assert capsys.readouterr().err == (
        f"error: BROKER_SECRET_ARN: secret {arn} has no value; store the Alpaca keys in it as "
        'JSON {"key_id": "...", "secret_key": "..."} (aws secretsmanager put-secret-value '
        f"--secret-id {arn} --secret-string file://alpaca.json)\n"
    )
    sm.put_secret_value(SecretId=arn, SecretString="key=abc")
    assert main(["--once"], env=env, calendar=CAL) == 2
    err = capsys.readouterr().err
    assert "is not JSON" in err and "abc" not in err


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_replay_needs_a_positive_count(bad, tmp_path, capsys):
    assert main(["--replay", bad], env={}) == 2


def test_resume_clears_a_halted_kill_switch_only_with_a_reason(world, tmp_path, capsys):
    ddb, _ = world
    env = service_env(["AAA"], tmp_path / "hb.json")
    book = ledger(ddb)
    book.set_kill_switch(book.kill_switch(), halted=True, reason="daily loss", since="t")
    assert main(["resume"], env=env) == 2
    assert "resume --reason TEXT" in capsys.readouterr().err
    assert main(["resume", "--reason", "checked the fills"], env=env) == 0
    kill = ledger(ddb).kill_switch()
    assert not kill.halted and "checked the fills" in kill.reason
