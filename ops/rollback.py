"""Operate a deployed function: roll its alias back, show what it runs, invoke it.

Rollback moves the alias (default `live`) to an earlier *published* version:
published versions are immutable snapshots of code and configuration, so moving
the alias is instant and needs no rebuild or upload.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from lambda_pkg.artifact import hex_to_b64
from lambda_pkg.errors import UserError
from ops.session import error_code

DEFAULT_ALIAS = "live"
DEFAULT_PAYLOAD = {"test": True}


def _no_such_function(function: str) -> UserError:
    return UserError(
        f"--function {function}: no such Lambda function in this account/region; "
        "check the name (market_data_fetcher-<env>) and --region"
    )


def published_versions(lam: Any, function: str) -> list[int]:
    """Published version numbers, ascending ($LATEST is not a version)."""
    versions, marker = [], None
    while True:
        params: dict[str, Any] = {"FunctionName": function}
        if marker:
            params["Marker"] = marker
        try:
            page = lam.list_versions_by_function(**params)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise _no_such_function(function) from None
            raise
        versions += [int(v["Version"]) for v in page.get("Versions", []) if v["Version"].isdigit()]
        marker = page.get("NextMarker")
        if not marker:
            return sorted(versions)


def get_alias(lam: Any, function: str, alias: str) -> dict[str, Any]:
    try:
        return lam.get_alias(FunctionName=function, Name=alias)
    except Exception as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        # Lambda says which is missing only in the message ("Function not found: ...").
        message = str(exc.response.get("Error", {}).get("Message", ""))  # type: ignore[attr-defined]
        if message.startswith("Function not found"):
            raise _no_such_function(function) from None
        raise UserError(
            f"--alias {alias}: function {function} has no such alias; "
            "the stack creates 'live', or pass --alias NAME"
        ) from None


@dataclass
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
    lam: Any, function: str, *, alias: str = DEFAULT_ALIAS, to: int | None = None, steps: int = 1
) -> Rollback:
    current_alias = get_alias(lam, function, alias)
    current = current_alias["FunctionVersion"]
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


# --- status --------------------------------------------------------------------------------


@dataclass
class Status:
    function: str
    alias: str | None
    version: str
    code_sha256: str
    code_size: int
    last_modified: str
    s3_url: str | None = None
    s3_version_id: str | None = None
    s3_is_latest: bool | None = None
    manifest: str | None = None
    manifest_sha256_b64: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()} | {"ok": self.ok}


def find_s3_version(s3: Any, bucket: str, key: str, code_sha256: str) -> tuple[str, bool] | None:
    """Which object version of s3://bucket/key holds the function's code.

    Lambda's GetFunction does not say which S3 version the code came from, so
    compare: each version's ChecksumSHA256 (a single-part upload's equals
    CodeSha256) or its sha256 metadata (set by every upload) against CodeSha256.
    Newest first; the lifecycle rule keeps this list short.
    """
    paginator_params: dict[str, Any] = {"Bucket": bucket, "Prefix": key}
    while True:
        page = s3.list_object_versions(**paginator_params)
        for version in page.get("Versions", []):
            if version["Key"] != key:
                continue
            params = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
            if version["VersionId"] != "null":  # an unversioned object: the current one
                params["VersionId"] = version["VersionId"]
            head = s3.head_object(**params)
            from_meta = _metadata_b64(head.get("Metadata", {}).get("sha256", ""))
            if code_sha256 in {head.get("ChecksumSHA256"), from_meta}:
                return version["VersionId"], bool(version.get("IsLatest"))
        if not page.get("IsTruncated"):
            return None
        paginator_params["KeyMarker"] = page.get("NextKeyMarker")
        paginator_params["VersionIdMarker"] = page.get("NextVersionIdMarker")


def _metadata_b64(hex_digest: str) -> str | None:
    """The sha256 metadata as Lambda's CodeSha256; None when it is not hex (another tool's)."""
    try:
        return hex_to_b64(hex_digest)
    except ValueError:
        return None


def status(
    lam: Any,
    function: str,
    *,
    alias: str | None = DEFAULT_ALIAS,
    s3: Any = None,
    bucket: str | None = None,
    key: str | None = None,
    manifest_sha256_b64: str | None = None,
    manifest: str | None = None,
) -> Status:
    version = get_alias(lam, function, alias)["FunctionVersion"] if alias else "$LATEST"
    try:
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise UserError(
                f"--function {function}: no such Lambda function (version {version}) in this "
                "account/region; check the name and --region"
            ) from None
        raise
    result = Status(
        function=function,
        alias=alias,
        version=version,
        code_sha256=config.get("CodeSha256", ""),
        code_size=int(config.get("CodeSize", 0)),
        last_modified=str(config.get("LastModified", "")),
    )
    if bucket and key:
        result.s3_url = f"s3://{bucket}/{key}"
        found = find_s3_version(s3, bucket, key, result.code_sha256)
        if found is None:
            result.problems.append(
                f"no object version of {result.s3_url} holds this code (CodeSha256 "
                f"{result.code_sha256}): it was deployed from elsewhere, or that version expired"
            )
        else:
            result.s3_version_id, result.s3_is_latest = found
    if manifest_sha256_b64 is not None:
        result.manifest = manifest
        result.manifest_sha256_b64 = manifest_sha256_b64
        if manifest_sha256_b64 != result.code_sha256:
            result.problems.append(
                f"integrity check FAILED: CodeSha256 {result.code_sha256} != manifest "
                f"sha256_b64 {manifest_sha256_b64} ({manifest}): the function does not run "
                "this build; deploy it (pulumi up) or roll back"
            )
    return result


# --- invoke --------------------------------------------------------------------------------


def parse_payload(text: str | None) -> bytes:
    if text is None:
        return json.dumps(DEFAULT_PAYLOAD).encode()
    try:
        json.loads(text)
    except ValueError as exc:
        raise UserError(
            f"--payload: not valid JSON ({exc}); e.g. --payload '{{\"test\": true}}'"
        ) from None
    return text.encode()


@dataclass
class Invocation:
    status_code: int
    executed_version: str
    function_error: str | None
    payload: str
    log_tail: str


def invoke(lam: Any, function: str, payload: bytes, *, qualifier: str | None = None) -> Invocation:
    params: dict[str, Any] = {"FunctionName": function, "Payload": payload, "LogType": "Tail"}
    if qualifier:
        params["Qualifier"] = qualifier
    try:
        response = lam.invoke(**params)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise UserError(
                f"--function {function}: no such Lambda function"
                f"{' or qualifier ' + qualifier if qualifier else ''}; check the name and --region"
            ) from None
        raise
    body = response["Payload"].read().decode("utf-8", "replace")
    tail = response.get("LogResult")
    return Invocation(
        status_code=int(response.get("StatusCode", 0)),
        executed_version=response.get("ExecutedVersion", ""),
        function_error=response.get("FunctionError"),
        payload=body,
        log_tail=base64.b64decode(tail).decode("utf-8", "replace") if tail else "",
    )
