"""Find a CPython of the target runtime's version, to compile bytecode with it.

A .pyc is only valid for the interpreter version that wrote it, so the builder's
own Python (often 3.11 here) cannot write them for python3.12. Candidates, first
that really runs wins:
  1. LAMBDA_PKG_PYTHON, if it is the right version;
  2. the running interpreter, if it is the right version;
  3. `pythonX.Y` on PATH (pyenv shims are skipped: they fail unless pyenv has that
     version selected, and they only point at step 4's directories anyway);
  4. ~/.pyenv/versions/X.Y*/bin/pythonX.Y (newest patch first);
  5. `uv python find X.Y`, if uv is installed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambda_pkg.statcache import HashCache

_PROBE = (
    "import sys, importlib.util as u; print(sys.implementation.name, "
    "'%d.%d.%d' % sys.version_info[:3], sys.implementation.cache_tag, u.MAGIC_NUMBER.hex())"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # e.g. "3.12.1"
    cache_tag: str  # e.g. "cpython-312": the .pyc file name suffix
    magic: str  # importlib.util.MAGIC_NUMBER as hex: the bytecode format

    @property
    def bytecode_id(self) -> str:
        """What the input hash records: the format, not the patch version or path."""
        return f"{self.cache_tag}:{self.magic}"


def _run_bounded(cmd: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """`cmd`'s output; on a timeout its whole process group is killed, since a version
    manager's shim runs the interpreter as a grandchild that would outlive it."""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _probe(path: str, want: str) -> Interpreter | None:
    try:
        out = _run_bounded([path, "-I", "-S", "-c", _PROBE])
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 4 or parts[0] != "cpython":
        return None
    if not parts[1].startswith(want + "."):
        return None
    return Interpreter(path=path, version=parts[1], cache_tag=parts[2], magic=parts[3])


def _is_pyenv_shim(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyenv" in head


def _version_key(path: Path) -> tuple[int, ...]:
    digits = path.name.split("-")[0].split(".")
    return tuple(int(d) if d.isdigit() else -1 for d in digits)


def candidates(version: str) -> list[str]:
    exe = f"python{version}"
    found: list[str] = []
    if env := os.environ.get("LAMBDA_PKG_PYTHON"):
        found.append(env)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        found.append(sys.executable)
    on_path = shutil.which(exe)
    if on_path and not _is_pyenv_shim(on_path):
        found.append(on_path)
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if root.is_dir():
        versions = sorted(root.glob(f"{version}*"), key=_version_key, reverse=True)
        found.extend(str(v / "bin" / exe) for v in versions if (v / "bin" / exe).exists())
    return found


@functools.cache
def find_interpreter(version: str) -> Interpreter | None:
    """A working CPython X.Y, or None. `version` is '3.12' (see platforms.python_version)."""
    for path in candidates(version):
        if found := _probe(path, version):
            return found
    uv = shutil.which("uv")
    if uv:
        try:
            out = _run_bounded([uv, "python", "find", "--no-python-downloads", version])
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0 and out.stdout.strip():
            return _probe(out.stdout.strip(), version)
    return None


def find_interpreter_memo(version: str, cache: HashCache) -> Interpreter | None:
    """find_interpreter, remembered in the build cache while the interpreter file and
    the places searched (LAMBDA_PKG_PYTHON, PATH, PYENV_ROOT) stay the same: a
    no-change rebuild then starts no interpreter just to ask its version."""
    env = [os.environ.get(k, "") for k in ("LAMBDA_PKG_PYTHON", "PATH", "PYENV_ROOT")]
    key = f"interpreter:{version}:{sys.executable}:{':'.join(env)}"
    memo = cache.recall(key)
    if isinstance(memo, list) and len(memo) == 4:
        return Interpreter(*memo)
    found = find_interpreter(version)
    if found is not None:
        cache.remember(key, [found.path], [found.path, found.version, found.cache_tag, found.magic])
    return found
