"""The trading half against moto_server, each command in its own process as an operator
(or the rehearsal, docs/CONTRACTS.md section 10) runs it: the real fetcher writes the
fixture's market for the stack's symbols; `python -m backend.service --replay 30` trades
it and `summary` prints orders, positions and equity; both backtest command lines read
the same stored data and agree with the service to the cent."""

import json
import os
import shutil
from pathlib import Path

import boto3
import pytest

from localcloud.emulator import EMULATOR_ENV, moto_server
from tests.processes import run_python
from tests.runtime_support import deploy
from tests.trading_support import FIRST_REPLAYED, REPLAY, SYMBOLS, TRADING, fetch_all, service_env

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BUCKET = "ctb-trading-stack-e2e"


def run(args, env, *, timeout=180):
    return run_python(*args, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """moto_server with what the fetcher wrote for the stack's symbols, the service's
    environment, and a project directory whose stack `e2e` names that bucket."""
    tmp = tmp_path_factory.mktemp("trading-stack")
    with moto_server() as url:
        saved = dict(os.environ)
        os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": url})
        try:
            world = deploy(
                bucket=BUCKET,
                symbols=SYMBOLS,
                client=lambda service: boto3.client(service, endpoint_url=url),
            )
            responses = fetch_all(world)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "PYTHONPATH": str(ROOT),
                **EMULATOR_ENV,
                "AWS_ENDPOINT_URL": url,
                **service_env(world, str(tmp / "heartbeat.json")),
            }
        finally:
            os.environ.clear()
            os.environ.update(saved)
        project = tmp / "project"
        project.mkdir()
        shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
        params = TRADING["strategyParams"]
        (project / "Pulumi.e2e.yaml").write_text(
            "config:\n"
            "  aws:region: us-east-1\n"
            "  cloud-trading-bot:environment: dev\n"
            f"  cloud-trading-bot:bucketName: {BUCKET}\n"
            f"  cloud-trading-bot:symbols: [{', '.join(SYMBOLS)}]\n"
            f"  cloud-trading-bot:strategy: {TRADING['strategy']}\n"
            "  cloud-trading-bot:strategyParams:\n"
            f"    fast: {params['fast']}\n"
            f"    slow: {params['slow']}\n"
        )
        yield env, url, project, responses


def test_replay_then_summary_then_both_backtests_agree(stack):
    env, url, project, responses = stack
    assert sum(r.get("dropped_rows", 0) for r in responses) >= 2  # bad rows dropped

    # WHEN the service replays the newest 30 closed bars of each symbol
    replay = run(["-m", "backend.service", "--replay", str(REPLAY)], env)
    assert replay.returncode == 0, replay.stderr
    lines = [json.loads(x) for x in replay.stdout.splitlines()]
    decisions = [x for x in lines if x["message"] == "decision"]
    assert len(decisions) == REPLAY * len(SYMBOLS)
    assert decisions[0]["bar_time"] == f"{FIRST_REPLAYED.isoformat()}T00:00:00Z"

    # THEN `summary` prints the ledger as one JSON object: the rehearsal's `strategy`
    summary = run(["-m", "backend.service", "summary"], env)
    assert summary.returncode == 0, summary.stderr
    doc = json.loads(summary.stdout)
    assert {"orders", "positions", "equity"} <= set(doc)
    assert doc["orders"] >= 4 and doc["fills"] >= 4
    assert all(set(p) == {"symbol", "qty", "avg_price", "realised_pnl"} for p in doc["positions"])
    assert doc["halted"] is False

    # AND a second replay adds nothing
    again = run(["-m", "backend.service", "--replay", str(REPLAY)], env)
    assert again.returncode == 0, again.stderr
    assert '"message":"decision"' not in again.stdout.replace(" ", "")
    assert json.loads(run(["-m", "backend.service", "summary"], env).stdout) == doc

    # AND the backtester over the same sessions agrees: from the bucket ...
    start = ["--start", FIRST_REPLAYED.isoformat(), "--json"]
    params = [f"--param={k}={v}" for k, v in TRADING["strategyParams"].items()]
    where = ["--bucket", BUCKET, "--prefix", "data/dev/"]
    plain = run(["-m", "backend.trading.backtest", *where, *params, *start], env)
    assert plain.returncode == 0, plain.stderr
    result = json.loads(plain.stdout)
    assert result["orders"] == doc["orders"]
    assert result["final_equity"] == pytest.approx(doc["equity"])
    assert result["symbols"] == sorted(SYMBOLS)

    # ... and from the stack's own config, read through infra.config
    operator = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT")}
    stack_args = ["--stack", "e2e", "--project-dir", str(project), "--endpoint-url", url]
    ops = run(["-m", "ops", "backtest", *stack_args, *start], operator)
    assert ops.returncode == 0, ops.stderr
    from_stack = json.loads(ops.stdout)
    # The same trades; only the config's environment differs (the stack's: dev).
    assert from_stack["config"] == {**result["config"], "environment": "dev"}
    assert {**from_stack, "config": None} == {**result, "config": None}


def test_ops_backtest_refuses_what_it_cannot_read_in_one_line(stack):
    env, url, project, _ = stack
    operator = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT")}
    where = ["--project-dir", str(project), "--endpoint-url", url]

    unknown = run(["-m", "ops", "backtest", "--stack", "nope", *where], operator)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "Pulumi.nope.yaml" in unknown.stderr

    (project / "Pulumi.empty.yaml").write_text(
        "config:\n  cloud-trading-bot:environment: empty\n"
        f"  cloud-trading-bot:bucketName: {BUCKET}\n"
    )
    empty = run(["-m", "ops", "backtest", "--stack", "empty", *where], operator)
    assert empty.returncode == 2
    assert empty.stderr == (
        f"error: s3://{BUCKET}/data/empty/index.json does not exist: no market data has been "
        "stored there yet (run the fetcher first, or point at a copy of data/<env>/)\n"
    )

    bad = run(["-m", "ops", "backtest", "--stack", "e2e", "--param", "fast=30", *where], operator)
    assert bad.returncode == 2
    assert (
        bad.stderr == "error: strategyParams.fast: must be < strategyParams.slow (got 30 >= 20)\n"
    )
