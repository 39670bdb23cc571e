"""Running the real Pulumi program (`__main__.py`) for one stack, without the CLI.

This does what `pulumi up` does on the language side: read the project's and the
stack's YAML config, hand it to the program, run the program to completion (every
resource registered, every Output resolved) and collect the stack outputs. The
engine behind it is a Mocks implementation, so "registering" a resource means
whatever the mocks do: here, creating it in the emulator.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.rehearsal.errors import RehearsalError


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
            values[qualified] = _config_string(value)
            if secret:
                keys.add(qualified)
        return StackConfig(self.project, self.stack, values, frozenset(keys), self.encrypted_keys)


def _config_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    # The CLI passes structured and non-string values as JSON text.
    return json.dumps(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RehearsalError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RehearsalError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RehearsalError(f"{path}: expected a YAML mapping at the top level")
    return data


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """Pulumi.yaml's declared defaults, overlaid with Pulumi.<stack>.yaml's values."""
    project_file = project_dir / "Pulumi.yaml"
    project_doc = _read_yaml(project_file)
    project = project_doc.get("name")
    if not isinstance(project, str) or not project:
        raise RehearsalError(f"{project_file}: no project name")
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml")
        )
        raise RehearsalError(
            f"no stack {stack!r}: {stack_file.name} does not exist "
            f"(stacks here: {', '.join(known) or 'none'})"
        )

    def qualify(key: str) -> str:
        return key if ":" in key else f"{project}:{key}"

    values: dict[str, str] = {}
    for key, decl in (project_doc.get("config") or {}).items():
        # A declaration is {type, description, default} or, for provider keys, a bare value.
        if isinstance(decl, dict) and ("default" in decl or "value" in decl):
            values[qualify(key)] = _config_string(decl.get("value", decl.get("default")))
        elif decl is not None and not isinstance(decl, dict):
            values[qualify(key)] = _config_string(decl)
    encrypted: list[str] = []
    for key, value in (_read_yaml(stack_file).get("config") or {}).items():
        if isinstance(value, dict) and "secure" in value:
            encrypted.append(qualify(key))
            continue
        values[qualify(key)] = _config_string(value)
    return StackConfig(project, stack, values, encrypted_keys=tuple(encrypted))


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
    return result
