"""How long the Pulumi program takes for one stack when nothing changed (goal: <= 3 s).

    .venv/bin/python bench/preview.py [--stack dev] [--repeat 5]

The program runs for real (`__main__.py`, the stack's YAML, the packager's cached
build: CTB_ARTIFACT_MANIFEST unset) under Pulumi mocks instead of the engine and
the AWS provider, which are not the program's cost. The conditions are printed first
(Python, pulumi and pulumi-aws versions, cores, load average before and after, package
cache state); each figure is the median of --repeat runs, with min and max.
Figures printed:

  cold build        the one build that warms the cache, if it was cold (not the figure)
  warm ensure       the packager's hash-only check, in-process
  program (warm)    the whole program in-process, imports already loaded
  program (fresh)   a new interpreter: imports + config + artifact check + program,
                    i.e. what `pulumi preview` pays for the program on every run
                    (wall time, and its CPU time: user + system)

Every timed run forbids packaging: a build during one is an error, not a figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conditions import conditions  # noqa: E402


def _forbid_builds() -> None:
    from lambda_pkg import builder

    def refuse(*_args, **_kwargs):
        raise AssertionError("the packager started a build during a timed run")

    builder._build = refuse


def _run_program_once(stack: str) -> float:
    from tests.infra.harness import run_program

    start = time.perf_counter()
    run = run_program(stack, None)
    elapsed = time.perf_counter() - start
    assert run.outputs["function_name"].endswith(stack)
    return elapsed


def _inner(stack: str) -> None:
    # The child process: imports, then one program run, timed by the parent.
    _forbid_builds()
    _run_program_once(stack)


def _conditions(label: str) -> str:
    import importlib.metadata

    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("pulumi", "pulumi-aws")
    )
    return conditions(label, versions)


def _summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.inner:
        _inner(ns.stack)
        return 0

    from infra.config import load_stack_file
    from lambda_pkg.builder import ensure, prepare

    print(_conditions("conditions"))
    cfg, _ = load_stack_file(ns.stack, ROOT)
    options = {
        "project_dir": ROOT,
        "runtime": cfg.runtime,
        "architecture": cfg.architecture,
        "layer": cfg.dependency_layer,
    }
    start = time.perf_counter()
    artifact, built = ensure(prepare(**options))
    cold = time.perf_counter() - start
    print(f"stack {ns.stack}: {cfg.runtime}/{cfg.architecture}, package {artifact.size:,} bytes")
    print(
        f"cold build        {cold:.3f} s (cache was cold)"
        if built
        else "cold build        (cache was warm)"
    )

    _forbid_builds()
    warm = []
    for _ in range(ns.repeat):
        start = time.perf_counter()
        _, built = ensure(prepare(**options))
        warm.append(time.perf_counter() - start)
        assert not built
    print(f"warm ensure       {_summary(warm)}")

    os.environ.pop("CTB_ARTIFACT_MANIFEST", None)
    in_process = [_run_program_once(ns.stack) for _ in range(ns.repeat)]
    print(f"program (warm)    {_summary(in_process)}")

    fresh, cpu = [], []
    for _ in range(ns.repeat):
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, __file__, "--inner", "--stack", ns.stack], cwd=ROOT
        )
        # CPU time (user + system) as well as wall time: on a loaded machine the wall
        # time mostly measures the queue for a core, the CPU time what the run costs.
        _, status, usage = os.wait4(child.pid, 0)
        fresh.append(time.perf_counter() - start)
        assert os.waitstatus_to_exitcode(status) == 0, "the timed program run failed"
        cpu.append(usage.ru_utime + usage.ru_stime)
    print(f"program (fresh)   {_summary(fresh)}")
    print(f"  its CPU time    {_summary(cpu)}")
    print(_conditions("conditions after"))
    verdict = "meets" if statistics.median(fresh) <= 3.0 else "MISSES"
    print(f"goal <= 3 s for a no-change preview of the program: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
