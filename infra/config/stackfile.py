"""A stack's config read from its YAML files, the way the Pulumi CLI hands it to a program.

Used wherever the config is needed without the CLI: `python -m infra.deployer_policy`,
the rehearsal, `python -m infra.rehearsal.stackinfo`, the benchmarks and the tests'
mocks harness. One reader, so none of them can disagree with another (or with
`pulumi up`) about what a stack's config is.

What the CLI does, and so this does:
- `Pulumi.yaml`'s `config:` block supplies defaults: a declared key's `default` (or
  `value`), or a bare value for a provider key such as `aws:region`;
- `Pulumi.<stack>.yaml`'s `config:` values override them;
- a key without a namespace belongs to the project (`memorySize` is
  `cloud-trading-bot:memorySize`);
- every value reaches the program as a string. A scalar is passed as its YAML text,
  untouched: the CLI reads it into a Go string, so `yes`, `0x10`, `1e3` and
  `2024-01-01` arrive as those characters, never as a boolean, 16, 1000.0 or a date
  (PyYAML's YAML 1.1 rules would turn them into those; a value that worked here would
  then fail under the CLI, or the other way round). Lists and maps arrive as JSON,
  their items read by YAML 1.2's core rules, as the CLI's YAML library reads them;
- a `{secure: ...}` value is encrypted with the stack's secrets provider. Only the CLI
  can decrypt it, so it is recorded as present (`encrypted_keys`) and not passed on.

Refused with one line naming the file (and the line): a key set twice (PyYAML would
silently keep the last one; the CLI refuses the file), YAML aliases in a value (a
handful of them can expand to gigabytes), a file that is not UTF-8, over 1 MiB, or not
a mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from infra.config.errors import StackFileError

PROJECT_FILE = "Pulumi.yaml"
# Far above any real stack file (a few KB); a bigger one is a mistake or an attack.
MAX_FILE_BYTES = 1024 * 1024
# A number with more digits than this in a list or map is refused while reading, before
# Python's int() (which gives up at 4,300 digits with a traceback) sees it.
_MAX_NUMBER_CHARS = 100


@dataclass(frozen=True)
class StackValues:
    """A stack's config as the CLI hands it to the program."""

    project: str
    stack: str
    # Fully qualified keys (`project:key`, `aws:region`) -> the string the CLI passes.
    values: Mapping[str, str] = field(default_factory=dict)
    # Qualified keys whose value is present here and secret (`--config` given as a
    # secret by the rehearsal); handed to the engine as secret config.
    secret_keys: frozenset[str] = frozenset()
    # Qualified keys whose value in the stack file is encrypted (`{secure: ...}`):
    # set, but only the Pulumi CLI can read them.
    encrypted_keys: tuple[str, ...] = ()
    # The stack file the values came from; None once other values are laid over them.
    path: Path | None = None

    def qualify(self, key: str) -> str:
        return key if ":" in key else f"{self.project}:{key}"

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(self.qualify(key), default)

    def namespaces(self) -> set[str]:
        keys = [*self.values, *self.encrypted_keys]
        return {k.split(":", 1)[0] for k in keys}

    def project_values(self) -> dict[str, str]:
        """The project namespace's values by short name (`memorySize`), encrypted ones left out."""
        prefix = f"{self.project}:"
        return {k[len(prefix) :]: v for k, v in self.values.items() if k.startswith(prefix)}

    def project_secret_keys(self) -> set[str]:
        prefix = f"{self.project}:"
        return {k[len(prefix) :] for k in self.secret_keys if k.startswith(prefix)}

    def project_encrypted_keys(self) -> set[str]:
        prefix = f"{self.project}:"
        return {k[len(prefix) :] for k in self.encrypted_keys if k.startswith(prefix)}

    def with_values(self, extra: Mapping[str, Any], *, secret: bool = False) -> StackValues:
        """These values laid over the stack's (`--config KEY=VALUE`), as the CLI would pass them."""
        if not extra:
            return self
        values = dict(self.values)
        secrets = set(self.secret_keys)
        for key, value in extra.items():
            qualified = self.qualify(key)
            values[qualified] = config_string(value)
            if secret:
                secrets.add(qualified)
        return replace(self, values=values, secret_keys=frozenset(secrets), path=None)


