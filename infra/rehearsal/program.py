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
import runpy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from infra.config import ConfigError, StackValues, read_stack_file
from infra.rehearsal.errors import RehearsalError
from infra.rehearsal.taskrun import environment


def load_stack_config(project_dir: Path, stack: str) -> StackValues:
    """Pulumi.yaml's declared defaults, overlaid with Pulumi.<stack>.yaml's values, as
    the strings the CLI hands a program (infra.config, the one reader of stack config)."""
    try:
        return read_stack_file(project_dir, stack)
    except ConfigError as exc:
        raise RehearsalError(str(exc)) from None


@dataclass
class ProgramResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)


@contextlib.contextmanager
def _program_environment(project_dir: Path, env: dict[str, str]) -> Iterator[None]:
    # The CLI runs a program from its project directory with the project on sys.path.
    added = str(project_dir) not in sys.path
    if added:
        sys.path.insert(0, str(project_dir))
    try:
        with contextlib.chdir(project_dir), environment(env):
            yield
    finally:
        if added:
            sys.path.remove(str(project_dir))


def run_program(
    project_dir: Path,
    config: StackValues,
    mocks: pulumi.runtime.Mocks,
    *,
    env: dict[str, str] | None = None,
) -> ProgramResult:
    """Run `<project_dir>/__main__.py` to completion under `mocks`; return the stack outputs."""
    main = project_dir / "__main__.py"
    if not main.is_file():
        raise RehearsalError(f"{main} does not exist: there is no Pulumi program to rehearse")
    # Fresh runtime state (public APIs only): a previous run's root stack, outputs or
    # config must not leak. reset_options drops the root stack; set_mocks makes a new one.
    pulumi.runtime.reset_options(project=config.project, stack=config.stack, preview=False)
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=config.stack, preview=False)
    pulumi.runtime.set_all_config(dict(config.values), sorted(config.secret_keys))
    result = ProgramResult()

    def recorder(name: str) -> Callable[[list[Any]], None]:
        def record(pair: list[Any]) -> None:
            result.outputs[name] = pair[0]
            if pair[1]:
                result.secret_outputs.add(name)

        return record

    def program() -> None:
        runpy.run_path(str(main), run_name="__main__")

    def collect() -> pulumi.Output[list[Any]]:
        root = pulumi.runtime.get_root_resource()
        recorded: list[pulumi.Output[None]] = []
        for name, value in (getattr(root, "outputs", None) or {}).items():
            out: pulumi.Output[Any] = pulumi.Output.from_input(value)
            is_secret: asyncio.Future[bool] = asyncio.ensure_future(out.is_secret())
            secret: pulumi.Output[bool] = pulumi.Output.from_input(is_secret)
            recorded.append(pulumi.Output.all(out, secret).apply(recorder(name)))
        return pulumi.Output.all(*recorded)

    # pulumi.runtime.test waits for every outstanding registration and for the Output
    # the function returns, so when the first call returns every resource has been
    # created, or the first failure is raised. The exports are read in a second call,
    # once all is resolved: no Output of ours then waits on a failed registration.
    # (pulumi ships `test` untyped.)
    run = pulumi.runtime.test(program)  # type: ignore[no-untyped-call]
    read_exports = pulumi.runtime.test(collect)  # type: ignore[no-untyped-call]
    try:
        with _program_environment(project_dir, env or {}):
            run()
            read_exports()
    finally:
        _close_event_loop()
    return result


def _close_event_loop() -> None:
    """Close the loop Pulumi ran the program on (pulumi.runtime.test runs it there).

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
