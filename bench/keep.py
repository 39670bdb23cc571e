"""Benchmark `scripts/deploy.sh --local --keep`: a first run (the local cloud started,
every resource created, the rehearsal's invocations) against an unchanged re-run
(every resource reused, nothing written).

    .venv/bin/python bench/keep.py [--runs 3] [--manifest PATH]

Each round: `--keep` into a fresh state dir (first), `--keep` again (unchanged), then
`--down`. The package is a prebuilt one (`--manifest`, default: a code-only package of
backend/ and aws/ built here, as the tests use) with the fixture market-data provider,
so no network is needed. Prints each round and the medians, with the load average
before and after and the CPU count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _deploy(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"deploy.sh {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--manifest", type=Path, help="a package manifest (lambda_pkg build)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-keep-") as tmp:
        manifest = args.manifest
        if manifest is None:
            from tests.unit.rehearsal.helpers import code_only_artifact

            manifest = code_only_artifact(Path(tmp) / "pkg").manifest_path
        env = {**os.environ, "CTB_ARTIFACT_MANIFEST": str(manifest)}
        load_before = os.getloadavg()
        firsts, agains = [], []
        for i in range(args.runs):
            extra = ["--", "--state-dir", str(Path(tmp) / f"cloud{i}")]
            fixture = ["--config", "marketDataProvider=fixture"]
            firsts.append(_deploy("--local", "--keep", *extra, *fixture, env=env))
            agains.append(_deploy("--local", "--keep", *extra, *fixture, env=env))
            _deploy("--local", "--down", *extra, env=env)
            print(f"round {i + 1}: first {firsts[-1]:.1f} s, unchanged re-run {agains[-1]:.1f} s")
        load_after = os.getloadavg()
    print(
        f"median of {args.runs}: first --keep {statistics.median(firsts):.1f} s, "
        f"unchanged re-run {statistics.median(agains):.1f} s"
    )
    print(
        f"conditions: {os.cpu_count()} CPUs, load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
        f"{'/'.join(f'{x:.1f}' for x in load_after)}; Python {sys.version.split()[0]}; "
        f"package {manifest}; caches: the rehearsal's and the image's, as this checkout has them"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
