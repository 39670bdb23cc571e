"""Translating Pulumi's recorded inputs into the shapes boto3 expects.

Pulumi mocks hand resource inputs over as they travel on the wire: camelCase keys,
every number a float, secrets wrapped in a signature dict. AWS APIs want PascalCase
keys, integers and plain values.
"""

from __future__ import annotations

import json
from typing import Any

# How Pulumi marks a secret on the wire: {_SIG_KEY: _SECRET_SIG, "value": ...}.
# No public API exists for it (pulumi exports no way to tell a wrapped secret apart).
from pulumi.runtime.rpc import _special_secret_sig as _SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as _SIG_KEY

# Keys whose AWS spelling is not just the first letter upper-cased.
_AWS_KEYS = {
    "id": "ID",
    "sseAlgorithm": "SSEAlgorithm",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "kmsKeyId": "KMSKeyId",
    "kmsKeyArn": "KMSKeyArn",
}


def unwrap(value: Any) -> Any:
    """Strip Pulumi's secret wrapper (recursively); other values are returned as is."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return unwrap(value.get("value"))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """Like unwrap, but secret values become "[secret]": safe to keep and print."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return "[secret]"
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def number(value: Any) -> Any:
    """Pulumi sends every number as a float; AWS wants integers where they are whole."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def aws_key(key: str) -> str:
    return _AWS_KEYS.get(key, key[:1].upper() + key[1:])


def to_aws(value: Any) -> Any:
    """camelCase dicts -> PascalCase dicts, whole floats -> ints, `tags` maps -> Tag lists."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            if key == "tags" and isinstance(item, dict):
                out["Tags"] = [{"Key": k, "Value": v} for k, v in item.items()]
            else:
                out[aws_key(key)] = to_aws(item)
        return out
    if isinstance(value, list):
        return [to_aws(v) for v in value]
    return number(value)


def tag_list(
    tags: dict[str, str] | None, *, key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    return [{key: k, value: v} for k, v in (tags or {}).items()]


def tags(inputs: dict[str, Any], param: str = "Tags", **shape: str) -> dict[str, Any]:
    """{param: the `tags` input as tag_list(**shape) makes it}, or {} without tags."""
    return {param: tag_list(inputs["tags"], **shape)} if inputs.get("tags") else {}


def json_document(field: str, value: Any) -> str:
    """A policy input must be a JSON object (string or dict); return it as a string."""
    if isinstance(value, dict):
        return json.dumps(value)
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a JSON policy document, got {type(value).__name__}")
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ValueError(f"{field} is not valid JSON ({exc})") from None
    if not isinstance(parsed, dict) or "Statement" not in parsed:
        raise ValueError(f"{field} is not a policy document (no Statement)")
    return value


def given(inputs: dict[str, Any], **params: str) -> dict[str, Any]:
    """{param: inputs[key]} for each `param=key` whose input is set (not None, "", [], {}):
    0 and False are values (a retry count of 0 is one)."""
    return {p: inputs[k] for p, k in params.items() if inputs.get(k) not in (None, "", [], {})}


def require(inputs: dict[str, Any], *keys: str) -> None:
    missing = [k for k in keys if inputs.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing required input(s): {', '.join(missing)}")
