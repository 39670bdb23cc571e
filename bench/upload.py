"""Benchmark: the uploader (`python -m ops upload`) against moto_server on 127.0.0.1.

Measures, as medians of --runs runs, with the conditions printed beside them:
- a first upload of a package below the multipart threshold (one PUT);
- an identical re-upload (goal: <= 0.2 s and 0 body bytes sent);
- a first upload of a 60 MiB package in 8 MiB parts, s3transfer's default of 10
  parts at once against 1 at a time (what the hand-written uploader did), both
  directly and through a proxy that holds every part --latency-ms (default 250:
  about what one connection to a distant S3 region takes to move an 8 MiB part;
  on 127.0.0.1 moto answers at once, so the CPU is all that is measured); the
  ratio is from the same run;
- verification (one HeadObject with ChecksumMode=ENABLED);
- an identical re-upload as a whole CLI process (interpreter start and imports).

Body bytes are counted at botocore's before-send hook: what goes to the HTTP layer.

Usage: .venv/bin/python bench/upload.py [--mib 60] [--runs 5] [--latency-ms 250]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.conditions import conditions  # noqa: E402
from localcloud.emulator import EMULATOR_ENV, moto_server  # noqa: E402
from ops import upload as up  # noqa: E402
from ops.checksums import MULTIPART_THRESHOLD, PART_SIZE, MiB  # noqa: E402
from ops.destination import check_destination  # noqa: E402
from ops.package import inspect_package  # noqa: E402
from ops.session import AwsSession, AwsSettings  # noqa: E402
from tests.unit.ops.faultproxy import FaultProxy, is_part  # noqa: E402

KEY = "lambda/bench/lambda_deployment.zip"


def make_package(path: Path, mib: float) -> Path:
    # Random bytes do not compress: the zip is as large as the payload, like a
    # package full of already-compressed wheels' .so files.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("aws/market_data_fetcher.py", "def handler(event, context):\n    return 1\n")
        zf.writestr("backend/payload.bin", os.urandom(int(mib * MiB)))
    return path


def body_counter(client) -> list[int]:
    sent: list[int] = []

    def hook(request, **_):
        headers = request.headers
        length = headers.get("x-amz-decoded-content-length") or headers.get("Content-Length")
        sent.append(int(length or 0))

    client.meta.events.register("before-send.s3", hook)
    return sent


def timed_upload(s3, zip_path: Path, bucket: str, transfer: up.TransferSettings):
    """What `python -m ops upload` does after argument parsing, timed."""
    start = time.perf_counter()
    check_destination(bucket, KEY)
    pkg = inspect_package(
        zip_path,
        multipart_threshold=transfer.multipart_threshold,
        part_size=transfer.part_size,
    )
    up.check_bucket(s3, bucket)
    result = up.upload(s3, pkg, bucket, KEY, transfer=transfer)
    return time.perf_counter() - start, result, pkg


class Buckets:
    """A fresh versioned bucket for every first upload."""

    def __init__(self, s3) -> None:
        self.s3, self.n = s3, 0

    def new(self) -> str:
        self.n += 1
        name = f"bench-{os.getpid()}-{self.n}"
        self.s3.create_bucket(Bucket=name)
        self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name


def median_of(runs: int, once: Callable[[], float]) -> tuple[float, float, float]:
    times = [once() for _ in range(runs)]
    return statistics.median(times), min(times), max(times)


def upload_conditions(runs: int) -> list[str]:
    import boto3
    import botocore
    import s3transfer

    return [
        conditions("at start"),
        f"boto3 {boto3.__version__}, botocore {botocore.__version__}, "
        f"s3transfer {s3transfer.__version__}; moto_server on 127.0.0.1 (fresh process)",
        f"cache: the packages were just written (page cache warm); medians of {runs} runs",
    ]


class Bench:
    def __init__(self, url: str, runs: int) -> None:
        self.url, self.runs = url, runs
        self.s3 = AwsSession(AwsSettings("us-east-1", url)).s3()
        self.sent = body_counter(self.s3)
        self.buckets = Buckets(self.s3)
        self.rows: list[tuple[str, float, float, float, str]] = []

    def row(self, name: str, once: Callable[[], float], body: Callable[[], str]) -> float:
        stats = median_of(self.runs, once)
        self.rows.append((name, *stats, body()))
        return stats[0]

    def first(self, zip_path: Path, transfer: up.TransferSettings, client=None) -> float:
        bucket = self.buckets.new()
        self.sent.clear()
        seconds, result, _ = timed_upload(client or self.s3, zip_path, bucket, transfer)
        assert not result.skipped
        return seconds

    def body(self) -> str:
        return f"{sum(self.sent):,}"


def measure(bench: Bench, small: Path, big: Path, args: argparse.Namespace) -> list[str]:
    default = up.TransferSettings(MULTIPART_THRESHOLD, PART_SIZE)
    serial = up.TransferSettings(MULTIPART_THRESHOLD, PART_SIZE, max_concurrency=1)
    bench.row(
        f"first upload, {args.single_mib:g} MiB, one PUT",
        lambda: bench.first(small, default),
        bench.body,
    )
    # The identical re-upload of the big package: hash it, one HeadObject, 0 bytes.
    bucket = bench.buckets.new()
    _, result, pkg = timed_upload(bench.s3, big, bucket, default)

    def again() -> float:
        bench.sent.clear()
        seconds, again_result, _ = timed_upload(bench.s3, big, bucket, default)
        assert again_result.skipped and sum(bench.sent) == 0
        return seconds

    bench.row(f"identical re-upload, {args.mib} MiB", again, bench.body)

    def verify() -> float:
        start = time.perf_counter()
        version = result.version_id
        up.verify(bench.s3, bucket, KEY, version_id=version, pkg=pkg, checksum=pkg.checksum)
        return time.perf_counter() - start

    bench.row("verification (one HeadObject)", verify, lambda: "0")
    parts = pkg.layout.parts
    times: dict[tuple[str, str], float] = {}
    for name, transfer in (("10 parts at once", default), ("1 part at a time", serial)):
        label = f"first upload, {args.mib} MiB in {parts} parts, {name}"
        times["direct", name] = bench.row(label, lambda t=transfer: bench.first(big, t), bench.body)
    proxy = FaultProxy(bench.url, delay=args.latency_ms / 1000, delay_when=is_part())
    with proxy.running():
        far = AwsSession(AwsSettings("us-east-1", proxy.url)).s3()
        for name, transfer in (("10 parts at once", default), ("1 part at a time", serial)):
            label = f"  same, +{args.latency_ms} ms per part (proxy), {name}"
            once = lambda t=transfer: bench.first(big, t, far)  # noqa: E731
            times["proxy", name] = bench.row(label, once, lambda: "-")

    # The whole command, a fresh process: adds interpreter start and imports.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "ops", "upload", str(big), bucket, KEY]
    cli += ["--endpoint-url", bench.url]

    def process() -> float:
        start = time.perf_counter()
        subprocess.run(cli, env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    bench.row("identical re-upload, whole CLI process", process, lambda: "0")
    ratios = [
        times[where, "1 part at a time"] / times[where, "10 parts at once"]
        for where in ("direct", "proxy")
    ]
    return [
        f"parallel parts vs one at a time (same run): {ratios[0]:.2f}x faster direct, "
        f"{ratios[1]:.2f}x with +{args.latency_ms} ms per part"
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=60, help="the multipart package's size")
    parser.add_argument("--single-mib", type=float, default=12, help="the single-PUT package's")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=250, help="added to each part by a proxy")
    args = parser.parse_args()
    os.environ.update(EMULATOR_ENV)
    header = upload_conditions(args.runs)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as url:
        small = make_package(Path(tmp) / "small.zip", args.single_mib)
        big = make_package(Path(tmp) / "lambda_deployment.zip", args.mib)
        bench = Bench(url, args.runs)
        footer = measure(bench, small, big, args)
    for line in header:
        print(f"# {line}")
    print(f"# {conditions('at the end')}")
    print(f"{'case':<66}{'median s':>9}{'min':>7}{'max':>7}{'body bytes':>14}")
    for name, med, low, high, body in bench.rows:
        print(f"{name:<66}{med:>9.3f}{low:>7.3f}{high:>7.3f}{body:>14}")
    for line in footer:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
