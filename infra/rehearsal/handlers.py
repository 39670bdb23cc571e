"""The engine's table: every resource type and invoke the rehearsal can create, from
the handler modules listed here. A new handler module exposes `RESOURCES` (and, if
it answers invokes, `INVOKES`) and is added to MODULES; nothing registers itself."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from infra.rehearsal import (
    resources_ec2,
    resources_ecs,
    resources_lambda,
    resources_other,
    resources_s3,
)
from infra.rehearsal.clients import Handler, Invoke

MODULES: tuple[ModuleType, ...] = (
    resources_s3,
    resources_lambda,
    resources_other,
    resources_ec2,
    resources_ecs,
)


def table(modules: Iterable[ModuleType], attr: str) -> dict[str, Any]:
    """The modules' `attr` dicts in one; a token in two of them is an error, since
    which handler won would depend on the order."""
    merged: dict[str, Any] = {}
    for module in modules:
        entries = getattr(module, attr, {})
        if twice := sorted(merged.keys() & entries.keys()):
            raise RuntimeError(f"{', '.join(twice)}: a second handler in {module.__name__}")
        merged.update(entries)
    return merged


RESOURCES: dict[str, Handler] = table(MODULES, "RESOURCES")
INVOKES: dict[str, Invoke] = table(MODULES, "INVOKES")
