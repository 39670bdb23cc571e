"""The wheels of the project's committed locks, downloaded once per checkout.

pip's HTTP cache stays empty on the machines the suite runs on, so every test that
built from the real locks downloaded the same wheels again (about 400 MB of traffic and
minutes of wall time each). The tests that build from the locks now download them
once, here, and hand the directory to their builds as `--no-index --find-links DIR`:
each build still does everything else itself (its own caches, pip's own hash checks
against the lock) but fetch.

The directory is kept in .build/test-wheels (as the local cloud's test tools are in
.build/localcloud), named by the locks' digests: a warm checkout downloads nothing, a
lock change downloads into a new directory and removes the old one. A fresh clone
downloads in the background from the start of the session (`prefetch`), so the
download overlaps the tests that run before the first one needing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

from lambda_pkg.deps import DepsSpec, pip_command, pip_env
from lambda_pkg.lock import read_lock
from lambda_pkg.tmpdirs import file_lock, try_lock

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".build" / "test-wheels"
LOCKS = tuple(sorted((ROOT / "locks").glob("*.txt")))


def lock_wheels(into: Path, locks: list[Path]) -> Path:
    """DIR holding every wheel the locks pin (for each lock's own target, boto3 & co.
    included), downloaded through the packager's own `pip download` command. One
    process downloads; the others wait on the lock file and reuse its directory."""
    key = hashlib.sha256(b"".join(read_lock(p).digest.encode() for p in locks)).hexdigest()
    wheels = into / f"lock-wheels-{key[:16]}"
    with file_lock(into / f"{wheels.name}.lock"):
        if (wheels / ".complete").exists():
            return wheels
        partial = into / f"{wheels.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        # One pip per lock, all at once (each into its own directory: two pips writing
        # one wheel to one place would race): the downloads overlap, ~30 s -> ~20 s.
        procs = []
        for n, path in enumerate(locks):
            lock = read_lock(path)
            spec = DepsSpec(lock, lock.runtime, lock.architecture, True, None)
            log = open(partial / f"pip-{n}.log", "w+")  # noqa: SIM115 - closed below
            cmd = pip_command(spec, partial / f"dl-{n}")
            procs.append((path, log, subprocess.Popen(
                cmd, env=pip_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, text=True,
            )))  # fmt: skip
        failed = []
        for path, log, proc in procs:
            code = proc.wait(timeout=1800)
            log.seek(0)
            output = log.read()
            log.close()
            if code != 0:
                failed.append(f"pip download for {path.name} failed:\n{output[-3000:]}")
        if failed:
            raise RuntimeError("\n".join(failed))
        (partial / "dl").mkdir()
        for n in range(len(locks)):
            for wheel in (partial / f"dl-{n}").iterdir():
                if wheel.suffix == ".whl":  # the same wheel from two locks: same bytes
                    os.replace(wheel, partial / "dl" / wheel.name)
        shutil.rmtree(wheels, ignore_errors=True)  # a run stopped half-way
        (partial / "dl").rename(wheels)
        (wheels / ".complete").write_text("\n".join(p.name for p in locks) + "\n")
        shutil.rmtree(partial)  # what is left: pip's requirement lists
    _remove_others(into, keep=wheels.name)
    return wheels


def _remove_others(into: Path, keep: str) -> None:
    """The directories of older locks; one another process holds is left alone."""
    for old in into.glob("lock-wheels-*.lock"):
        name = old.name.removesuffix(".lock")
        if name == keep:
            continue
        with open(old, "a") as guard:
            if not try_lock(guard.fileno()):
                continue
            shutil.rmtree(into / name, ignore_errors=True)
            shutil.rmtree(into / f"{name}.partial", ignore_errors=True)
            old.unlink()


def prefetch() -> threading.Thread:
    """lock_wheels(CACHE, LOCKS) on a thread, started now; join it before the process
    exits. A failure is left to the fixture, which downloads again and raises it in the
    test that needs the wheels."""

    def download() -> None:
        with contextlib.suppress(Exception):
            lock_wheels(CACHE, list(LOCKS))

    thread = threading.Thread(target=download, name="lock-wheels-prefetch", daemon=True)
    thread.start()
    return thread


def offline_args(wheels: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheels)]
