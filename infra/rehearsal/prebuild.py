"""The service's image, built beside the Lambda package, so the two cold builds overlap.

On a fresh clone both builds are cold: each downloads wheels and turns them into a zip
or a layer, one core each, and the image also builds the local base. The rehearsal
starts the image's build (`python -m lambda_pkg image`: the `ensure_image` call the
program's getter makes, with the same inputs and cache) when the package step starts;
the image step then waits for it and calls the program's getter, which finds the image
in the cache and only hashes. The wheels the two builds share are downloaded once
(lambda_pkg.wheelstore: the second build of a target waits for the first's download).

A child process, not a thread: it needs its own environment (`CTB_IMAGE_BASE`) without
changing this process's os.environ while the package builds; it uses the second core
without contending for the GIL; and it can be stopped. It is killed when the rehearsal
leaves its steps (the package step failed, or a signal): Ctrl-C reaches it with the
process group, and a parent-death signal covers a rehearsal killed outright. Its output
goes to files, so the step lines stay this process's alone, in their order.

If it fails, the image step does not guess why: the program's getter builds again in
process and fails with its own message (or succeeds, if the failure passed, such as a
dropped connection; a note then says so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infra.artifact import IMAGE_BASE_ENV
from infra.config import StackConfig
from infra.rehearsal import taskrun
from localcloud.emulator import dies_with_us

STOP_TIMEOUT = 5.0


@dataclass
class Prebuild:
    proc: subprocess.Popen[bytes]
    started: float
    stdout: Path
    stderr: Path

    def wait(self) -> tuple[bool | None, float, str]:
        """(built, seconds, failure): built is True when it built the image, False when
        the cache had it, None when it failed (failure: its last line of stderr)."""
        returncode = self.proc.wait()
        seconds = time.perf_counter() - self.started
        if returncode == 0:
            try:
                return bool(json.loads(self.stdout.read_text())["built"]), seconds, ""
            except (OSError, ValueError, KeyError, TypeError):
                pass
        lines = self.stderr.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return None, seconds, lines[-1] if lines else f"exit {returncode}"

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(cfg: StackConfig, project_dir: Path, work: Path) -> Prebuild | None:
    """Start building the image the image step will get, or None when it will build
    nothing (a prebuilt CTB_IMAGE_LAYOUT, no service) or cannot (no target Python: the
    image step says so)."""
    from lambda_pkg.interpreters import find_interpreter

    env = taskrun.image_env()
    base = env.get(IMAGE_BASE_ENV)
    if not cfg.strategy_enabled or base is None:
        return None
    if find_interpreter(cfg.runtime.removeprefix("python")) is None:
        return None
    command = [
        sys.executable, "-m", "lambda_pkg", "image", "--json", "--source", str(project_dir),
        "--runtime", cfg.runtime, "--architecture", cfg.architecture, "--base", base,
    ]  # fmt: skip
    stdout, stderr = work / "image-build.json", work / "image-build.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            dies_with_us(command), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env={**os.environ, **env}, cwd=project_dir,
        )  # fmt: skip
    return Prebuild(proc, time.perf_counter(), stdout, stderr)
