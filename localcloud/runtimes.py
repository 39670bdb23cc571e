"""What stands in for a Lambda runtime here: the function's Python version (found by
the packager's finder) and a directory holding what AWS's Python runtime provides
beside the function's code, i.e. the runtime interface client `awslambdaric` (which
AWS's Python base images run as their bootstrap) and boto3.

The directory is installed once per Python version from PyPI into the cache, by this
environment's pip with `--python-version X.Y --only-binary=:all:` (so the target
interpreter needs no pip of its own), and reused after that. Installs go to a temp
directory renamed into place under a file lock, so parallel runs never see half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.interpreters import find_interpreter

# The runtime interface client the AWS base images run; pinned, so every machine runs
# the same one (bump it here, and the cache directory's name changes with it).
RIC_REQUIREMENT = "awslambdaric==4.2.2"
_RUNTIME = re.compile(r"^python(\d+\.\d+)$")
PIP_TIMEOUT_S = 600


class RuntimeSetupError(RuntimeError):
    """No interpreter for the runtime, or its runtime directory cannot be installed."""


@dataclass(frozen=True)
class LambdaRuntime:
    name: str  # python3.12
    python: str  # the interpreter that runs the function
    python_version: str  # 3.12.1
    directory: Path  # awslambdaric and boto3: Lambda's /var/runtime


def python_version(runtime: str) -> str:
    match = _RUNTIME.match(runtime)
    if match is None:
        raise RuntimeSetupError(
            f"runtime {runtime!r}: the local cloud runs Python runtimes only (python3.X)"
        )
    return match[1]


def requirements() -> list[str]:
    # The boto3 this environment has (the runtime provides one; which exact one differs
    # by AWS release anyway), so pip usually finds it in its cache.
    try:
        boto3 = f"boto3=={importlib.metadata.version('boto3')}"
    except importlib.metadata.PackageNotFoundError:
        boto3 = "boto3"
    return [RIC_REQUIREMENT, boto3]


def runtime_dir(cache: Path, version: str) -> Path:
    digest = hashlib.sha256("\n".join(requirements()).encode()).hexdigest()[:12]
    return cache / f"runtime-py{version}-{digest}"


def ensure_runtime(runtime: str, cache: Path) -> LambdaRuntime:
    version = python_version(runtime)
    found = find_interpreter(version)
    if found is None:
        raise RuntimeSetupError(
            f"no Python {version} found for runtime {runtime}: install python{version} "
            "(or pyenv/uv's), or set LAMBDA_PKG_PYTHON to one"
        )
    target = runtime_dir(cache, version)
    if not (target / ".complete").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / f".runtime-py{version}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing it right now
            if not (target / ".complete").is_file():
                _install(found.path, version, target)
    return LambdaRuntime(runtime, found.path, found.version, target)


def _install(python: str, version: str, target: Path) -> None:
    reqs = requirements()
    print(
        f"localcloud: installing the Lambda runtime for Python {version} "
        f"({', '.join(reqs)}) into {target}; once, from PyPI",
        file=sys.stderr,
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(tmp),
        "--python-version",
        version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        # .pyc files would be this interpreter's, not the runtime's (compileall below).
        "--no-compile",
        *reqs,
    ]
    try:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise RuntimeSetupError(
                f"installing {', '.join(reqs)} for Python {version} took over "
                f"{PIP_TIMEOUT_S} s; check the network to PyPI"
            ) from None
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise RuntimeSetupError(
                f"could not install {', '.join(reqs)} for Python {version} (pip exited "
                f"{done.returncode}: {tail}); the first run needs PyPI, later runs use {target}"
            )
        # Bytecode by the target Python: environments run with -B, and compiling boto3 at
        # each cold start costs seconds. Unchecked: a broken module fails its import anyway.
        subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(tmp)],
                       capture_output=True, check=False)  # fmt: skip
        (tmp / ".complete").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)  # an incomplete one from a killed run
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
