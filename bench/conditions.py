"""The conditions a figure was measured in, printed beside it by every bench script.

A figure from a shared machine means little without the load it ran under, so each
script prints `conditions(label, ...)` before and after its runs: the load average
(1/5/15 min), the cores, the Python that ran the bench, and what the script adds
(the cache state, the tool versions, the target).

    from bench.conditions import conditions, load_average
    print(conditions("start", f"pip HTTP cache {pip_http_cache(python)}"))
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def python() -> str:
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable}) on {platform.machine()}"
    )


def conditions(label: str, *extra: str) -> str:
    """One line: `label: load average a / b / c (1/5/15 min) on N cores; Python; extra...`."""
    parts = [f"load average {load_average()} (1/5/15 min) on {os.cpu_count()} cores", python()]
    return f"{label}: " + "; ".join([*parts, *extra])


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def pip_http_cache(python: str = sys.executable) -> str:
    """Where pip's HTTP cache is and whether it holds anything (a cold build downloads)."""
    try:
        out = subprocess.run(
            [python, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (pip cache disabled?)"
    where = Path(out.strip())
    size = sum(dir_size(where / name) for name in ("http", "http-v2"))
    return f"{where}: {'empty' if size == 0 else f'{size / 1e6:.0f} MB'}"
