"""Running the strategy service's task from its image, without a container runtime.

moto registers the task definition and the service but runs no task, so the rehearsal
does what Fargate would, as it runs the Lambda from its zip (invoker.py):

- the image's own layers, the ones the builder added on the base (dependencies, code),
  are unpacked from the blobs the program deployed, each into a directory of its own
  under `.cache/rehearsal/layers/<layer digest>/` (unpacking the 200 MB dependency
  layer takes seconds; content-addressed, it is done once per dependency set; see
  localcloud/treecache.py);
- the image's config gives the entry point, the working directory and the environment
  (`PYTHONPATH=/opt/ctb/app:/opt/ctb/deps`); each image path is mapped to the layer
  directory that holds it, and `/tmp` (the task's writable volume) to a temp directory;
- the interpreter is the target Python (the stack's runtime, as the base image has it),
  run with `-S`: no site-packages of this machine, only what the layers hold;
- the environment is built from scratch: the image's, then the task definition's, read
  back from the emulator, then the emulator's endpoint and dummy credentials (last, so
  nothing can point the service at real AWS).

The base layer (the interpreter and its libraries) is not unpacked: the target Python
of this machine stands in for it, exactly as the local base was built from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.artifact import IMAGE_BASE_ENV, IMAGE_LAYOUT_ENV, TMP_VOLUME, ServiceImage
from infra.rehearsal.errors import RehearsalError
from localcloud import treecache
from localcloud.emulator import EMULATOR_ENV
from localcloud.tasks import TaskSpec, tasks_dir

# What the builder writes in the history of each layer it adds (lambda_pkg.image.build).
OUR_LAYERS = "lambda_pkg image: "
# Unpacked layers kept beyond the current image's: a dependency change or two.
KEEP_LAYERS = 4
REPLAY_TIMEOUT = 300
SUMMARY_TIMEOUT = 60


def image_env() -> dict[str, str]:
    """What the program needs in its environment to get the image here: the user's
    prebuilt layout or base if set, else the project's own base (no registry here)."""
    if os.environ.get(IMAGE_LAYOUT_ENV):
        return {}
    return {IMAGE_BASE_ENV: os.environ.get(IMAGE_BASE_ENV) or "local"}


def check_target_python(runtime: str) -> None:
    """The service runs on the stack's Python (its dependency layer holds that version's
    wheels), and the local base is built from it: without it, say so and how to go on.
    Raises lambda_pkg.errors.UserError (the rehearsal exits 2)."""
    from lambda_pkg.errors import UserError
    from lambda_pkg.interpreters import find_interpreter

    version = runtime.removeprefix("python")
    if find_interpreter(version) is None:
        raise UserError(
            f"no {runtime} on this machine: the rehearsal runs the strategy service with the "
            f"stack's Python (and builds its local base image from it). Install it (e.g. "
            f"pyenv install {version}, or point LAMBDA_PKG_PYTHON at one), or rehearse "
            "without the service: --config strategyEnabled=false"
        )


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored afterwards (infra.artifact reads it)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class Unpacked:
    """The image's own layers on disk and its config."""

    roots: tuple[Path, ...]  # one directory per layer, in layer order
    layers: tuple[dict[str, Any], ...]  # {"digest", "size", "role", "cached"}
    entrypoint: tuple[str, ...]
    working_dir: str
    env: dict[str, str] = field(default_factory=dict)

    def host_path(self, image_path: str) -> Path | None:
        """The layer directory that holds an absolute image path (the last layer wins,
        as in the image's union file system)."""
        rel = image_path.lstrip("/")
        for root in reversed(self.roots):
            if (root / rel).exists():
                return root / rel
        return None


def unpack(image: ServiceImage, cache: Path) -> Unpacked:
    from lambda_pkg.image import oci

    manifest = oci.parse_manifest(image.blob(image.digest).read_bytes(), image.digest)
    config = json.loads(image.blob(manifest.config.digest).read_bytes())
    # The builder appends its layers after the base's, one history entry each.
    created = [str(h.get("created_by", "")) for h in config.get("history") or []]
    ours = [c.removeprefix(OUR_LAYERS).removesuffix(" layer") for c in created
            if c.startswith(OUR_LAYERS)]  # fmt: skip
    if not ours:
        raise RehearsalError(
            f"image {image.digest} has no layer of lambda_pkg's builder: cannot tell its "
            "code from its base"
        )
    descriptors = manifest.layers[-len(ours) :]
    roots, layers = [], []
    for role, desc in zip(ours, descriptors, strict=True):
        root, cached = _unpack_layer(image.blob(desc.digest), desc.digest, cache)
        roots.append(root)
        layers.append({"role": role, "digest": desc.digest, "size": desc.size, "cached": cached})
    treecache.prune(cache, {d.digest.partition(":")[2] for d in descriptors}, extra=KEEP_LAYERS)
    settings = config.get("config") or {}
    env = dict(item.split("=", 1) for item in settings.get("Env") or [] if "=" in item)
    return Unpacked(
        roots=tuple(roots),
        layers=tuple(layers),
        entrypoint=tuple(settings.get("Entrypoint") or ()),
        working_dir=settings.get("WorkingDir") or "/",
        env=env,
    )


