"""Invoking the deployed handler the way Lambda would, without Docker.

moto cannot run a function's code without Docker, so the rehearsal does what the
Lambda service does: unzip the deployed package into a task directory and call the
handler in a fresh interpreter of the function's runtime, with the function's own
environment. boto3 comes from a separate "runtime" directory after the package on
sys.path, like Lambda's /var/runtime, because the package leaves boto3 out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lambda_pkg.interpreters import find_interpreter as find_for_version
from lambda_pkg.verify import RUNTIME_MODULES  # what the Lambda runtime has beside the package
from localcloud.emulator import EMULATOR_ENV

# Runs inside the subprocess. sys.path is the package, then the runtime dir, then the
# standard library only (-I -S): what the package forgot to bundle fails here as on AWS.
_RUNNER = r"""
import importlib, json, os, sys, time, traceback, uuid
from importlib import machinery as m
task, runtime, handler, event, out, name, memory, timeout = sys.argv[1:9]

# /var/task is read-only on Lambda, and here it is a cached tree the next run must find
# unchanged (localcloud/treecache.py): its modules load as usual but no .pyc is written there.
# Elsewhere (the runtime dir's boto3) bytecode is written as usual: compiling botocore
# afresh would cost seconds an invocation.
class TaskSourceLoader(m.SourceFileLoader):
    def set_data(self, path, data, *, _mode=0o666):
        pass

def task_finder(path):
    if path != task and not path.startswith(task + os.sep):
        raise ImportError(path)  # not ours: the next hook's
    return m.FileFinder(path, (m.ExtensionFileLoader, m.EXTENSION_SUFFIXES),
                        (TaskSourceLoader, m.SOURCE_SUFFIXES),
                        (m.SourcelessFileLoader, m.BYTECODE_SUFFIXES))

sys.path_hooks.insert(0, task_finder)
# The task dir first, then the layers and the runtime dir (os.pathsep-separated).
sys.path[:0] = [task, *runtime.split(os.pathsep)]

class Context:
    function_name = name
    function_version = "$LATEST"
    memory_limit_in_mb = int(memory)
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/" + name
    log_stream_name = "rehearsal"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
    _deadline = time.monotonic() + int(timeout)
    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))

start = time.perf_counter()
try:
    module, fn = handler.rsplit(".", 1)
    result = getattr(importlib.import_module(module), fn)(json.loads(event), Context())
    report = {"ok": True, "result": result}
except Exception as exc:
    report = {"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc),
              "stackTrace": traceback.format_exc().splitlines()[-12:]}
report["duration_ms"] = round((time.perf_counter() - start) * 1000, 1)
with open(out, "w") as fh:
    json.dump(report, fh, default=str)
"""


@dataclass
class HandlerRun:
    event: dict[str, Any]
    ok: bool
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    interpreter: str = ""
    log_tail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # The log lines stay out: --verbose shows them, the JSON report does not.
        return {k: v for k, v in asdict(self).items() if k != "log_tail"}


def runtime_python(runtime: str) -> tuple[str, bool]:
    """(path, exact): an interpreter of the runtime's version when the packager's
    finder (lambda_pkg.interpreters: LAMBDA_PKG_PYTHON, this one, PATH, pyenv, uv)
    has one that works, else the current one (exact=False, and the summary says so)."""
    m = re.fullmatch(r"python(\d+\.\d+)", runtime)
    found = find_for_version(m[1]) if m else None
    return (found.path, True) if found is not None else (sys.executable, False)


def runtime_dir(dest: Path) -> Path:
    """A /var/runtime stand-in: links to this environment's boto3 and its pure-Python
    deps (the modules `lambda_pkg verify` also stands in for the runtime with)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # six and friends are optional for newer botocore
        src = Path(spec.origin)
        src = src.parent if src.name == "__init__.py" else src
        link = dest / src.name
        if not link.exists():
            link.symlink_to(src, target_is_directory=src.is_dir())
    return dest


def function_env(
    variables: dict[str, str], *, endpoint_url: str, function_name: str, memory: int, region: str
) -> dict[str, str]:
    """The handler's environment: the function's own variables, the emulator's
    endpoint and dummy credentials. Nothing of the caller's environment leaks in,
    so the user's real AWS credentials can never reach the handler."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        **EMULATOR_ENV,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        **variables,
        # Last, so the function's variables cannot point the handler elsewhere.
        "AWS_ENDPOINT_URL": endpoint_url,
    }


def invoke(
    *,
    python: str,
    task_dir: Path,
    runtime: str,
    handler: str,
    event: dict[str, Any],
    env: dict[str, str],
    timeout: int,
) -> HandlerRun:
    with tempfile.TemporaryDirectory(prefix="ctb-invoke-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [
            python,
            "-I",  # isolated: no user site, no PYTHON* variables, no cwd on the path
            "-S",  # no site-packages: the package and the runtime dir are all there is
            "-c",
            _RUNNER,
            str(task_dir),
            str(runtime),
            handler,
            json.dumps(event),
            str(out),
            env.get("AWS_LAMBDA_FUNCTION_NAME", "function"),
            env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            str(timeout),
        ]
        try:
            proc = subprocess.run(
                argv,
                env=env,
                cwd=task_dir,
                capture_output=True,
                text=True,
                timeout=timeout + 5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return HandlerRun(
                event, False, error=f"timed out after {timeout} s", interpreter=python
            )
        logs = (proc.stdout + proc.stderr).splitlines()[-20:]
        if not out.is_file():
            return HandlerRun(
                event,
                False,
                error=f"the interpreter exited with code {proc.returncode} "
                "before the handler returned",
                interpreter=python,
                log_tail=logs,
            )
        report = json.loads(out.read_text(encoding="utf-8"))
    ok = report["ok"]
    return HandlerRun(
        event,
        ok,
        result=report.get("result"),
        error=None if ok else f"{report['errorType']}: {report['errorMessage']}",
        duration_ms=report["duration_ms"],
        interpreter=python,
        # A failure's traceback follows its log lines (one line each, from the runner).
        log_tail=logs if ok else [*logs, *report["stackTrace"]],
    )
