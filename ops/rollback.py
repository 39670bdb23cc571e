"""Roll a function's alias back to an earlier published version.

Rollback moves the alias (default `live`) to an earlier *published* version:
published versions are immutable snapshots of code and configuration, so moving
the alias is instant and needs no rebuild or upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambda_pkg.errors import UserError
from ops.functions import DEFAULT_ALIAS, alias_version, published_versions

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient


@dataclass(frozen=True)
class Rollback:
    function: str
    alias: str
    from_version: int
    to_version: int
    code_sha256: str


def check_rollback_args(*, to: int | None, steps: int) -> None:
    """What can be refused without asking AWS; the CLI calls it before making a client."""
    if to is not None:
        if to < 1:
            raise UserError(f"--to {to}: not a published version (versions start at 1)")
    elif steps < 1:
        raise UserError(f"--steps {steps}: must be 1 or more")


def choose_target(versions: list[int], current: int, *, to: int | None, steps: int) -> int:
    """The version to move to: --to VERSION exactly, or --steps back from the current."""
    check_rollback_args(to=to, steps=steps)
    if to is not None:
        if to not in versions:
            raise UserError(
                f"--to {to}: not a published version (published: "
                f"{', '.join(map(str, versions)) or 'none'})"
            )
        if to == current:
            raise UserError(f"--to {to}: the alias already points to version {to}")
        return to
    earlier = [v for v in versions if v < current]
    if len(earlier) < steps:
        raise UserError(
            f"no published version {steps} step(s) before version {current} "
            f"(earlier versions: {', '.join(map(str, earlier)) or 'none'}): nothing to roll back to"
        )
    return earlier[-steps]


def rollback(
    lam: LambdaClient,
    function: str,
    *,
    alias: str = DEFAULT_ALIAS,
    to: int | None = None,
    steps: int = 1,
) -> Rollback:
    current = alias_version(lam, function, alias)
    if not current.isdigit():
        raise UserError(
            f"alias {alias} points to {current}, not a published version; publish versions "
            "(the stack does on every deploy) before rolling back"
        )
    target = choose_target(published_versions(lam, function), int(current), to=to, steps=steps)
    # An empty routing config also ends any weighted (canary) routing, so all
    # traffic moves to the target at once.
    lam.update_alias(
        FunctionName=function,
        Name=alias,
        FunctionVersion=str(target),
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    config = lam.get_function_configuration(FunctionName=function, Qualifier=str(target))
    return Rollback(function, alias, int(current), target, config.get("CodeSha256", ""))
