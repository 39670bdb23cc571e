"""Benchmark the runtime: handler import time, the closed-market answer, `import
yfinance` from the built package, and fetch throughput against moto_server.

    .venv/bin/python bench/handler.py [--symbols 100] [--latency 0.05] [--imports 10]
                                      [--package ZIP]

Conditions (load average, cores, Python, cache state) are printed first; every time is
a median of several runs.

1. Import time: `import aws.market_data_fetcher` in a fresh interpreter, measured inside
   the process (so interpreter start-up is not counted), median of N runs, with the
   venv's Python and, if present, python3.12 (the Lambda runtime's version).
2. A scheduled run on a closed market (Saturday): cold, in a fresh interpreter from the
   handler's import to its `market_closed` answer (the exchange calendar's first load
   included: exchange_calendars and pandas), and warm, the same call again in-process.
3. `import yfinance` from the package (the handler imports it lazily, on the first fetch:
   the cold-start figure that counts): the package (--package, or the repository's own
   build from its lock, cached in .build) unzipped, then `python3.12 -I -S -B -c "import
   sys; sys.path.insert(0, DIR); import yfinance"`, timed from the outside (start-up
   included), median of N; with and without the package's bytecode.
4. Throughput: N symbols from a provider that sleeps `latency` seconds per symbol (a
   stand-in for Yahoo's round trip), stored in S3 and DynamoDB on a moto_server on
   127.0.0.1, sequentially (1 worker) and with the handler's default pool, for a first
   run (a year of history per symbol) and the next day's run.

Every figure is printed with the conditions it was taken in (load average, Python).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aws.market_data_fetcher import handle  # noqa: E402
from backend.fetcher import MAX_WORKERS  # noqa: E402
from backend.models import MAX_SYMBOLS  # noqa: E402
from backend.providers.fixture import FixtureProvider  # noqa: E402
from bench.conditions import conditions  # noqa: E402
from lambda_pkg.interpreters import find_interpreter  # noqa: E402
from localcloud.emulator import EMULATOR_ENV, moto_server, reset  # noqa: E402
from tests.runtime_support import RecordingClients, deploy  # noqa: E402

IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import aws.market_data_fetcher; "
    "print(time.perf_counter() - t)"
)
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event"}
SATURDAY = datetime(2024, 3, 16, 15, 0, tzinfo=UTC)
CLOSED_PROBE = f"""
import time; t = time.perf_counter()
from datetime import datetime
from aws.market_data_fetcher import handle
when = datetime.fromisoformat({SATURDAY.isoformat()!r})
answer = handle({SCHEDULED!r}, None, env=__import__("json").loads(__import__("sys").argv[1]),
                now=lambda: when)
assert answer["status"] == "market_closed", answer
print(time.perf_counter() - t)
"""
BUCKET = "bench-bucket"
NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)
NEXT_DAY = datetime(2024, 3, 18, 14, 30, tzinfo=UTC)


def import_times(python: Path | str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [str(python), "-c", IMPORT_PROBE],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout))
    return times


def closed_market_times(runs: int) -> tuple[list[float], list[float]]:
    env = {
        "ENVIRONMENT": "bench",
        "BUCKET_NAME": BUCKET,
        "DATA_PREFIX": "data/bench/",
        "LOGS_PREFIX": "logs/bench/",
        "TABLE_NAME": "bench-table",
        "SYMBOLS": "SPY",
        "MARKET_DATA_PROVIDER": "fixture",
        "LOG_LEVEL": "WARNING",
    }
    cold = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CLOSED_PROBE, json.dumps(env)],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        cold.append(float(out.stdout.splitlines()[-1]))
    handle(SCHEDULED, None, env=env, now=lambda: SATURDAY)  # load the calendar here
    warm = []
    for _ in range(100):
        started = time.perf_counter()
        answer = handle(SCHEDULED, None, env=env, now=lambda: SATURDAY)
        warm.append(time.perf_counter() - started)
        assert answer["status"] == "market_closed", answer
    return cold, warm


class SlowFixture(FixtureProvider):
    """The fixture's bars after a fixed delay, like a network round trip."""

    def __init__(self, latency: float, now: datetime):
        super().__init__(clock=lambda: now)
        self.latency = latency

    def fetch(self, symbol: str, interval: str, period: str):
        time.sleep(self.latency)
        return super().fetch(symbol, interval, period)


def run_fetch(
    url: str, symbols: list[str], latency: float, workers: int
) -> list[tuple[float, int, dict]]:
    """(seconds, requests, counts) of a first run and of the next day's run."""
    reset(url)
    clients = RecordingClients(max_pool_connections=workers + 4)
    # The resources through the runtime's own clients (AWS_ENDPOINT_URL points them at
    # moto_server); no secret: neither provider reads it during a fetch.
    world = deploy(
        bucket=BUCKET,
        environment="bench",
        secret=False,
        client=clients.get,
        symbols=symbols,
        log_level="WARNING",
    )
    figures = []
    for now in (NOW, NEXT_DAY):
        clients.sent.clear()  # count the fetch's requests only
        started = time.perf_counter()
        response = handle(
            {},
            None,
            env=world.env,
            clients=clients,
            provider=SlowFixture(latency, now),
            now=lambda when=now: when,
            max_workers=workers,
        )
        figures.append((time.perf_counter() - started, len(clients.sent), response["counts"]))
    return figures


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number {lo}-{hi}")
        return value

    return parse


