"""Lambda's Invoke, as the front serves it: resolve the version, find a warm execution
environment for it or start one (cold start), run the event, write the logs, answer.

- RequestResponse answers with the handler's response, or its error document with
  `X-Amz-Function-Error: Unhandled`; `LogType: Tail` adds the last 4 KB of the
  invocation's log as `X-Amz-Log-Result`.
- Event answers 202 at once and runs in the background, retried on error as the
  function's event invoke config says (MaximumRetryAttempts, default 2; the delays
  are seconds here, minutes on AWS) and dropped past MaximumEventAgeInSeconds.
- DryRun answers 204 once the function and qualifier resolve.

Concurrency: an environment runs one event at a time; a function with reserved
concurrency N runs at most N at once (a synchronous call beyond that is throttled
with 429, an asynchronous one waits), an unreserved one at most `max_environments`
(beyond that, callers wait: this machine's limit, not Lambda's). Idle environments
are retired after `idle_seconds`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localcloud import code as code_mod
from localcloud.environment import ExecutionEnvironment, RunResult
from localcloud.functions import FunctionVersion, resolve
from localcloud.invoke_api import HttpAnswer, InvokeRequest, LambdaApiError, service_error
from localcloud.lambda_logs import (
    Formatter,
    LogLine,
    LogWriter,
    Metrics,
    iso,
    stream_name,
    tail,
)
from localcloud.registry import CodeRegistry
from localcloud.runtimes import RuntimeSetupError, ensure_runtime
from localcloud.spawner import Spawner

DEFAULT_RETRIES = 2  # Lambda's default MaximumRetryAttempts for asynchronous events
DEFAULT_MAX_AGE_S = 6 * 3600
# Unpacked code (code.unpacked: <sha256>/tree/). Not "code": a checkout from before the
# seal would take one of these entries for the tree itself and run no code.
CODE_CACHE = "code-trees"


@dataclass(frozen=True)
class RunnerSettings:
    cloud_url: str  # what functions get as AWS_ENDPOINT_URL: the front
    cache_dir: Path  # runtimes and unpacked code (shared, content-addressed)
    idle_seconds: float = 300.0
    max_environments: int = 4  # per unreserved function
    init_limit_s: float = 10.0
    retry_delays_s: tuple[float, ...] = (1.0, 2.0)
    log: Callable[[str], None] = lambda _message: None


@dataclass
class _Slot:
    env: ExecutionEnvironment
    busy: bool = False


@dataclass(frozen=True)
class Completed:
    function: FunctionVersion
    result: RunResult
    lines: list[LogLine]  # everything written to the log stream for this invocation


def _message(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return payload.decode("utf-8", "replace")


class FunctionRunner:
    def __init__(
        self, settings: RunnerSettings, *, registry: CodeRegistry, clients: Callable[[str], Any]
    ) -> None:
        self.settings = settings
        self._registry = registry
        self._lambda = clients("lambda")
        self._s3 = clients("s3")
        self._logs = LogWriter(clients("logs"))
        self._spawner = Spawner()
        self._rng = random.Random()  # noqa: S311 - alias routing weights, not secrets
        self._lock = threading.Condition()
        self._pool: dict[str, list[_Slot]] = {}
        self._running: dict[str, int] = {}  # in-flight invocations per function name
        self._tmp_root = Path(tempfile.mkdtemp(prefix="localcloud-envs-"))
        self._async = ThreadPoolExecutor(max_workers=8, thread_name_prefix="localcloud-event")
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="localcloud-reaper", daemon=True)
        self._reaper.start()

    # --- the API ------------------------------------------------------------------

    def invoke(self, req: InvokeRequest) -> HttpAnswer:
        request_id = str(uuid.uuid4())
        try:
            fn = resolve(self._lambda, self._registry, req.function, req.qualifier, self._rng)
            if req.invocation_type == "DryRun":
                return HttpAnswer(204, headers={"x-amzn-RequestId": request_id})
            if req.invocation_type == "Event":
                self._async.submit(self._run_event, fn, req, request_id, time.monotonic())
                return HttpAnswer(202, headers={"x-amzn-RequestId": request_id})
            done = self._run(fn, req, request_id, wait=fn.reserved_concurrency is None)
        except LambdaApiError as exc:
            return exc.answer(request_id)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": fn.version,
            "x-amzn-RequestId": request_id,
        }
        if done.result.error_type is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if req.tail_logs:
            headers["X-Amz-Log-Result"] = base64.b64encode(tail(done.lines).encode()).decode()
        return HttpAnswer(200, done.result.payload, headers)

    def environments(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "function": slot.env.function.name,
                    "version": slot.env.function.version,
                    "pid": slot.env.pid,
                    "busy": slot.busy,
                    "invocations": slot.env.invocations,
                    "idle_s": round(time.monotonic() - slot.env.last_used, 1),
                }
                for slots in self._pool.values()
                for slot in slots
            ]

    def close(self) -> None:
        self._closed.set()
        self._async.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            slots = [slot for slots in self._pool.values() for slot in slots]
            self._pool.clear()
            self._lock.notify_all()
        for slot in slots:
            slot.env.stop()
        self._spawner.close()
        shutil.rmtree(self._tmp_root, ignore_errors=True)

    # --- running one event ----------------------------------------------------------

    def _run_event(
        self, fn: FunctionVersion, req: InvokeRequest, request_id: str, queued: float
    ) -> None:
        retries, max_age = self._async_config(fn, req.qualifier)
        for attempt in range(retries + 1):
            if self._closed.is_set():
                self.settings.log(f"{fn.name} event {request_id} dropped: the cloud is stopping")
                return
            if time.monotonic() - queued > max_age:
                self.settings.log(
                    f"{fn.name} event {request_id} dropped: older than {max_age:g} s "
                    "(MaximumEventAgeInSeconds)"
                )
                return
            try:
                done = self._run(fn, req, request_id, wait=True)
            except LambdaApiError as exc:
                self.settings.log(f"{fn.name} event {request_id}: {exc.code}: {exc.message}")
                return
            except Exception:  # never lose an event's failure silently
                self.settings.log(f"{fn.name} event {request_id}: {traceback.format_exc()}")
                return
            if done.result.error_type is None:
                return
            if attempt < retries:
                delays = self.settings.retry_delays_s
                self._closed.wait(delays[min(attempt, len(delays) - 1)] if delays else 0)
        self.settings.log(
            f"{fn.name}:{fn.version} event {request_id} failed after {retries + 1} attempts"
        )

    def _async_config(self, fn: FunctionVersion, qualifier: str | None) -> tuple[int, float]:
        params = {"FunctionName": fn.name}
        if qualifier:
            params["Qualifier"] = qualifier
        try:
            config = self._lambda.get_function_event_invoke_config(**params)
        except Exception:  # none configured (or moto cannot say): Lambda's defaults
            return DEFAULT_RETRIES, DEFAULT_MAX_AGE_S
        return (
            int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
            float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)),
        )

    def _run(
        self, fn: FunctionVersion, req: InvokeRequest, request_id: str, *, wait: bool
    ) -> Completed:
        self._acquire(fn, wait=wait)
        try:
            slot, cold = self._environment(fn)
            try:
                result = slot.env.invoke(
                    request_id=request_id,
                    payload=req.payload,
                    invoked_arn=f"{fn.arn}:{req.qualifier}" if req.qualifier else fn.arn,
                    client_context=req.client_context,
                )
            finally:
                self._release_env(fn, slot)
            if result.error_type is not None:
                self.settings.log(
                    f"{fn.name}:{fn.version} {request_id}: {result.error_type}: "
                    f"{_message(result.payload)[:300]}"
                )
            lines = self._platform_lines(fn, slot.env, result, cold)
            try:
                self._logs.write(fn.log_group, self._stream(slot.env), lines)
            except Exception as exc:  # the answer still counts; say why the logs are missing
                self.settings.log(f"{fn.name}: could not write logs to {fn.log_group}: {exc}")
            return Completed(fn, result, lines)
        finally:
            self._release(fn)

    # --- concurrency --------------------------------------------------------------

    def _acquire(self, fn: FunctionVersion, *, wait: bool) -> None:
        limit = fn.reserved_concurrency
        with self._lock:
            while True:
                cap = self.settings.max_environments if limit is None else limit
                if self._running.get(fn.name, 0) < cap:
                    self._running[fn.name] = self._running.get(fn.name, 0) + 1
                    return
                if not wait or cap == 0:
                    raise LambdaApiError(
                        429,
                        "TooManyRequestsException",
                        "Rate Exceeded.",
                        Reason="ReservedFunctionConcurrentInvocationLimitExceeded"
                        if limit
                        else "ReservedFunctionInvocationRateLimitExceeded",
                    )
                if self._closed.is_set():
                    raise service_error("the local cloud is shutting down")
                self._lock.wait(0.5)

    def _release(self, fn: FunctionVersion) -> None:
        with self._lock:
            self._running[fn.name] = max(0, self._running.get(fn.name, 0) - 1)
            self._lock.notify_all()

    # --- environments -------------------------------------------------------------

    def _environment(self, fn: FunctionVersion) -> tuple[_Slot, bool]:
        key = fn.environment_key()
        with self._lock:
            for slot in self._pool.get(key, []):
                if not slot.busy and slot.env.usable():
                    slot.busy = True
                    return slot, False
        env = self._new_environment(fn)  # slow (fetch, unpack, maybe install): unlocked
        slot = _Slot(env, busy=True)
        with self._lock:
            self._pool.setdefault(key, []).append(slot)
        return slot, True

    def _new_environment(self, fn: FunctionVersion) -> ExecutionEnvironment:
        cache = self.settings.cache_dir
        what = f"function {fn.name}:{fn.version}"
        try:
            runtime = ensure_runtime(fn.runtime, cache)
            data = code_mod.fetch_checked(
                self._registry.code_sources(fn.code_sha256), fn.code_sha256, self._s3, what
            )
            sha256 = base64.b64decode(fn.code_sha256).hex()
            code_dir, _ = code_mod.unpacked(data, sha256, cache / CODE_CACHE)
            layer_dirs = [self._layer(arn, cache) for arn in fn.layer_arns]
        except (code_mod.CodeError, RuntimeSetupError) as exc:
            raise service_error(str(exc)) from None
        env = ExecutionEnvironment(
            function=fn,
            code_dir=code_dir,
            layer_dirs=layer_dirs,
            runtime=runtime,
            cloud_url=self.settings.cloud_url,
            spawner=self._spawner,
            tmp_root=self._tmp_root,
            init_limit_s=self.settings.init_limit_s,
        )
        env.start(self._stream(env))
        return env

    def _layer(self, arn: str, cache: Path) -> Path:
        found = self._registry.layer(arn)
        sources = [found.source] if found else []
        data = code_mod.fetch_checked(
            sources, found.sha256_b64 if found else None, self._s3, f"layer {arn}"
        )
        return code_mod.unpacked(data, hashlib.sha256(data).hexdigest(), cache / CODE_CACHE)[0]

    def _release_env(self, fn: FunctionVersion, slot: _Slot) -> None:
        with self._lock:
            slot.busy = False
            if slot.env.dead:
                slots = self._pool.get(fn.environment_key(), [])
                if slot in slots:
                    slots.remove(slot)
                retire = True
            else:
                retire = False
            self._lock.notify_all()
        if retire:
            slot.env.stop()

    def _reap(self) -> None:
        idle_limit = self.settings.idle_seconds
        interval = max(0.2, min(5.0, idle_limit / 4))
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._lock:
                stale = [
                    slot
                    for slots in self._pool.values()
                    for slot in slots
                    if not slot.busy
                    and (now - slot.env.last_used > idle_limit or not slot.env.usable())
                ]
                for slots in self._pool.values():
                    slots[:] = [slot for slot in slots if slot not in stale]
            for slot in stale:
                why = "exited" if not slot.env.usable() else f"retired after {idle_limit:g} s idle"
                fn = slot.env.function
                env_id = slot.env.env_id[:8]
                self.settings.log(f"{fn.name}:{fn.version}: environment {env_id} {why}")
                slot.env.stop()

    # --- logs ----------------------------------------------------------------------

    @staticmethod
    def _stream(env: ExecutionEnvironment) -> str:
        return stream_name(env.created_ms, env.function.version, env.env_id)

    @staticmethod
    def _platform_lines(
        fn: FunctionVersion, env: ExecutionEnvironment, result: RunResult, cold: bool
    ) -> list[LogLine]:
        fmt = Formatter(fn.logging, fn.runtime, fn.region)
        rid, start, end = result.request_id, result.start_ms, result.end_ms
        # A line the reader stamped after the answer arrived was written before it.
        own = [LogLine(min(line.timestamp_ms, end), line.message)
               for line in result.lines if fmt.keep(line)]  # fmt: skip
        lines: list[LogLine] = fmt.init_start(env.created_ms) if cold else []
        if result.init_failed:
            lines += own
            own = []
            init_ms = float(max(0, start - env.created_ms))
            lines += fmt.init_report(start, init_ms, result.error_type or "Runtime.Unknown")
        else:
            lines += [line for line in own if line.timestamp_ms < start]  # the init's lines
            own = [line for line in own if line.timestamp_ms >= start]
        lines += fmt.start(start, rid, fn.version)
        lines += own
        if result.platform_status == "timeout":
            lines.append(
                LogLine(end, f"{iso(end)} {rid} Task timed out after {fn.timeout_s:.2f} seconds")
            )
        elif result.platform_status == "error" and not result.init_failed:
            lines.append(LogLine(end, f"{_message(result.payload)}\n{result.error_type}"))
        lines += fmt.end(end, rid)
        metrics = Metrics(
            duration_ms=result.duration_ms,
            memory_mb=fn.memory_mb,
            max_memory_used_mb=result.max_memory_used_mb,
            init_duration_ms=result.init_duration_ms if cold else None,
            status=result.platform_status,
            error_type=result.error_type if result.platform_status == "error" else None,
        )
        return lines + fmt.report(end, rid, metrics)
