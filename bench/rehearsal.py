"""How long the whole rehearsal takes with a warm package cache (goal: <= 20 s).

    .venv/bin/python bench/rehearsal.py [--stack dev] [--repeat 2]

Runs what `scripts/deploy.sh --local` runs after its setup: the packager's cached
build (hash-only when warm), then `python -m infra.rehearsal --stack STACK --json`
in a fresh interpreter: moto_server start, the real program under the engine with
the real package (yfinance and its dependencies), the download + CodeSha256
check, the unzip, both handler invocations, the inspection and the bucket policy.

Figures printed: the warm package check, the wall time of each rehearsal process
(interpreter start and teardown included) and the rehearsal's own per-step times.
A cold cache is warmed first (that build needs PyPI) and is not a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_SECONDS = 20.0


def warm_package(stack: str) -> tuple[Path, float, bool]:
    from infra.rehearsal.stackinfo import stack_info
    from lambda_pkg.api import ensure_artifact

    info = stack_info(ROOT, stack)
    kwargs = {
        "project_dir": ROOT,
        "runtime": info["runtime"],
        "architecture": info["architecture"],
        "layer": info["layer"] == "true",
    }
    start = time.perf_counter()
    ensure_artifact(**kwargs)
    first = time.perf_counter() - start
    start = time.perf_counter()
    artifact = ensure_artifact(**kwargs)
    warm = time.perf_counter() - start
    return artifact.manifest_path, warm, first > 5 * max(warm, 0.01)


def rehearse_once(stack: str, manifest: Path) -> tuple[float, dict]:
    env = {**os.environ, "CTB_ARTIFACT_MANIFEST": str(manifest)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "infra.rehearsal", "--stack", stack, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - start
    if not proc.stdout.strip():
        sys.exit(f"the rehearsal printed no report:\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    if proc.returncode != 0:
        sys.exit(f"the rehearsal failed at {report['failed_step']}: {report['error']}")
    return wall, report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from bench.conditions import conditions

    print(conditions("start", "package cache warmed first (a cold build is not timed)"))
    manifest, warm, was_cold = warm_package(args.stack)
    package = json.loads(manifest.read_text())
    cold = " (the first check built it: inputs had changed; not timed)" if was_cold else ""
    print(
        f"stack {args.stack}; package {package['size']:,} bytes zipped, "
        f"{package['unzipped_size']:,} unzipped{cold}"
    )
    print(f"{'warm package check':<28}{warm:8.3f} s")

    walls, reports = [], []
    for _ in range(args.repeat):
        wall, report = rehearse_once(args.stack, manifest)
        walls.append(wall)
        reports.append(report)

    print(f"\n{'step':<28}" + "".join(f"{'run ' + str(i + 1):>10}" for i in range(len(reports))))
    for i, step in enumerate(reports[0]["steps"]):
        times = "".join(f"{r['steps'][i]['seconds']:9.2f}s" for r in reports)
        print(f"  {step['name']:<26}{times}")
    print(f"  {'rehearsal (in-process)':<26}" + "".join(f"{r['seconds']:9.2f}s" for r in reports))
    print(f"{'whole process (wall)':<28}" + "".join(f"{w:9.2f}s" for w in walls))
    total = warm + statistics.median(walls)
    verdict = "meets" if total <= GOAL_SECONDS else "MISSES"
    print(conditions("end"))
    print(
        f"\nwarm check + median rehearsal: {total:.2f} s ({verdict} the {GOAL_SECONDS:.0f} s goal)"
    )
    return 0 if total <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
