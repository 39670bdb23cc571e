"""Benchmark the trading core and the strategy service (docs/trading.md, "Figures").

    .venv/bin/python bench/strategy.py [--symbols 100] [--years 10] [--runs 5]
                                       [--steps 5] [--colds 3] [--only backtest|service]

1. Backtest: SMA crossover (20/50) over N symbols x Y years of daily bars (252 a year),
   generated deterministically (a seeded random walk per symbol), in memory: the same
   engine, risk checks, paper broker and memory ledger as the service. Goal <= 2 s for
   100 x 10 years (252,000 bars). Prints CPU and wall medians of the runs, and bars/s.
2. Service step: N symbols' market data written by the real fetcher (its handler, the
   fixture provider with its splits, dividends and bad rows) to a moto_server on
   127.0.0.1: a manual fetch ({}) stores a year of history, then each weekday evening's
   scheduled fetch (22:00 UTC, the default schedule) adds a session. The service is the
   real one (make_runner: S3 history, the LATEST items, the DynamoDB ledger, decision
   records in S3, the exchange calendar), its decision lines written to /dev/null.
   "warm": a running service's step after an evening's fetch (one new final bar per
   symbol): the recurring cost, goal <= 1 s for 100 symbols.
   "cold": a new process: the runner made (ledger read) and its first step (the S3
   warm-up, LATEST, and the first start's orders), each on a fresh ledger table.
   Requests per step are counted by API operation: the machine-independent half.
Prints the conditions: Python, machine, CPUs, the load average before and after each
part, and where the data is (memory, or moto_server).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.models import Bar  # noqa: E402
from backend.trading.backtest import run_backtest  # noqa: E402
from backend.trading.settings import parse_trading_config  # noqa: E402
from bench.conditions import conditions  # noqa: E402
from tests.unit.trading.helpers import sessions  # noqa: E402 - the tests' weekday bars

START = datetime(2015, 1, 2, 0, 0, tzinfo=UTC)
BUCKET = "bench-strategy"
FIRST_FETCH = datetime(2024, 4, 1, 22, 0, tzinfo=UTC)  # a Monday evening


def history(symbols: int, days: int) -> dict[str, list[Bar]]:
    """A seeded random walk per symbol: the same bars on every machine."""
    times = sessions(days, START)
    out: dict[str, list[Bar]] = {}
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


def after(evening: datetime) -> Callable[[], datetime]:
    """The service's clock: half an hour after an evening's fetch."""
    return lambda: evening + timedelta(minutes=30)


def spread(values: list[float]) -> str:
    return ", ".join(f"{x:.3f}" for x in values)


def bench_backtest(symbols: int, years: int, runs: int) -> None:
    data = history(symbols, 252 * years)
    bars = sum(len(v) for v in data.values())
    config = parse_trading_config(
        {"environment": "bench", "riskLimits": {"maxOpenPositions": symbols}}
    )
    print(f"backtest  {symbols} symbols x {years} y = {bars:,} bars in memory, sma_crossover 20/50")
    print(f"  {conditions('before')}")
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        result = run_backtest(data, config)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    assert result is not None
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    print(f"  wall   median {wall:.3f} s of {runs} ({spread(walls)})")
    print(f"  cpu    median {cpu:.3f} s of {runs} ({spread(cpus)})")
    print(f"  rate   {bars / wall:,.0f} bars/s wall, {bars / cpu:,.0f} bars/s cpu")
    print(
        f"  result {result.orders} orders, {len(result.trades)} trades, "
        f"return {100 * result.total_return:.1f}%  (goal <= 2 s: "
        f"{'met' if wall <= 2 else 'NOT met'} on this machine now)"
    )
    print(f"  {conditions('after')}")


def bench_service(symbols: int, steps: int, colds: int) -> None:  # noqa: PLR0915 - one scenario
    import boto3

    from backend import jsonlog
    from backend.providers.fixture import REGULAR
    from backend.service.__main__ import make_runner
    from backend.service.settings import ServiceSettings
    from backend.trading.dynamo import ensure_table
    from localcloud.emulator import EMULATOR_ENV, moto_server
    from tests.runtime_support import RecordingClients, deploy
    from tests.trading_support import fetch as fetch_once

    names = [f"S{i:03d}" for i in range(symbols)]
    config = parse_trading_config(
        {"environment": "dev", "riskLimits": {"maxOpenPositions": symbols}}
    )
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    evenings = [
        d for d in (FIRST_FETCH + timedelta(days=i) for i in range(1, 60)) if d.weekday() < 5
    ]
    with moto_server() as url:
        os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": url})
        world = deploy(
            bucket=BUCKET,
            symbols=names,
            client=lambda service: boto3.client(service, endpoint_url=url),
        )

        def fetch(when: datetime, event: object) -> dict[str, Any]:
            # The fixture's regular market: splits, dividends, a bad row now and then.
            return fetch_once(world, when, event, scenario=REGULAR)

        def settings(ledger: str) -> ServiceSettings:
            ensure_table(world.dynamodb, ledger)
            return ServiceSettings.from_env(
                {
                    "ENVIRONMENT": "dev",
                    "BUCKET_NAME": BUCKET,
                    "DATA_PREFIX": world.env["DATA_PREFIX"],
                    "LOGS_PREFIX": world.env["LOGS_PREFIX"],
                    "MARKET_DATA_TABLE": world.table,
                    "LEDGER_TABLE": ledger,
                    "SYMBOLS": ",".join(names),
                    "TRADING_CONFIG": config.to_json(),
                }
            )

        jsonlog.configure()
        cpu: list[float] = []  # this process's CPU per step (the emulator's is not in it)
        waits: list[dict[str, float]] = []
        t = time.perf_counter()
        first = fetch(FIRST_FETCH, {})
        print(
            f"service step  {symbols} symbols, moto_server on 127.0.0.1, paper broker, "
            f"the fetcher's data ({first['status']}, a year stored in "
            f"{time.perf_counter() - t:.1f} s)"
        )
        print(f"  {conditions('before')}")
        devnull = open(os.devnull, "w")  # noqa: SIM115 - held for the whole benchmark

        waited: defaultdict[str, float] = defaultdict(float)  # seconds in requests, by operation

        def watch(clients: RecordingClients) -> None:
            # Time each API call as the client sees it: the emulator's share of a step.
            started: dict[int, float] = {}
            for service in ("dynamodb", "s3"):
                client = clients.get(service)

                def before(context: dict[str, object], **_: object) -> None:
                    started[id(context)] = time.perf_counter()

                def after(context: dict[str, object], model: object, **_: object) -> None:
                    t0 = started.pop(id(context), None)
                    if t0 is not None:
                        name = str(getattr(model, "name", "?"))
                        waited[name] += time.perf_counter() - t0

                client.meta.events.register("before-call", before)
                client.meta.events.register("after-call", after)

        def timed_step(runner: object, clients: RecordingClients) -> tuple[float, Counter[str]]:
            clients.calls.clear()
            waited.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(devnull):
                report = runner.step()  # type: ignore[attr-defined]
            took = time.perf_counter() - t0
            cpu.append(time.process_time() - c0)
            waits.append(dict(waited))
            # A symbol whose row the fetcher dropped as bad has no bar that evening.
            assert report.bars >= symbols * 0.9, report
            return took, Counter(c.operation for c in clients.calls)

        # Cold: a new process each time, on the first evening, each with a fresh ledger.
        evening = evenings[0]
        fetch(evening, scheduled)
        cold_times: list[float] = []
        cold_ops: Counter[str] = Counter()
        for k in range(colds):
            clients = RecordingClients()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(devnull):
                runner = make_runner(settings(f"ledger-cold-{k}"), clients=clients)
            runner.clock = after(evening)
            made = time.perf_counter() - t0
            took, cold_ops = timed_step(runner, clients)
            cold_times.append(made + took)
        # Warm: one running service, a step after each evening's fetch.
        clients = RecordingClients()
        runner = make_runner(settings("ledger-warm"), clients=clients)
        watch(clients)
        runner.clock = after(evening)
        timed_step(runner, clients)  # its first step (cold), not counted
        cpu.clear()
        waits.clear()
        warm_times, warm_ops, orders = [], [], []
        for evening in evenings[1 : 1 + steps]:
            fetch(evening, scheduled)
            runner.clock = after(evening)
            before = runner.engine.orders_placed
            took, ops = timed_step(runner, clients)
            warm_times.append(took)
            warm_ops.append(ops)
            orders.append(runner.engine.orders_placed - before)
    warm, cold = statistics.median(warm_times), statistics.median(cold_times)

    def ops_text(ops: Counter[str]) -> str:
        return ", ".join(f"{name} {n}" for name, n in sorted(ops.items()))

    print(
        f"  warm   median {warm:.3f} s of {steps} ({spread(warm_times)}): one new bar per "
        f"symbol, {statistics.median(orders):g} orders a step (median)"
    )
    for ops, placed, used, wait in zip(warm_ops, orders, cpu, waits, strict=True):
        slowest = max(wait, key=wait.__getitem__) if wait else "-"
        print(
            f"         {sum(ops.values())} requests ({placed} orders): {ops_text(ops)}; "
            f"service CPU {used:.3f} s, waiting {sum(wait.values()):.3f} s "
            f"({slowest} {wait.get(slowest, 0):.3f} s)"
        )
    print(
        f"  cold   median {cold:.3f} s of {colds} ({spread(cold_times)}): runner made and "
        "first step (S3 warm-up, first start's orders)"
    )
    print(f"         {sum(cold_ops.values())} requests: {ops_text(cold_ops)}")
    print(
        f"  (goal <= 1 s for a step: {'met' if warm <= 1 else 'NOT met'} warm, "
        f"{'met' if cold <= 1 else 'NOT met'} cold, on this machine now)"
    )
    print(f"  {conditions('after')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--runs", type=int, default=5, help="backtest runs (median)")
    p.add_argument("--steps", type=int, default=5, help="warm service steps (median)")
    p.add_argument("--colds", type=int, default=3, help="cold service starts (median)")
    p.add_argument("--only", choices=("backtest", "service"), help="run one of the two")
    args = p.parse_args()
    print(conditions("start"))
    if args.only != "service":
        bench_backtest(args.symbols, args.years, args.runs)
    if args.only != "backtest":
        bench_service(args.symbols, args.steps, args.colds)


if __name__ == "__main__":
    main()
