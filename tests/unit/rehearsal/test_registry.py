"""The engine's handler table (infra.rehearsal.handlers): one-way imports, one table
listing every handler module, nothing registered by import side effect."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from infra.rehearsal import handlers

PACKAGE = Path(handlers.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
HANDLER_MODULES = sorted(m for m in MODULES if m.startswith("resources_"))


def _rehearsal_imports(module: str) -> set[str]:
    """The infra.rehearsal modules `module` imports, anywhere in its source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "infra.rehearsal":
                found |= {a.name for a in node.names}
            elif node.module.startswith("infra.rehearsal."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.split(".")[2] for a in node.names if a.name.startswith("infra.rehearsal.")
            }
    return found & set(MODULES)


def test_the_modules_import_each_other_in_one_direction_only():
    # GIVEN the import graph of the rehearsal's modules
    graph = {m: _rehearsal_imports(m) for m in MODULES}
    # THEN the engine knows only the table, no handler module, and no handler module
    # knows the engine or the table
    assert graph["engine"] & set(HANDLER_MODULES) == set()
    for module in HANDLER_MODULES:
        assert {"engine", "handlers"} & graph[module] == set(), module
    # AND there is no cycle anywhere
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, " -> ".join([*visiting, module])
        if module in done:
            return
        visiting.append(module)
        for dep in graph[module]:
            visit(dep)
        visiting.pop()
        done.add(module)

    for module in MODULES:
        visit(module)


@pytest.mark.parametrize("module", ["engine", "handlers", *HANDLER_MODULES])
def test_each_module_imports_on_its_own(module):
    # In a fresh interpreter, so no earlier import can hide a circular one.
    proc = subprocess.run(
        [sys.executable, "-c", f"import infra.rehearsal.{module}"],
        cwd=PACKAGE.parents[1], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_handler_module_is_in_the_one_table():
    # A new resources_*.py must be listed in handlers.MODULES, or its types go unrehearsed.
    listed = sorted(m.__name__.rsplit(".", 1)[1] for m in handlers.MODULES)
    assert listed == HANDLER_MODULES
    # AND the table holds exactly what the listed modules declare
    for module in HANDLER_MODULES:
        mod = importlib.import_module(f"infra.rehearsal.{module}")
        assert isinstance(mod.RESOURCES, dict)
        for token, fn in mod.RESOURCES.items():
            assert handlers.RESOURCES[token] is fn
        for token, fn in getattr(mod, "INVOKES", {}).items():
            assert handlers.INVOKES[token] is fn
    total = sum(
        len(importlib.import_module(f"infra.rehearsal.{m}").RESOURCES) for m in HANDLER_MODULES
    )
    assert len(handlers.RESOURCES) == total


def test_a_type_with_two_handlers_is_refused():
    # GIVEN two modules declaring a handler for the same type
    first, second = ModuleType("first"), ModuleType("second")
    first.RESOURCES = {"aws:s3/bucket:Bucket": print}  # type: ignore[attr-defined]
    second.RESOURCES = {"aws:s3/bucket:Bucket": repr}  # type: ignore[attr-defined]
    # WHEN the table is built THEN it is refused, naming the type and the module
    with pytest.raises(RuntimeError, match=r"aws:s3/bucket:Bucket: a second handler in second"):
        handlers.table([first, second], "RESOURCES")
