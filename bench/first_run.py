"""Benchmark the first run's install: a fresh clone, a new venv, an empty pip cache.

    .venv/bin/python bench/first_run.py [--sets run dev main] [--runs 1]

For each dependency set (`run`: the main job's requirements-local.txt; `dev`: plus the
test and lint tools; `main`: the README's main job, `scripts/deploy.sh --local`, whose
step lines are printed too), clone this repository's HEAD into a temp directory and time
`BOOTSTRAP_SET=<set> PIP_NO_CACHE_DIR=1 bash scripts/bootstrap.sh` there (which creates
the venv and installs the set), then report the wall time, what pip downloaded (the
sum of its "Downloading ... (N MB)" lines) and the venv's size on disk. Several runs
give a median. The conditions are printed with the figures: load average before and
after, CPUs, Python and pip versions, cache state. Network speed to PyPI dominates:
compare figures from one machine and one hour only.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT_DIR))
from bench.conditions import conditions as shared_conditions  # noqa: E402
from bench.conditions import load_average  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# pip's "Downloading x.whl (7.2 MB)", or scripts/bootstrap.sh's "[  6] downloading x.whl
# (7.2 MB)" (it lists only the downloads of 1 MB or more: the sum is then a floor).
_DOWNLOAD = re.compile(r"[Dd]ownloading \S+ \(([\d.]+) (kB|MB|GB)\)")
_UNIT = {"kB": 1e-3, "MB": 1.0, "GB": 1e3}
# What says where a main run's time went: each step as it starts, and how long it took.
_STEP = re.compile(r"^(==> |\s+(ok|FAILED) \()")


def _du_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            p = Path(dirpath) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return total / 1e6


def one_run(dependency_set: str, work: Path) -> tuple[float, float, float, str]:
    """(seconds, MB downloaded, MB installed, pip version) for one first run of a set.
    For `main`, the run's step lines (bootstrap's and the rehearsal's) are printed."""
    clone = work / f"clone-{dependency_set}"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", head], cwd=clone, check=True)
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    if dependency_set == "main":
        command = ["bash", "scripts/deploy.sh", "--local"]
    else:
        command = ["bash", "-c", "source scripts/bootstrap.sh"]
        env["BOOTSTRAP_SET"] = dependency_set
        env["DEBUG"] = "true"  # pip's full output, to add up its downloads
    env.pop("VENV", None)
    env.pop("LAMBDA_PKG_WHEEL_STORE", None)  # the clone's own, empty store
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed for {dependency_set}:\n{done.stderr[-2000:]}")
    if dependency_set == "main":
        print("".join(f"    {line}\n" for line in done.stderr.splitlines() if _STEP.match(line)))
    downloaded = sum(float(n) * _UNIT[u] for n, u in _DOWNLOAD.findall(done.stderr + done.stdout))
    installed = _du_mb(clone / ".venv")
    pip = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True, text=True, check=False,
    ).stdout.split(" from ")[0]  # fmt: skip
    shutil.rmtree(clone)
    return seconds, downloaded, installed, pip


def conditions(label: str) -> str:
    return shared_conditions(
        label,
        "pip cache off (PIP_NO_CACHE_DIR=1), new venv from scripts/bootstrap.sh's Python",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["run", "dev"], choices=["run", "dev", "main"])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(conditions("before"))
    with tempfile.TemporaryDirectory(prefix="ctb-first-run-") as tmp:
        for dependency_set in args.sets:
            results = [one_run(dependency_set, Path(tmp)) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in results)
            # main's figure is bootstrap's list (>= 1 MB each), not the builds' wheels
            floor = (
                " at least (the venv's; the builds' wheels not counted)"
                if dependency_set == "main"
                else ""
            )
            print(
                f"{dependency_set:>4}: median {seconds:.0f} s over {len(results)} run(s) "
                f"(each: {', '.join(f'{r[0]:.0f}' for r in results)} s); "
                f"downloaded {results[-1][1]:.0f} MB{floor}, venv {results[-1][2]:.0f} MB on disk, "
                f"{results[-1][3]}, load average now {load_average()}",
                flush=True,
            )
    print(conditions("after"))


if __name__ == "__main__":
    main()
