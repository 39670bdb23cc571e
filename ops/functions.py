"""Lookups on a deployed function shared by rollback and status: its alias and
its published versions, with a missing function or alias named in one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lambda_pkg.errors import UserError
from ops.session import error_code

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

DEFAULT_ALIAS = "live"


def no_such_function(function: str) -> UserError:
    return UserError(
        f"--function {function}: no such Lambda function in this account/region; "
        "check the name (market_data_fetcher-<env>) and --region"
    )


def published_versions(lam: LambdaClient, function: str) -> list[int]:
    """Published version numbers, ascending ($LATEST is not a version). botocore's
    paginator follows NextMarker, and each page gets the client's retries."""
    versions: list[int] = []
    try:
        for page in lam.get_paginator("list_versions_by_function").paginate(FunctionName=function):
            versions += [
                int(v["Version"]) for v in page.get("Versions", []) if v["Version"].isdigit()
            ]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise no_such_function(function) from None
        raise
    return sorted(versions)


def alias_version(lam: LambdaClient, function: str, alias: str) -> str:
    """The version the alias points to ("3"), or what it points to if not a number."""
    try:
        return lam.get_alias(FunctionName=function, Name=alias)["FunctionVersion"]
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        # Lambda says which is missing only in the message ("Function not found: ...").
        response = getattr(exc, "response", None) or {}
        if str(response.get("Error", {}).get("Message", "")).startswith("Function not found"):
            raise no_such_function(function) from None
        raise UserError(
            f"--alias {alias}: function {function} has no such alias; "
            "the stack creates 'live', or pass --alias NAME"
        ) from None
