"""Benchmark the trading core and the strategy service (docs/trading.md, "Figures").

    .venv/bin/python bench/strategy.py [--symbols 100] [--years 10] [--runs 3] [--steps 3]

1. Backtest: SMA crossover (20/50) over N symbols x Y years of daily bars (252 a year),
   generated deterministically (a seeded random walk per symbol), in memory: the same
   engine, risk checks, paper broker and memory ledger as the service. Goal <= 2 s for
   100 x 10 years (252,000 bars). Prints wall and CPU seconds (median of runs), bars/s.
2. Service step: N symbols with their newest 100 bars already in the market-data table
   of a moto_server on 127.0.0.1, the ledger on the same server, the paper broker.
   "cold": a new process's first step (reads each symbol's full table history);
   "warm": a running service's step after one new bar per symbol (reads only the new bar).
   Goal <= 1 s for 100 symbols.
Prints the conditions: Python, CPUs, load average before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend import jsonlog  # noqa: E402
from backend.models import Bar  # noqa: E402
from backend.service.market import MarketData  # noqa: E402
from backend.service.runner import Runner  # noqa: E402
from backend.trading.backtest import run_backtest  # noqa: E402
from backend.trading.dynamo import DynamoStore, ensure_table  # noqa: E402
from backend.trading.ledger import Ledger  # noqa: E402
from backend.trading.paper import PaperBroker  # noqa: E402
from backend.trading.settings import parse_trading_config  # noqa: E402
from localcloud.emulator import EMULATOR_ENV, moto_server  # noqa: E402

START = datetime(2015, 1, 2, 14, 30, tzinfo=UTC)
TABLE_BARS = 100  # what the fetcher keeps in the table per series


def weekdays(n: int, start: datetime = START) -> list[datetime]:
    out, t = [], start
    while len(out) < n:
        if t.weekday() < 5:
            out.append(t)
        t += timedelta(days=1)
    return out


def history(symbols: int, days: int) -> dict[str, list[Bar]]:
    """A seeded random walk per symbol: the same bars on every machine."""
    times = weekdays(days)
    out = {}
    for s in range(symbols):
        symbol = f"S{s:03d}"
        rng = random.Random(s)  # noqa: S311 - test data, not cryptography
        price = 20.0 + 200.0 * rng.random()
        series = []
        for t in times:
            open_ = price
            close = open_ * (1.0 + rng.gauss(0.0003, 0.015))
            series.append(
                Bar(
                    symbol,
                    "1d",
                    t,
                    open_,
                    max(open_, close) * 1.004,
                    min(open_, close) * 0.996,
                    close,
                    100_000 + rng.randrange(900_000),
                )
            )
            price = close
        out[symbol] = series
    return out


class Weekdays:
    """Sessions on weekdays closing 21:00 UTC: the benchmark needs no holiday table."""

    def session_close(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 21, tzinfo=UTC)

    def last_closed_session(self, now: datetime) -> date:
        day = now.date() if now >= self.session_close(now.date()) else now.date() - timedelta(1)
        while day.weekday() >= 5:
            day -= timedelta(days=1)
        return day


def conditions() -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"load average {load}"


def bench_backtest(symbols: int, years: int, runs: int) -> None:
    data = history(symbols, 252 * years)
    bars = sum(len(v) for v in data.values())
    config = parse_trading_config(
        {"environment": "bench", "riskLimits": {"maxOpenPositions": symbols}}
    )
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = run_backtest(data, config)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    assert result is not None
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"backtest  {symbols} symbols x {years} y = {bars:,} bars, sma_crossover 20/50")
    print(f"  wall   median {wall:.2f} s of {runs} ({', '.join(f'{x:.2f}' for x in walls)})")
    print(f"  cpu    median {cpu:.2f} s;  {bars / wall:,.0f} bars/s wall, {bars / cpu:,.0f} cpu")
    print(
        f"  result {result.orders} orders, {len(result.trades)} trades, "
        f"return {100 * result.total_return:.1f}%  (goal <= 2 s: "
        f"{'met' if wall <= 2 else 'NOT met'} on this machine now)"
    )


def bench_service(symbols: int, steps: int) -> None:
    import boto3

    data = history(symbols, TABLE_BARS + steps + 1)
    names = sorted(data)
    config = parse_trading_config(
        {
            "environment": "bench",
            "strategyParams": {"fast": 5, "slow": 20},
            "riskLimits": {"maxOpenPositions": symbols, "maxStaleBars": 1000},
        }
    )
    os.environ.update(EMULATOR_ENV)
    with moto_server() as url:
        ddb = boto3.client("dynamodb", endpoint_url=url)
        ensure_table(ddb, "market")
        # Requests per step: the machine-independent half of the figure.
        sent = [0]

        def count(**_: object) -> None:
            sent[0] += 1

        ddb.meta.events.register("before-send.dynamodb", count)

        from tests.unit.service.helpers import bar_item  # the fetcher's item layout

        def put(days: range) -> None:
            items = [bar_item(data[s][d]) for d in days for s in names]
            for i in range(0, len(items), 25):
                batch = [{"PutRequest": {"Item": it}} for it in items[i : i + 25]]
                ddb.batch_write_item(RequestItems={"market": batch})

        put(range(TABLE_BARS))
        jsonlog.set_level("ERROR")  # one decision line per symbol would swamp the table
        # The service's clock: just after the newest bar's close, so nothing is stale.
        now = [data[names[0]][TABLE_BARS - 1].timestamp + timedelta(hours=7)]
        cold, warm = [], []
        cold_requests = warm_requests = 0
        runner = None
        for run in range(steps):
            table = f"ledger-{run}"
            ensure_table(ddb, table)
            runner = Runner(
                config=config,
                environment="bench",
                symbols=names,
                market=MarketData(client=ddb, table="market"),
                ledger=Ledger(DynamoStore(client=ddb, table_name=table)),
                broker=PaperBroker(cash=config.paper_cash),
                calendar=Weekdays(),
                clock=lambda: now[0],
            )
            t, before = time.perf_counter(), sent[0]
            report = runner.step()
            cold.append(time.perf_counter() - t)
            cold_requests = sent[0] - before
            assert report.bars == symbols, report
        assert runner is not None
        for day in range(TABLE_BARS, TABLE_BARS + steps):
            put(range(day, day + 1))
            now[0] = data[names[0]][day].timestamp + timedelta(hours=7)
            t, before = time.perf_counter(), sent[0]
            report = runner.step()
            warm.append(time.perf_counter() - t)
            warm_requests = sent[0] - before
            assert report.bars == symbols, report
    print(f"service step  {symbols} symbols, moto_server on 127.0.0.1, paper broker")
    print(
        f"  cold   median {statistics.median(cold):.2f} s of {steps} "
        f"({', '.join(f'{x:.2f}' for x in cold)})  first step: full table history"
    )
    print(
        f"  warm   median {statistics.median(warm):.2f} s of {steps} "
        f"({', '.join(f'{x:.2f}' for x in warm)})  one new bar per symbol"
    )
    print(
        f"  (goal <= 1 s: {'met' if statistics.median(warm) <= 1 else 'NOT met'} warm, "
        f"{'met' if statistics.median(cold) <= 1 else 'NOT met'} cold, on this machine now)"
    )
    print(
        f"  DynamoDB requests per step: cold {cold_requests}, warm {warm_requests} "
        f"(the last step placed {report.orders} orders)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--only", choices=("backtest", "service"), help="run one of the two")
    args = p.parse_args()
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, {conditions()} (before)"
    )
    if args.only != "service":
        bench_backtest(args.symbols, args.years, args.runs)
    if args.only != "backtest":
        bench_service(args.symbols, args.steps)
    print(f"{conditions()} (after)")


if __name__ == "__main__":
    main()
