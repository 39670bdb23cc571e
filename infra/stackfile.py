"""A stack's config read from its YAML files, the way the Pulumi CLI hands it to a program.

Used wherever the config is needed without the CLI: `python -m infra.deployer_policy`,
the rehearsal (`infra.rehearsal.program`, `infra.rehearsal.stackinfo`), the benchmarks
and the tests' mocks harness. One reader, so none of them can disagree with another
(or with `pulumi up`) about what a stack's config is.

What the CLI does, and so this does:
- `Pulumi.yaml`'s `config:` block supplies defaults: a declared key's `default` (or
  `value`), or a bare value for a provider key such as `aws:region`;
- `Pulumi.<stack>.yaml`'s `config:` values override them;
- a key without a namespace belongs to the project (`memorySize` is
  `cloud-trading-bot:memorySize`);
- every value reaches the program as a string: booleans as `true`/`false`, numbers
  as digits, lists and maps as JSON;
- a `{secure: ...}` value is encrypted with the stack's secrets provider. Only the CLI
  can decrypt it, so it is recorded as present (`secure_keys`) and not passed on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_FILE = "Pulumi.yaml"


class StackFileError(Exception):
    """A stack's YAML cannot be read; the message names the file and what to fix."""


@dataclass(frozen=True)
class StackFile:
    project: str
    stack: str
    # Fully qualified keys (`project:key`, `aws:region`) -> the string the CLI passes.
    values: Mapping[str, str] = field(default_factory=dict)
    # Qualified keys whose value in the stack file is encrypted (`{secure: ...}`).
    secure_keys: tuple[str, ...] = ()
    path: Path | None = None

    def qualify(self, key: str) -> str:
        return key if ":" in key else f"{self.project}:{key}"

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(self.qualify(key), default)

    def project_values(self) -> dict[str, str]:
        """The project namespace's values by short name (`memorySize`), secure ones left out."""
        prefix = f"{self.project}:"
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}

    def project_secure_keys(self) -> set[str]:
        prefix = f"{self.project}:"
        return {k[len(prefix) :] for k in self.secure_keys if k.startswith(prefix)}


def config_string(value: Any) -> str:
    """A YAML value as the CLI passes it to a program."""
    if isinstance(value, str):
        return value
    # true/false, digits, and JSON for lists and maps: what json.dumps writes.
    return json.dumps(value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _read_mapping(path: Path) -> dict[str, Any]:
    import yaml  # a dependency of the pulumi SDK, so always installed with the program

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StackFileError(f"{path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StackFileError(f"{path}: expected a YAML mapping at the top level")
    return data


def _config_block(path: Path, doc: Mapping[str, Any]) -> dict[str, Any]:
    block = doc.get("config") or {}
    if not isinstance(block, dict):
        raise StackFileError(f"{path}: `config:` must be a mapping of key: value")
    return block


def known_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def read_stack_file(project_dir: Path, stack: str) -> StackFile:
    """Pulumi.yaml's declared defaults overlaid with Pulumi.<stack>.yaml's values."""
    project_path = project_dir / PROJECT_FILE
    project_doc = _read_mapping(project_path)
    project = project_doc.get("name")
    if not isinstance(project, str) or not project:
        raise StackFileError(f"{project_path}: no project `name:`")
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_path.is_file():
        raise StackFileError(
            f"no stack {stack!r}: no such stack file {stack_path} "
            f"(stacks here: {', '.join(known_stacks(project_dir)) or 'none'})"
        )

    def qualify(key: Any) -> str:
        key = str(key)
        return key if ":" in key else f"{project}:{key}"

    values: dict[str, str] = {}
    for key, decl in _config_block(project_path, project_doc).items():
        if isinstance(decl, dict):
            # {type, description, default} declares a key; {value} sets a provider key.
            if "value" in decl or "default" in decl:
                values[qualify(key)] = config_string(decl.get("value", decl.get("default")))
        elif decl is not None:
            values[qualify(key)] = config_string(decl)

    secure: list[str] = []
    for key, value in _config_block(stack_path, _read_mapping(stack_path)).items():
        qualified = qualify(key)
        if _is_secure(value):
            secure.append(qualified)
            values.pop(qualified, None)
            continue
        values[qualified] = config_string(value)
    return StackFile(project, stack, values, tuple(secure), stack_path)
