"""The wheels of the project's committed locks, downloaded once per test session.

pip's HTTP cache stays empty on the machines the suite runs on, so every test that
built from the real locks downloaded the same wheels again (about 400 MB of traffic and
minutes of wall time each). The tests that build from the locks now download them
once, here, and hand the directory to their builds as `--no-index --find-links DIR`:
each build still does everything else itself (its own caches, pip's own hash checks
against the lock) but fetch.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from lambda_pkg.deps import DepsSpec, pip_command, pip_env
from lambda_pkg.lock import read_lock

ROOT = Path(__file__).resolve().parents[1]


def shared_dir(basetemp: Path) -> Path:
    """A directory every process of this test session sees: under xdist each worker has
    its own basetemp (…/pytest-N/popen-gwK), and their parent is the session's."""
    return basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp


def lock_wheels(into: Path, locks: list[Path]) -> Path:
    """DIR holding every wheel the locks pin (for each lock's own target, boto3 & co.
    included), downloaded through the packager's own `pip download` command. One
    process downloads; the others wait on the lock file and reuse its directory."""
    key = hashlib.sha256(b"".join(read_lock(p).digest.encode() for p in locks)).hexdigest()
    wheels = into / f"lock-wheels-{key[:16]}"
    with open(into / f"{wheels.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if (wheels / ".complete").exists():
            return wheels
        partial = into / f"{wheels.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for path in locks:
            lock = read_lock(path)
            spec = DepsSpec(lock, lock.runtime, lock.architecture, True, None)
            out = subprocess.run(
                pip_command(spec, partial / "dl"), env=pip_env(), stdin=subprocess.DEVNULL,
                capture_output=True, text=True, check=False, timeout=1800,
            )  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError(f"pip download for {path.name} failed:\n{out.stdout[-3000:]}")
        shutil.rmtree(wheels, ignore_errors=True)  # a run stopped half-way
        (partial / "dl").rename(wheels)
        (wheels / ".complete").write_text("\n".join(p.name for p in locks) + "\n")
        shutil.rmtree(partial)  # what is left: pip's requirement lists
        return wheels


def offline_args(wheels: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheels)]
