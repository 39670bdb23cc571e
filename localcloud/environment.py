"""One execution environment: the function's code running under the real runtime
interface client (`python -m awslambdaric <handler>`, as AWS's Python base images
run it) with a local Runtime API, reused for one invocation after another until it
fails, times out, or is retired.

What it looks like from inside is Lambda's: the working directory and first `sys.path`
entry is the code (LAMBDA_TASK_ROOT), then the layers (`/opt/python`), then the runtime
directory (awslambdaric, boto3); no site-packages (`-S`); no bytecode written (`-B`); an
environment built from scratch (the function's variables, then Lambda's reserved
ones, then AWS_ENDPOINT_URL pointing at the local cloud) so the caller's real AWS
credentials can never reach the handler; a private TMPDIR.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from localcloud.capture import LogCapture
from localcloud.emulator import EMULATOR_ENV
from localcloud.functions import FunctionVersion
from localcloud.lambda_logs import LogLine, now_ms
from localcloud.runtime_api import Delivery, Mailbox, RuntimeApiServer
from localcloud.runtimes import LambdaRuntime
from localcloud.spawner import ChildSpec, Spawner

_POLL_S = 0.1  # how often a waiting invocation checks memory and the process


@dataclass(frozen=True)
class RunResult:
    """One invocation's outcome, before the platform's log lines are added."""

    request_id: str
    payload: bytes  # the handler's response, or the error document
    error_type: str | None  # None: success
    platform_status: str | None  # None, "error" (the runtime failed) or "timeout"
    start_ms: int  # epoch ms when the event was handed over (START)
    end_ms: int
    duration_ms: float
    init_duration_ms: float | None  # a cold start's init
    init_failed: bool
    max_memory_used_mb: int
    lines: list[LogLine]  # the function's own lines, init included on a cold start


def _peak_memory_mb(pid: int) -> tuple[int, int]:
    """(peak, current) resident memory of the process in MB, from /proc (0 if gone)."""
    peak = current = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    current = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return math.ceil(peak / 1024), math.ceil(current / 1024)


def _error_doc(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class ExecutionEnvironment:
    def __init__(
        self,
        *,
        function: FunctionVersion,
        code_dir: Path,
        layer_dirs: list[Path],
        runtime: LambdaRuntime,
        cloud_url: str,
        spawner: Spawner,
        tmp_root: Path,
        init_limit_s: float = 10.0,
    ) -> None:
        self.function = function
        self.env_id = uuid.uuid4().hex
        self.created_ms = now_ms()
        self.invocations = 0
        self.last_used = time.monotonic()
        self.dead = False
        self._code_dir = code_dir
        self._layer_dirs = layer_dirs
        self._runtime = runtime
        self._cloud_url = cloud_url
        self._spawner = spawner
        self._tmp = Path(tempfile.mkdtemp(dir=tmp_root, prefix="env-"))
        self._mailbox = Mailbox(spawned_at=time.monotonic(), init_limit_s=init_limit_s)
        self._api = RuntimeApiServer(self._mailbox)
        self._proc: subprocess.Popen[bytes] | None = None
        self._capture: LogCapture | None = None
        self._lock = threading.Lock()  # one invocation at a time

    def usable(self) -> bool:
        """Warm and alive: not killed, and its process has not exited on its own."""
        return not self.dead and self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def environ(self, telemetry_fd: int, log_stream: str) -> dict[str, str]:
        fn = self.function
        python_dir = str(Path(self._runtime.python).parent)
        layer_paths: list[str] = []
        for layer in reversed(self._layer_dirs):  # a later layer wins, as in /opt
            minor = self._runtime.name.removeprefix("python")
            layer_paths += [str(layer / "python" / "lib" / f"python{minor}" / "site-packages"),
                            str(layer / "python")]  # fmt: skip
        lib_dirs = [str(self._code_dir / "lib"), *(str(d / "lib") for d in self._layer_dirs)]
        env = {
            **dict(fn.variables),
            "PATH": f"{python_dir}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "LD_LIBRARY_PATH": ":".join(lib_dirs),
            "PYTHONPATH": ":".join([*layer_paths, str(self._runtime.directory)]),
            "TMPDIR": str(self._tmp),
            "HOME": str(self._tmp),
            "LAMBDA_TASK_ROOT": str(self._code_dir),
            "LAMBDA_RUNTIME_DIR": str(self._runtime.directory),
            "_HANDLER": fn.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_RUNTIME_API": self._api.address,
            "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_fd),
            **EMULATOR_ENV,
            "AWS_REGION": fn.region,
            "AWS_DEFAULT_REGION": fn.region,
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if fn.logging.log_format.upper() == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            if fn.logging.application_level:
                env["AWS_LAMBDA_LOG_LEVEL"] = fn.logging.application_level
        # Last, so that no function variable can point the code at another endpoint.
        env["AWS_ENDPOINT_URL"] = self._cloud_url
        return env

    def start(self, log_stream: str) -> None:
        # -B: the code and layers are cached trees the next cold start must find as unpacked
        # (treecache.py); read-only, but root writes regardless. The runtime dir has its .pyc.
        argv = [self._runtime.python, "-S", "-B", "-m", "awslambdaric", self.function.handler]
        self._api.start()
        telemetry_r, telemetry_w = os.pipe()
        try:
            self._mailbox.spawned_at = time.monotonic()
            self._proc = self._spawner.start(
                ChildSpec(
                    argv=argv,
                    env=self.environ(telemetry_w, log_stream),
                    cwd=self._code_dir,
                    pass_fds=(telemetry_w,),
                )
            )
        except BaseException:
            os.close(telemetry_r)
            self._api.stop()
            raise
        finally:
            os.close(telemetry_w)
        proc = self._proc
        if proc.stdout is None:  # the spawner always asks for a pipe
            raise RuntimeError("the runtime process has no stdout pipe")
        stdout_fd = os.dup(proc.stdout.fileno())
        proc.stdout.close()
        self._capture = LogCapture(stdout_fd, telemetry_r)
        self._capture.start()
        waiter = threading.Thread(target=lambda: self._mailbox.exited(proc.wait()), daemon=True)
        waiter.start()

    def invoke(
        self,
        *,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        client_context: str | None = None,
    ) -> RunResult:
        with self._lock:
            cold = self.invocations == 0
            self.invocations += 1
            try:
                return self._invoke(request_id, payload, invoked_arn, client_context, cold)
            finally:
                self.last_used = time.monotonic()

    def _invoke(
        self,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        client_context: str | None,
        cold: bool,
    ) -> RunResult:
        fn, box = self.function, self._mailbox
        delivery = Delivery(
            request_id=request_id,
            payload=payload,
            timeout_s=float(fn.timeout_s),
            invoked_arn=invoked_arn,
            trace_id=f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            client_context=client_context,
        )
        posted_at = time.monotonic()
        box.post(delivery)
        verdict: tuple[str, str | None, bytes] | None = None  # (kind, error type, payload)
        with box.cond:
            while verdict is None and not delivery.done:
                now = time.monotonic()
                if box.init_failure is not None:
                    failure = box.init_failure
                    verdict = ("init", failure.error_type, failure.body)
                elif box.exit_code is not None:
                    verdict = ("exit", "Runtime.ExitError", b"")
                elif delivery.delivered_at is None:
                    # Not taken yet: still initialising (init limit, then the timeout), or
                    # a warm runtime about to ask for it (the timeout from now on).
                    start = box.spawned_at + box.init_limit_s if cold else posted_at
                    limit = start + fn.timeout_s
                    if now >= limit:
                        verdict = ("timeout", "Sandbox.Timedout", b"")
                    else:
                        box.cond.wait(min(limit - now, _POLL_S))
                elif now >= delivery.deadline_at:
                    verdict = ("timeout", "Sandbox.Timedout", b"")
                else:
                    box.cond.wait(min(delivery.deadline_at - now, _POLL_S))
                    if not delivery.done and self._over_memory():
                        verdict = ("oom", "Runtime.OutOfMemory", b"")
        return self._result(delivery, verdict, cold, posted_at)

    def _over_memory(self) -> bool:
        if self._proc is None:
            return False
        _, current = _peak_memory_mb(self._proc.pid)
        return current > self.function.memory_mb

    def _result(
        self,
        delivery: Delivery,
        verdict: tuple[str, str | None, bytes] | None,
        cold: bool,
        posted_at: float,
    ) -> RunResult:
        box, fn, rid = self._mailbox, self.function, delivery.request_id
        peak, _ = _peak_memory_mb(self._proc.pid) if self._proc else (0, 0)
        ready_at = box.ready_at
        init_ms = (ready_at - box.spawned_at) * 1000 if cold and ready_at is not None else None
        started = delivery.delivered_at or posted_at
        ended = time.monotonic()
        status: str | None = None
        init_failed = False
        if verdict is None:  # the runtime answered
            payload, error_type = delivery.response or b"", delivery.error_type
            ended = delivery.answered_at or ended
        else:
            kind, error_type, payload = verdict
            self.kill()
            if kind in ("init", "exit") and delivery.delivered_at is None:
                init_failed, init_ms = True, None
            if kind == "init":
                status = "error"
            elif kind == "timeout":
                status = "timeout"
                payload = _error_doc(
                    "Sandbox.Timedout",
                    f"RequestId: {rid} Error: Task timed out after {fn.timeout_s:.2f} seconds",
                )
            else:
                status = "error"
                how = "signal: killed" if kind == "oom" else self._exit_text()
                payload = _error_doc(
                    error_type or "Runtime.ExitError",
                    f"RequestId: {rid} Error: Runtime exited with error: {how}",
                )
        lines = self._collect()
        duration = (ended - started) * 1000
        start_ms = delivery.delivered_ms or now_ms() - int((time.monotonic() - started) * 1000)
        return RunResult(
            request_id=rid,
            payload=payload,
            error_type=error_type,
            platform_status=status,
            start_ms=start_ms,
            end_ms=start_ms + int(duration),
            duration_ms=duration,
            init_duration_ms=init_ms,
            init_failed=init_failed,
            max_memory_used_mb=peak,
            lines=lines,
        )

    def _exit_text(self) -> str:
        code = self._mailbox.exit_code
        if code is None:
            return "exit status unknown"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    def _collect(self) -> list[LogLine]:
        if self._capture is None:
            return []
        self._capture.sync()
        return self._capture.take()

    def kill(self) -> None:
        """End the process (and anything it started) now, as Lambda ends an environment."""
        self.dead = True
        self._mailbox.close()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def stop(self) -> None:
        """Retire: kill the process, stop the Runtime API, remove the private tmp dir."""
        self.kill()
        self._api.stop()
        if self._capture is not None:
            self._capture.sync(timeout=0.5)
            self._capture.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
