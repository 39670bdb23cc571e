"""The test suite's wall time, side by side with an older commit (issue 11, item 7).

    .venv/bin/python bench/suite.py [--base b77c819] [--skip-whole] [--skip-base]

Three runs, one sitting, the conditions printed before and after each:

1. base: the base commit's tests (the ids `pytest --collect-only -q` lists there),
   run in a worktree of that commit with that commit's scripts/test.sh flags (none:
   one process);
2. same ids, here: exactly those ids that still exist on this checkout, with this
   checkout's scripts/test.sh flags (`-n 2 --dist loadfile`);
3. whole suite, here: every test, with the same flags.

Run 1 also runs only the ids that exist on both sides, so 1 and 2 are the same tests.
With --together, 1 and 2 start at the same moment (on a shared machine whose load comes
and goes, both then run under the same conditions).
Ids renamed or removed since the base are listed, not timed. The base worktree shares
this checkout's .venv (a symlink), so both sides run with the same packages. The goal
(docs/testing.md): 2 <= 50% of 1, and 3 under 8 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conditions import conditions  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
# What scripts/test.sh passes to pytest at each side (base: b77c819's test.sh passed none).
HERE_FLAGS = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
QUIET = ["-q", "-p", "no:cacheprovider"]


def sh(cmd: list[str], cwd: Path) -> str:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True).stdout


def collect(cwd: Path) -> list[str]:
    # One -q: the ids, one a line (-qq would print counts per file).
    out = subprocess.run(
        [PY, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=cwd,
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line.startswith("tests/") and "::" in line]


def base_worktree(commit: str) -> Path:
    sha = sh(["git", "rev-parse", commit], ROOT).strip()
    where = Path(tempfile.gettempdir()) / f"ctb-suite-base-{sha[:12]}"
    if not where.exists():
        sh(["git", "worktree", "add", "--detach", str(where), sha], ROOT)
    venv = where / ".venv"
    if not venv.exists():
        venv.symlink_to(ROOT / ".venv")
    return where


def pytest_cmd(args: list[str], ids: list[str] | None) -> list[str]:
    """ids go through an @file (pytest >= 8.2), not the command line."""
    cmd = [PY, "-m", "pytest", *QUIET, *args]
    if ids is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".args", delete=False) as fh:
            fh.write("\n".join(ids) + "\n")
        cmd.append(f"@{fh.name}")
    return cmd


def timed_together(runs: list[tuple[str, Path, list[str]]]) -> list[float]:
    """Start the runs at the same moment and time each to its end: side by side, under
    the same load (each competes with the other, as with everything else running)."""
    log_dir = Path(tempfile.mkdtemp(prefix="ctb-suite-"))
    print(conditions(f"{' + '.join(label for label, _, _ in runs)}: before"), flush=True)
    procs = []
    for i, (label, cwd, cmd) in enumerate(runs):
        print(f"  {label}: $ (cd {cwd} && {shlex.join(cmd)})", flush=True)
        out = open(log_dir / f"run{i}.log", "w")  # noqa: SIM115 - closed below
        procs.append(
            (
                time.perf_counter(),
                subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT),
                out,
            )
        )
    seconds = [0.0] * len(runs)
    pending = set(range(len(runs)))
    while pending:
        for i in list(pending):
            start, proc, out = procs[i]
            if proc.poll() is not None:
                seconds[i] = time.perf_counter() - start
                out.close()
                pending.discard(i)
                lines = (log_dir / f"run{i}.log").read_text().strip().splitlines()
                print(f"  {runs[i][0]}: {seconds[i]:.1f} s ({lines[-1] if lines else ''}; "
                      f"exit {proc.returncode}; log {log_dir / f'run{i}.log'})")  # fmt: skip
                print(conditions(f"{runs[i][0]}: after"), flush=True)
        time.sleep(0.5)
    return seconds


def timed_pytest(label: str, cwd: Path, args: list[str], ids: list[str] | None) -> float:
    return timed_together([(label, cwd, pytest_cmd(args, ids))])[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="b77c819", help="the commit to compare with")
    p.add_argument("--skip-base", action="store_true", help="only time this checkout")
    p.add_argument("--skip-whole", action="store_true", help="skip the whole-suite run")
    p.add_argument("--together", action="store_true",
                   help="run 1 and 2 at the same time (a busy shared machine: both see the "
                        "same load), instead of one after the other")  # fmt: skip
    args = p.parse_args()
    # Started in the background (`&`, nohup), this process may have SIGINT and SIGHUP
    # ignored, and the runs would inherit that: the tests that send them would fail.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)

    head = sh(["git", "rev-parse", "--short", "HEAD"], ROOT).strip()
    print(conditions("start", f"this checkout {head}", f"base {args.base}"))
    base_dir = base_worktree(args.base)
    base_ids, here_ids = collect(base_dir), set(collect(ROOT))
    if not base_ids or not here_ids:
        sys.exit("error: pytest --collect-only listed no tests (see its output)")
    same = [i for i in base_ids if i in here_ids]
    gone = [i for i in base_ids if i not in here_ids]
    print(f"base {args.base}: {len(base_ids)} tests; {len(same)} still here; "
          f"{len(gone)} renamed or removed since (not timed):")  # fmt: skip
    for test_id in gone:
        print(f"    {test_id}")
    print(f"this checkout: {len(here_ids)} tests")

    results: dict[str, float] = {}
    base_run = (f"base {args.base}, same ids", base_dir, pytest_cmd([], same))
    here_run = (f"{head}, same ids", ROOT, pytest_cmd(HERE_FLAGS, same))
    if args.together and not args.skip_base:
        results["base"], results["here"] = timed_together([base_run, here_run])
    else:
        if not args.skip_base:
            results["base"] = timed_together([base_run])[0]
        results["here"] = timed_together([here_run])[0]
    if not args.skip_whole:
        results["whole"] = timed_pytest(f"{head}, whole suite", ROOT, HERE_FLAGS, None)

    print("\n| run | tests | wall |")
    print("|---|---|---|")
    if "base" in results:
        print(f"| {args.base}, one process | {len(same)} | {results['base']:.0f} s |")
    print(f"| {head}, `{' '.join(HERE_FLAGS)}` | {len(same)} | {results['here']:.0f} s |")
    if "whole" in results:
        print(f"| {head}, whole suite, same flags | {len(here_ids)} | {results['whole']:.0f} s |")
    if "base" in results:
        print(f"\nsame ids: {results['here'] / results['base']:.0%} of the base's wall time "
              "(goal <= 50%)")  # fmt: skip
    if "whole" in results:
        print(f"whole suite: {results['whole'] / 60:.1f} min (goal < 8 min)")
    print(conditions("end"))
    return 0


if __name__ == "__main__":
    if os.environ.get("VIRTUAL_ENV") is None and not Path(PY).exists():
        sys.exit("error: .venv/bin/python not found: run scripts/bootstrap.sh first")
    sys.exit(main())
