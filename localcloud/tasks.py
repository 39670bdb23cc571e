"""Long-running tasks (the strategy service), owned by the local cloud's daemon, as ECS
runs a service's task.

The mechanism is a file per task in `<state dir>/tasks/<name>.json` (a TaskSpec: the
command, its environment and working directory, the task definition and its log group),
written by `submit` and removed by `withdraw`. The daemon's Supervisor reads that
directory every half second:

  a spec with no task       the task is started (a new task id)
  a spec that changed       the old task gets SIGTERM and is waited for (SIGKILL after
                            STOP_SECONDS, as ECS's stopTimeout), then the new one starts:
                            never two at once, so the service stays the ledger's one writer
  a spec removed            the task is stopped the same way
  a task that exited        started again after RESTART_SECONDS, as the ECS scheduler does

A task's stdout and stderr (one pipe) go, line by line, to `<state dir>/tasks/<name>.log`
and to its log group in the emulator, stream `<prefix>/<container>/<task id>` as the
awslogs driver names it. The daemon stops every task when it stops; the task carries a
parent-death signal, so even a SIGKILL of the daemon leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localcloud.emulator import dies_with_us
from localcloud.state import write_json

TASKS_DIR = "tasks"
POLL_SECONDS = 0.5
STOP_SECONDS = 30.0  # the task definition's stopTimeout (the service leaves within 25 s)
RESTART_SECONDS = 10.0
MAX_BATCH = 500  # lines per PutLogEvents


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the ECS service's name: one task per name
    task_definition: str  # its ARN (family:revision)
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log_group: str
    log_stream_prefix: str  # "<awslogs-stream-prefix>/<container name>"

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def tasks_dir(state_dir: Path) -> Path:
    return state_dir / TASKS_DIR


def submit(state_dir: Path, spec: TaskSpec) -> str:
    """Ask the daemon in `state_dir` to run `spec` (replacing the task of that name if it
    differs); returns the spec's digest, which the status reports once it runs."""
    write_json(tasks_dir(state_dir) / f"{spec.name}.json", asdict(spec), indent=1)
    return spec.digest


def withdraw(state_dir: Path, name: str) -> None:
    """Ask the daemon to stop the task `name` (and not start it again)."""
    (tasks_dir(state_dir) / f"{name}.json").unlink(missing_ok=True)


