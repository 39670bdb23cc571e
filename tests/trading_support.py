"""The trading half's test world on real market data: the fetcher (its handler, the
fixture provider with splits, dividends and bad rows) writes to moto, then the service
and the backtester read what it wrote. For tests/unit/service, tests/e2e and
bench/strategy.py.

The timeline: a manual fetch (`{}`) on the evening of 2024-05-14 stores a year of
history, then the schedule (22:00 UTC on weekdays, the stack's default) runs every
evening to 2024-06-27: Memorial Day and Juneteenth answer `market_closed`. AAPL splits
4:1 on 2024-05-23, a day its adjusted 5/20 SMA crossover says long while the raw prices
would say short; QQQ and SPY each have a bad row, which the fetcher drops and counts;
every symbol pays dividends each quarter (one on 2024-05-15, the window's first day).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aws.market_data_fetcher import handle
from backend.clients import AwsClients
from backend.providers.fixture import FixtureProvider, Scenario
from backend.trading.dynamo import ensure_table
from backend.trading.settings import parse_trading_config
from tests.runtime_support import Deployment, FakeContext

SYMBOLS = ("SPY", "QQQ", "AAPL")
ENVIRONMENT = "dev"
LEDGER = f"cloud-trading-bot-{ENVIRONMENT}-ledger"
SPLIT_DAY = date(2024, 5, 23)
BAD_ROWS = {"QQQ": [date(2024, 3, 12)], "SPY": [date(2024, 1, 9)]}
SCENARIO = Scenario(splits={"AAPL": {SPLIT_DAY: 4.0}}, bad_rows=BAD_ROWS)
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
FIRST_FETCH = datetime(2024, 5, 14, 22, 0, tzinfo=UTC)
LAST_FETCH = datetime(2024, 6, 27, 22, 0, tzinfo=UTC)
REPLAY = 30  # sessions 2024-05-15 .. 2024-06-27
FIRST_REPLAYED = date(2024, 5, 15)
# The stack config's trading keys, as a stack file would set them.
TRADING = {"strategy": "sma_crossover", "strategyParams": {"fast": 5, "slow": 20}}


def evenings(first: datetime, last: datetime) -> list[datetime]:
    """The schedule cron(0 22 ? * MON-FRI *) between two runs, both included."""
    out, when = [], first
    while when <= last:
        if when.weekday() < 5:
            out.append(when)
        when += timedelta(days=1)
    return out


RUNS = evenings(FIRST_FETCH + timedelta(days=1), LAST_FETCH)


def fetch(
    deployment: Deployment,
    when: datetime,
    event: Any = SCHEDULED,
    *,
    scenario: Scenario = SCENARIO,
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """One invocation of the real handler at `when`, on the fixture's market; `clients`
    are a warm container's (a cold one's by default)."""
    context = dataclasses.replace(FakeContext(), aws_request_id=f"run-{when:%Y%m%d%H%M}")
    return handle(
        event,
        context,
        env=deployment.env,
        clients=clients or AwsClients(),
        provider=FixtureProvider(clock=lambda: when, scenario=scenario),
        now=lambda: when,
    )


def fetch_all(
    deployment: Deployment, after_each: Callable[[datetime, dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """The whole timeline; `after_each(when, response)` runs after every scheduled run.
    One warm container serves every run, as Lambda keeps one between a function's
    invocations (a cold one each time cost ~0.3 s of botocore model loading a run)."""
    clients = AwsClients()
    responses = [fetch(deployment, FIRST_FETCH, {}, clients=clients)]
    for when in RUNS:
        response = fetch(deployment, when, clients=clients)
        responses.append(response)
        if after_each is not None:
            after_each(when, response)
    return responses


def trading_config(**overrides: Any) -> Any:
    return parse_trading_config({"environment": ENVIRONMENT, **TRADING, **overrides})


def service_env(deployment: Deployment, heartbeat: str, **trading: Any) -> dict[str, str]:
    """The task's environment (docs/CONTRACTS.md section 10) for this deployment."""
    ensure_table(deployment.dynamodb, LEDGER)
    return {
        "ENVIRONMENT": ENVIRONMENT,
        "BUCKET_NAME": deployment.bucket,
        "DATA_PREFIX": deployment.env["DATA_PREFIX"],
        "LOGS_PREFIX": deployment.env["LOGS_PREFIX"],
        "MARKET_DATA_TABLE": deployment.table,
        "LEDGER_TABLE": LEDGER,
        "SYMBOLS": ",".join(SYMBOLS),
        "TRADING_CONFIG": trading_config(**trading).to_json(),
        "HEARTBEAT_FILE": heartbeat,
        "LOG_LEVEL": "INFO",
    }