def yfinance_import(package: Path | None, runs: int) -> None:
    """`import yfinance` from the unzipped package with the runtime's Python."""
    import tempfile
    import zipfile

    from lambda_pkg.api import ensure_artifact

    py312 = find_interpreter("3.12")
    if py312 is None:
        print("  no python3.12 found: skipped")
        return
    if package is None:
        art = ensure_artifact(project_dir=ROOT, runtime="python3.12")
        package, cache = art.path, "the repository's build (from its lock, cached in .build)"
    else:
        cache = str(package)
    with tempfile.TemporaryDirectory(prefix="bench-yf-") as tmp:
        with zipfile.ZipFile(package) as zf:
            zf.extractall(tmp)
        code = f"import sys; sys.path.insert(0, {tmp!r}); import yfinance"
        cmd = [py312.path, "-I", "-S", "-B", "-c", code]
        subprocess.run(cmd, check=True, capture_output=True)  # page cache warm, as on Lambda
        with_pyc = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            with_pyc.append(time.perf_counter() - start)
        for pyc in Path(tmp).rglob("__pycache__"):
            for f in pyc.iterdir():
                f.unlink()
        without = []
        for _ in range(min(runs, 3)):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            without.append(time.perf_counter() - start)
    print(f"  package: {cache}")
    print(
        f"  with bytecode    median {statistics.median(with_pyc):5.2f} s   "
        f"max {max(with_pyc):5.2f} s   ({runs} runs; python3.12 {py312.version}; goal <= 0.7 s)"
    )
    print(f"  without bytecode median {statistics.median(without):5.2f} s   ({len(without)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=_int_in(1, MAX_SYMBOLS), default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--imports", type=_int_in(1, 1000), default=10)
    parser.add_argument("--package", type=Path, help="a built zip (default: build this repo)")
    args = parser.parse_args()
    print(conditions("conditions"))

    print("== import aws.market_data_fetcher (fresh process, in-process timer)")
    pythons = [("venv " + sys.version.split()[0], sys.executable)]
    py312 = find_interpreter("3.12")  # the packager's finder: pyenv shims here are broken
    if py312 is not None:
        pythons.append(("python3.12", py312.path))
    for label, python in pythons:
        times = import_times(python, args.imports)
        print(
            f"  {label:<14} median {statistics.median(times) * 1000:6.1f} ms   "
            f"min {min(times) * 1000:6.1f} ms   max {max(times) * 1000:6.1f} ms   "
            f"({args.imports} runs; goal <= 150 ms)"
        )

    print("== scheduled run on a closed market (Saturday): import to market_closed answer")
    cold, warm = closed_market_times(args.imports)
    print(
        f"  cold           median {statistics.median(cold) * 1000:6.1f} ms   "
        f"min {min(cold) * 1000:6.1f} ms   max {max(cold) * 1000:6.1f} ms   "
        f"({args.imports} fresh processes, calendar load included)"
    )
    print(
        f"  warm           median {statistics.median(warm) * 1e6:6.1f} us   "
        f"max {max(warm) * 1e6:6.1f} us   (100 calls, calendar cached in the container)"
    )

    print("== import yfinance from the package (fresh process, start-up included)")
    yfinance_import(args.package, args.imports)

    print(f"== fetch {args.symbols} symbols, {args.latency * 1000:.0f} ms latency, moto_server")
    print(conditions("conditions"))
    os.environ.update(EMULATOR_ENV)
    symbols = [f"SYM{i:03d}" for i in range(args.symbols)]
    with moto_server() as url:
        os.environ["AWS_ENDPOINT_URL"] = url  # boto3's own variable, as in the rehearsal
        results = {}
        for label, workers in (("sequential", 1), (f"pool of {MAX_WORKERS}", MAX_WORKERS)):
            runs = run_fetch(url, symbols, args.latency, workers)
            for run, (seconds, requests, counts) in zip(
                ("first run", "next day"), runs, strict=True
            ):
                assert counts["succeeded"] == args.symbols, counts
                results[label, run] = seconds
                print(
                    f"  {label:<14} {run:<10} {seconds:6.2f} s   {requests} requests   "
                    f"{args.symbols / seconds:6.1f} symbols/s"
                )
    for run in ("first run", "next day"):
        speedup = results["sequential", run] / results[f"pool of {MAX_WORKERS}", run]
        print(f"  speed-up       {run:<10} {speedup:.1f}x   (goal >= 4x)")
    print(conditions("conditions at the end"))


if __name__ == "__main__":
    main()