def read_specs(state_dir: Path, log: Callable[[str], None]) -> dict[str, TaskSpec]:
    specs = {}
    for path in sorted(tasks_dir(state_dir).glob("*.json")):
        try:
            spec = TaskSpec(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            log(f"task spec {path}: unreadable ({exc}); ignored")
            continue
        specs[spec.name] = spec
    return specs


@dataclass
class _Running:
    spec: TaskSpec
    proc: subprocess.Popen[bytes]
    task_id: str
    since: float
    log_file: Path
    lines: list[str] = field(default_factory=list)  # not yet sent to the log group
    lock: threading.Lock = field(default_factory=threading.Lock)
    pump: threading.Thread | None = None

    @property
    def stream(self) -> str:
        return f"{self.spec.log_stream_prefix}/{self.task_id}"


class Supervisor:
    """Runs the tasks the state dir's specs ask for (see the module docstring). Start it
    from a thread that lives as long as the daemon: the tasks' parent-death signal
    follows the thread that started them."""

    def __init__(self, state_dir: Path, logs: Any, log: Callable[[str], None]) -> None:
        self.state_dir = state_dir
        self.logs = logs  # a CloudWatch Logs client (moto_server's)
        self.log = log
        self._tasks: dict[str, _Running] = {}
        self._exited: dict[str, float] = {}  # name -> when its task exited on its own
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="localcloud-tasks", daemon=True)
        # A new cloud is empty: specs left by an earlier one name its endpoint, not ours.
        for old in tasks_dir(state_dir).glob("*.json"):
            old.unlink(missing_ok=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=STOP_SECONDS + 10)

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "name": name,
                    "pid": t.proc.pid,
                    "task_id": t.task_id,
                    "task_definition": t.spec.task_definition,
                    "spec": t.spec.digest,
                    "since": t.since,
                    "log_group": t.spec.log_group,
                    "log_stream": t.stream,
                    "log_file": str(t.log_file),
                }
                for name, t in sorted(self._tasks.items())
            ]

    # --- the loop (one thread: it starts every task) -----------------------------------

    def _loop(self) -> None:
        try:
            while not self._stop.wait(POLL_SECONDS):
                self._reconcile(read_specs(self.state_dir, self.log))
                for task in list(self._tasks.values()):
                    self._flush(task)
        finally:
            for name in list(self._tasks):
                self._stop_task(name, "the local cloud stops")

    def _reconcile(self, specs: dict[str, TaskSpec]) -> None:
        for name, task in list(self._tasks.items()):
            want = specs.get(name)
            if want is None:
                self._stop_task(name, "its spec was withdrawn")
            elif want.digest != task.spec.digest:
                self._stop_task(name, f"replaced by {want.task_definition}")
            elif task.proc.poll() is not None:
                self.log(f"task {name} {task.task_id} exited {task.proc.returncode}")
                self._forget(name)
                self._exited[name] = time.monotonic()
        for name, spec in specs.items():
            if name in self._tasks:
                continue
            exited = self._exited.get(name)
            if exited is not None and time.monotonic() - exited < RESTART_SECONDS:
                continue
            self._exited.pop(name, None)
            try:
                self._start_task(spec)
            except OSError as exc:
                self.log(f"task {name}: cannot start {spec.argv[0]}: {exc}")
                self._exited[name] = time.monotonic()

    def _start_task(self, spec: TaskSpec) -> None:
        task_id = uuid.uuid4().hex
        log_file = tasks_dir(self.state_dir) / f"{spec.name}.log"
        proc = subprocess.Popen(
            dies_with_us(list(spec.argv)),
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a SIGKILL takes its children too
        )
        task = _Running(spec, proc, task_id, time.time(), log_file)
        self._create_stream(task)
        task.pump = threading.Thread(
            target=self._pump, args=(task,), name=f"localcloud-task-{spec.name}", daemon=True
        )
        task.pump.start()
        with self._lock:
            self._tasks[spec.name] = task
        self.log(
            f"task {spec.name} {task_id} started (pid {proc.pid}, {spec.task_definition}); "
            f"logs {spec.log_group} {task.stream}"
        )

    def _stop_task(self, name: str, why: str) -> None:
        task = self._tasks[name]
        self.log(f"task {name} {task.task_id}: SIGTERM ({why})")
        with contextlib.suppress(ProcessLookupError):
            task.proc.send_signal(signal.SIGTERM)
        try:
            task.proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.log(f"task {name} {task.task_id}: still running after {STOP_SECONDS:g} s: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(task.proc.pid, signal.SIGKILL)
            task.proc.wait()
        self.log(f"task {name} {task.task_id} stopped (exit {task.proc.returncode})")
        self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            task = self._tasks.pop(name)
        if task.pump is not None:
            task.pump.join(timeout=5)  # the pipe closed with the process
        self._flush(task)

    # --- logs ---------------------------------------------------------------------------

    def _pump(self, task: _Running) -> None:
        pipe = task.proc.stdout
        if pipe is None:
            return
        with task.log_file.open("ab") as out, pipe:
            for raw in pipe:
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line:
                    with task.lock:
                        task.lines.append(line)

    def _create_stream(self, task: _Running) -> None:
        group, stream = task.spec.log_group, task.stream
        try:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except self.logs.exceptions.ResourceNotFoundException:
            # The stack makes the group; if it went, the awslogs driver's create-group.
            self.logs.create_log_group(logGroupName=group)
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)

    def _flush(self, task: _Running) -> None:
        with task.lock:
            lines, task.lines = task.lines, []
        now = int(time.time() * 1000)
        for start in range(0, len(lines), MAX_BATCH):
            batch = lines[start : start + MAX_BATCH]
            try:
                self.logs.put_log_events(
                    logGroupName=task.spec.log_group,
                    logStreamName=task.stream,
                    logEvents=[{"timestamp": now, "message": line} for line in batch],
                )
            except Exception as exc:  # the file still has them; the daemon must go on
                self.log(f"task {task.spec.name}: {len(batch)} log lines not sent: {exc}")