def _unpack_layer(blob: Path, digest: str, cache: Path) -> tuple[Path, bool]:
    def fill(tree: Path) -> None:
        with tarfile.open(blob, "r:*") as tar:
            # The data filter refuses absolute paths, links out of the tree, devices.
            tar.extractall(tree, filter="data")

    return treecache.cached_tree(cache, digest.partition(":")[2], fill)


@dataclass
class TaskRun:
    command: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str

    def tail(self, lines: int = 12) -> list[str]:
        return (self.stderr or self.stdout).splitlines()[-lines:]


class Task:
    """The service's container, as a process: the image's layers and config, the task
    definition's environment, a private /tmp."""

    def __init__(
        self,
        unpacked: Unpacked,
        *,
        python: str,
        task_env: dict[str, str],
        endpoint_url: str,
        region: str,
        work: Path,
    ) -> None:
        self.unpacked = unpacked
        self.python = python
        self.tmp = work / "task-tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.cwd = unpacked.host_path(unpacked.working_dir) or self.tmp
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for key, value in {**unpacked.env, **task_env}.items():
            env[key] = self._host_value(key, value)
        env.update(EMULATOR_ENV)
        env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
        env["AWS_ENDPOINT_URL"] = endpoint_url  # last: nothing may redirect it
        self.env = env
        if not unpacked.entrypoint or not unpacked.entrypoint[0].startswith("python"):
            raise RehearsalError(
                f"the image's entry point {list(unpacked.entrypoint)} does not start with "
                "python: the rehearsal runs it with the target interpreter"
            )

    def _host_value(self, key: str, value: str) -> str:
        if key == "PYTHONPATH":
            parts = [self.unpacked.host_path(p) for p in value.split(":") if p]
            return os.pathsep.join(str(p) for p in parts if p is not None)
        if value == TMP_VOLUME or value.startswith(TMP_VOLUME + "/"):
            return str(self.tmp) + value[len(TMP_VOLUME) :]
        return value

    def argv(self, *args: str) -> list[str]:
        # -S: no site-packages of this machine; the layers are the only library path.
        # -B: no bytecode written into the layers, cached trees the next run must find
        # unchanged (localcloud/treecache.py); a container's writes die with it, and the
        # image holds every module's .pyc already.
        return [self.python, "-S", "-B", *self.unpacked.entrypoint[1:], *args]

    def run(self, *args: str, timeout: float) -> TaskRun:
        command = self.argv(*args)
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise RehearsalError(
                f"`{' '.join(args)}` did not finish within {timeout:.0f} s"
            ) from exc
        return TaskRun(
            ["python", *command[1:]],
            done.returncode,
            time.perf_counter() - start,
            done.stdout,
            done.stderr,
        )


def container_environment(task_definition: dict[str, Any]) -> dict[str, str]:
    """The first container's environment, as the emulator holds it."""
    containers = task_definition.get("containerDefinitions") or []
    if not containers:
        raise RehearsalError("the task definition has no container")
    return {e["name"]: str(e["value"]) for e in containers[0].get("environment") or []}


def long_running(
    unpacked: Unpacked,
    task_definition: dict[str, Any],
    *,
    python: str,
    endpoint_url: str,
    region: str,
    state_dir: Path,
) -> TaskSpec:
    """The service's task as the local cloud runs it for good (`--keep`): the entry point
    without arguments (its normal loop), the same environment as the replay's, its /tmp
    under the cloud's state dir, its logs where the awslogs driver would put them."""
    family = str(task_definition["family"])
    task = Task(
        unpacked,
        python=python,
        task_env=container_environment(task_definition),
        endpoint_url=endpoint_url,
        region=region,
        work=tasks_dir(state_dir) / family,
    )
    container = task_definition["containerDefinitions"][0]
    options = (container.get("logConfiguration") or {}).get("options") or {}
    prefix = options.get("awslogs-stream-prefix") or "ecs"
    return TaskSpec(
        name=family,
        task_definition=str(task_definition["taskDefinitionArn"]),
        argv=task.argv(),
        env=task.env,
        cwd=str(task.cwd),
        log_group=options.get("awslogs-group") or f"/ecs/{family}",
        log_stream_prefix=f"{prefix}/{container['name']}",
    )
