"""The engine's table: every resource type and invoke the rehearsal can create, from
the handler modules listed here. A new handler module exposes `RESOURCES` (and, if
it answers invokes, `INVOKES`) and is added to MODULES; nothing registers itself."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import TypeVar

from infra.rehearsal import resources_lambda, resources_other, resources_s3
from infra.rehearsal.clients import Handler, Invoke

MODULES: tuple[ModuleType, ...] = (resources_s3, resources_lambda, resources_other)

T = TypeVar("T")


def _add(table: dict[str, T], entries: Mapping[str, T], module: ModuleType) -> None:
    for token, fn in entries.items():
        # Two handlers for one type would make the winner depend on MODULES' order.
        if token in table:
            raise RuntimeError(f"{token} has a handler in two modules ({module.__name__})")
        table[token] = fn


RESOURCES: dict[str, Handler] = {}
INVOKES: dict[str, Invoke] = {}
for _module in MODULES:
    _add(RESOURCES, getattr(_module, "RESOURCES", {}), _module)
    _add(INVOKES, getattr(_module, "INVOKES", {}), _module)
