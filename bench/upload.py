"""Benchmark: upload a 60 MB package to moto_server on 127.0.0.1.

Prints the first upload's time (multipart, and single PUT for comparison), an
identical re-upload (goal: <= 0.2 s and 0 body bytes sent), and what verification
(HeadObject with ChecksumMode=ENABLED) costs. Body bytes are counted at botocore's
before-send hook, i.e. what actually goes to the HTTP layer.

Usage: .venv/bin/python bench/upload.py [--mib 60]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localcloud.emulator import EMULATOR_ENV, moto_server  # noqa: E402
from ops import upload as up  # noqa: E402
from ops.session import Aws, AwsSettings  # noqa: E402

KEY = "lambda/bench/lambda_deployment.zip"


def make_package(path: Path, mib: int) -> Path:
    # Random bytes do not compress: the zip is as large as the payload, like a
    # package full of already-compressed wheels' .so files.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("aws/market_data_fetcher.py", "def handler(event, context):\n    return 1\n")
        zf.writestr("backend/payload.bin", os.urandom(mib * 1024 * 1024))
    return path


def body_counter(client) -> list[int]:
    sent: list[int] = []

    def hook(request, **_):
        # Content-Length is what goes on the wire (botocore may wrap the body in a stream).
        sent.append(int(request.headers.get("Content-Length") or 0))

    client.meta.events.register("before-send.s3.*", hook)
    return sent


def timed_upload(s3, zip_path: Path, bucket: str, *, multipart_threshold: int):
    """What `python -m lambda_pkg upload` does after argument parsing, timed."""
    start = time.perf_counter()
    pkg = up.inspect_package(
        zip_path, part_size=up.PART_SIZE, multipart_threshold=multipart_threshold
    )
    up.check_destination(bucket, KEY)
    up.check_bucket(s3, bucket)
    result = up.upload(s3, pkg, bucket, KEY, multipart_threshold=multipart_threshold)
    return time.perf_counter() - start, result, pkg


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=60)
    args = parser.parse_args()
    os.environ.update(EMULATOR_ENV)
    with tempfile.TemporaryDirectory() as tmp, moto_server() as url:
        zip_path = make_package(Path(tmp) / "lambda_deployment.zip", args.mib)
        size = zip_path.stat().st_size
        s3 = Aws(AwsSettings("us-east-1", url)).client("s3")
        sent = body_counter(s3.client)
        rows = []
        for label, threshold in (
            ("multipart (8 MiB parts)", up.MULTIPART_THRESHOLD),
            ("single PUT", 1 << 40),
        ):
            bucket = f"bench-{'mp' if threshold == up.MULTIPART_THRESHOLD else 'single'}"
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            sent.clear()
            seconds, result, pkg = timed_upload(s3, zip_path, bucket, multipart_threshold=threshold)
            # Object data plus the CompleteMultipartUpload XML.
            assert not result.skipped and size <= sum(sent) < size + 4096, (sent, size)
            rows.append((f"first upload, {label}", seconds, sum(sent), result.parts))

            again = []
            for _ in range(5):
                sent.clear()
                seconds2, result2, _pkg = timed_upload(
                    s3, zip_path, bucket, multipart_threshold=threshold
                )
                assert result2.skipped
                again.append((seconds2, sum(sent)))
            median = statistics.median(t for t, _ in again)
            fastest = min(t for t, _ in again)
            rows.append(
                (
                    f"identical re-upload, {label} (median of 5; min {fastest:.3f})",
                    median,
                    max(b for _, b in again),
                    0,
                )
            )

            verify_times = []
            for _ in range(10):
                start = time.perf_counter()
                up.verify(
                    s3, bucket, KEY, version_id=result.version_id, pkg=pkg, checksum=result.checksum
                )
                verify_times.append(time.perf_counter() - start)
            rows.append(
                (
                    f"verification (HeadObject), {label} (median of 10)",
                    statistics.median(verify_times),
                    0,
                    0,
                )
            )

        # The whole command, a fresh process: adds interpreter start and boto3 import.
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [
            sys.executable,
            "-m",
            "lambda_pkg",
            "upload",
            str(zip_path),
            "bench-mp",
            KEY,
            "--endpoint-url",
            url,
        ]
        start = time.perf_counter()
        subprocess.run(cli, env=env, check=True, capture_output=True)
        rows.append(("identical re-upload, whole CLI process", time.perf_counter() - start, 0, 0))

    print(f"package: {size / 1024 / 1024:.1f} MiB zip, moto_server on 127.0.0.1")
    print(f"{'case':<74}{'seconds':>9}{'request body bytes':>20}{'parts':>7}")
    for name, seconds, body, parts in rows:
        print(f"{name:<74}{seconds:>9.3f}{body:>20,}{parts or '':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
