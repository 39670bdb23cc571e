"""Errors the rehearsal raises. Each message says what failed and, where the user
can act, how to fix it."""

from __future__ import annotations


class RehearsalError(Exception):
    """A rehearsal step failed; the message says why."""


class UnsupportedTypeError(RehearsalError):
    """The program declared a resource type (or called an invoke) that the engine
    cannot create in the emulator. This is an error, not a skip, so a new resource
    can never silently go unrehearsed."""

    def __init__(self, kind: str, token: str, name: str | None = None) -> None:
        where = f" ({name!r})" if name else ""
        super().__init__(
            f"unsupported {kind} type {token}{where}: the rehearsal engine has no handler "
            f"for it; add one in infra/rehearsal/ (see docs/rehearsal.md)"
        )


class ResourceFailed(RehearsalError):
    """Creating one resource in the emulator failed."""

    def __init__(self, token: str, name: str, reason: str) -> None:
        super().__init__(f"{token} {name!r}: {reason}")