def config_string(value: Any) -> str:
    """A value as the CLI passes it to a program: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    # true/false, digits, and JSON for lists and maps: what json.dumps writes.
    return json.dumps(value, default=str)


# ---- YAML, read the way the CLI's YAML library reads it


class _CliLoader(yaml.SafeLoader):
    """PyYAML with YAML 1.2's core schema instead of YAML 1.1's: only true/false are
    booleans, 010 is ten, 0x10 and 0o10 are numbers, 1e3 is a float, and there are no
    dates, sexagesimals or `yes`/`no`/`on`/`off` booleans."""


_CliLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _CliLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "not a number", node.start_mark)
    text = str(loader.construct_scalar(node))
    if len(text) > _MAX_NUMBER_CHARS:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number with {len(text)} digits", node.start_mark
        )
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text)  # decimal: 010 is ten, as in YAML 1.2


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "not a mapping", node.start_mark)
    _check_unique_keys(node)
    return loader.construct_mapping(node, deep=True)


_CliLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_CliLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _check_unique_keys(node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} is set twice (lines {seen[key]} and {line}); keep one",
                key_node.start_mark,
            )
        seen[key] = line


def _check_no_aliases(path: Path, block: yaml.MappingNode) -> None:
    # The composer hands an alias back as the very node it names, so a node met twice in
    # one config block is an alias. (A recursive one is stopped at its repeat.)
    seen: set[int] = set()
    for key_node, node in block.value:
        stack = [node]
        while stack:
            current = stack.pop()
            if id(current) in seen:
                raise StackFileError(
                    f"{path}: {key_node.value} (line {key_node.start_mark.line + 1}) uses a "
                    "YAML alias "
                    "(*name); write the value out instead"
                )
            seen.add(id(current))
            if isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)
            elif isinstance(current, yaml.MappingNode):
                for pair in current.value:
                    stack.extend(pair)


def _yaml_error(path: Path, exc: yaml.YAMLError) -> StackFileError:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return StackFileError(f"{path} is not valid YAML{where}: {problem}")


def _read_document(path: Path) -> yaml.MappingNode | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise StackFileError(
                f"{path} is larger than {MAX_FILE_BYTES // 1024} KiB; a stack file holds "
                "a few dozen keys"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise StackFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StackFileError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=_CliLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    if node is None:
        return None
    if not isinstance(node, yaml.MappingNode):
        raise StackFileError(f"{path}: expected a YAML mapping at the top level")
    return node


def _entries(path: Path, node: yaml.MappingNode, what: str) -> list[tuple[str, yaml.Node]]:
    """A mapping's (key, value node) pairs; a key that is not a plain word, or a key
    set twice, is an error naming it."""
    try:
        _check_unique_keys(node)
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: {what}: {getattr(exc, 'problem', exc)}") from None
    entries = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            line = key_node.start_mark.line + 1
            raise StackFileError(f"{path}: {what}: the key at line {line} is not a plain name")
        entries.append((str(key_node.value), value_node))
    return entries


def _top_level(path: Path, node: yaml.MappingNode | None, key: str) -> yaml.Node | None:
    if node is None:
        return None
    return dict(_entries(path, node, "top level")).get(key)


def _config_block(path: Path, node: yaml.MappingNode | None) -> list[tuple[str, yaml.Node]]:
    block = _top_level(path, node, "config")
    if block is None or (isinstance(block, yaml.ScalarNode) and block.value in ("", "~", "null")):
        return []
    if not isinstance(block, yaml.MappingNode):
        raise StackFileError(f"{path}: `config:` must be a mapping of key: value")
    entries = _entries(path, block, "config")
    _check_no_aliases(path, block)
    return entries


def _is_secure(node: yaml.Node) -> bool:
    return (
        isinstance(node, yaml.MappingNode)
        and len(node.value) == 1
        and isinstance(node.value[0][0], yaml.ScalarNode)
        and node.value[0][0].value == "secure"
    )


def _cli_string(path: Path, key: str, node: yaml.Node) -> str:
    """A config value as the CLI passes it: a scalar's text, a list or map as JSON."""
    if isinstance(node, yaml.ScalarNode):
        # A plain `key:` (or `~`, `null`) is YAML's null: the CLI passes an empty string.
        if node.style is None and node.tag == "tag:yaml.org,2002:null":
            return ""
        return str(node.value)
    try:
        value = _CliLoader("").construct_document(node)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StackFileError(f"{path}: {key}: {problem}") from None
    return config_string(value)


def known_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def read_stack_file(project_dir: Path, stack: str) -> StackValues:
    """Pulumi.yaml's declared defaults overlaid with Pulumi.<stack>.yaml's values."""
    project_path = project_dir / PROJECT_FILE
    project_doc = _read_document(project_path)
    name_node = _top_level(project_path, project_doc, "name")
    project = name_node.value if isinstance(name_node, yaml.ScalarNode) else None
    if not isinstance(project, str) or not project:
        raise StackFileError(f"{project_path}: no project `name:`")
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_path.is_file():
        raise StackFileError(
            f"no stack {stack!r}: no such stack file {stack_path} "
            f"(stacks here: {', '.join(known_stacks(project_dir)) or 'none'})"
        )

    def qualify(key: str) -> str:
        return key if ":" in key else f"{project}:{key}"

    values: dict[str, str] = {}
    for key, decl in _config_block(project_path, project_doc):
        if isinstance(decl, yaml.MappingNode) and not _is_secure(decl):
            # {type, description, default} declares a key; {value} sets a provider key.
            fields = dict(_entries(project_path, decl, f"config: {key}"))
            chosen = fields.get("value", fields.get("default"))
            if chosen is not None:
                values[qualify(key)] = _cli_string(project_path, key, chosen)
        else:
            values[qualify(key)] = _cli_string(project_path, key, decl)

    encrypted: list[str] = []
    seen: dict[str, str] = {}
    for key, node in _config_block(stack_path, _read_document(stack_path)):
        qualified = qualify(key)
        if qualified in seen:
            # `memorySize` and `cloud-trading-bot:memorySize` are the same key.
            raise StackFileError(
                f"{stack_path}: {seen[qualified]} and {key} are the same key {qualified}; keep one"
            )
        seen[qualified] = key
        if _is_secure(node):
            encrypted.append(qualified)
            values.pop(qualified, None)
            continue
        values[qualified] = _cli_string(stack_path, key, node)
    return StackValues(project, stack, values, encrypted_keys=tuple(encrypted), path=stack_path)
