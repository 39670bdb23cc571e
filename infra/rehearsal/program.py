"""Running the real Pulumi program (`__main__.py`) for one stack, without the CLI.

This does what `pulumi up` does on the language side: read the project's and the
stack's YAML config, hand it to the program, run the program to completion (every
resource registered, every Output resolved) and collect the stack outputs. The
engine behind it is a Mocks implementation, so "registering" a resource means
whatever the mocks do: here, creating it in the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import runpy
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import config as stack_config
from infra.rehearsal.errors import RehearsalError
from infra.stackfile import StackFileError, config_string, read_stack_file


@dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    # Fully qualified keys (`project:key`, `aws:region`) -> the string form the
    # CLI hands a program (JSON for lists, maps, numbers and booleans).
    values: dict[str, str]
    secret_keys: frozenset[str] = frozenset()
    # Secure values in the stack file: encrypted, so only the Pulumi CLI can read them.
    encrypted_keys: tuple[str, ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        qualified = key if ":" in key else f"{self.project}:{key}"
        return self.values.get(qualified, default)

    def with_values(self, extra: dict[str, Any], *, secret: bool = False) -> StackConfig:
        values = dict(self.values)
        keys = set(self.secret_keys)
        for key, value in extra.items():
            qualified = key if ":" in key else f"{self.project}:{key}"
            values[qualified] = config_string(value)
            if secret:
                keys.add(qualified)
        return StackConfig(self.project, self.stack, values, frozenset(keys), self.encrypted_keys)


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Pulumi.yaml's declared defaults, overlaid with Pulumi.<stack>.yaml's values
    (infra.stackfile, the one reader of stack files)."""
    try:
        stack_file = read_stack_file(project_dir, stack)
    except StackFileError as exc:
        raise RehearsalError(str(exc)) from None
    return StackConfig(
        stack_file.project,
        stack,
        dict(stack_file.values),
        encrypted_keys=stack_file.secure_keys,
    )


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`--config KEY=VALUE` arguments (the rehearsal's, and stackinfo's for it) as a
    dict, later ones winning. A malformed one is a RehearsalError naming it."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RehearsalError(f"--config {item!r}: expected KEY=VALUE")
        overrides[key] = value
    return overrides


def validate(config: StackConfig) -> stack_config.StackConfig:
    """The program's own validation (infra.config.parse_config) of the values it will
    be handed: a bad one is a ConfigError naming the key, before anything is built
    or deployed. Only the program's namespace is checked (`aws:region` is the provider's)."""
    prefix = f"{stack_config.NAMESPACE}:"
    raw = {k[len(prefix) :]: v for k, v in config.values.items() if k.startswith(prefix)}
    secret = {k[len(prefix) :] for k in config.secret_keys if k.startswith(prefix)}
    return stack_config.parse_config(raw, stack=config.stack, secret_keys=secret)


@dataclass
class ProgramResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)


@contextlib.contextmanager
def _program_environment(project_dir: Path, env: dict[str, str]) -> Iterator[None]:
    # The CLI runs a program from its project directory with the project on sys.path.
    old_cwd = Path.cwd()
    old_env = {k: os.environ.get(k) for k in env}
    added = str(project_dir) not in sys.path
    if added:
        sys.path.insert(0, str(project_dir))
    os.environ.update(env)
    os.chdir(project_dir)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if added:
            sys.path.remove(str(project_dir))


def run_program(
    project_dir: Path,
    config: StackConfig,
    mocks: pulumi.runtime.Mocks,
    *,
    env: dict[str, str] | None = None,
) -> ProgramResult:
    """Run `<project_dir>/__main__.py` to completion under `mocks`; return the stack outputs."""
    main = project_dir / "__main__.py"
    if not main.is_file():
        raise RehearsalError(f"{main} does not exist: there is no Pulumi program to rehearse")
    # Fresh runtime state: a previous run's root stack, outputs or config must not leak.
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=config.stack, preview=False)
    pulumi.runtime.set_all_config(dict(config.values), sorted(config.secret_keys))
    try:
        with _program_environment(project_dir, env or {}):
            # run_pulumi_func awaits every outstanding registration and Output, so when it
            # returns, every resource has been created, or the first failure is raised.
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(main), run_name="__main__")))
            root = settings.get_root_resource()
            result = ProgramResult()
            for name, value in (getattr(root, "outputs", None) or {}).items():
                out = pulumi.Output.from_input(value)
                result.outputs[name] = _sync_await(out.future())
                if _sync_await(out.is_secret()):
                    result.secret_outputs.add(name)
    finally:
        _close_event_loop()
    return result


def _close_event_loop() -> None:
    """Close the loop Pulumi's _sync_await ran the program on.

    Left open, it is closed by its finaliser at interpreter exit, in whatever order
    the sockets of its self-pipe are finalised: after a failed deploy that printed
    `Exception ignored in: BaseEventLoop.__del__ ... Invalid file descriptor: -1`
    about half the time. Pending registrations (a failure stops the program midway)
    are cancelled first, and a fresh loop is installed for whatever runs next.
    """
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    if loop.is_running() or loop.is_closed():
        return
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        # Bounded: a cancelled registration must not hold up a stop (Ctrl-C, SIGTERM).
        loop.run_until_complete(asyncio.wait(pending, timeout=5))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())
