"""Invoke a deployed function once: the seed's deployment test."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lambda_pkg.errors import UserError
from ops.session import error_code

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

DEFAULT_PAYLOAD = {"test": True}
# Lambda's limit for a synchronous invocation's request payload.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def parse_payload(text: str | None) -> bytes:
    if text is None:
        return json.dumps(DEFAULT_PAYLOAD).encode()
    try:
        json.loads(text)
    except ValueError as exc:
        raise UserError(
            f"--payload: not valid JSON ({exc}); e.g. --payload '{{\"test\": true}}'"
        ) from None
    data = text.encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise UserError(
            f"--payload: {len(data):,} bytes is over Lambda's {MAX_PAYLOAD_BYTES:,}-byte limit "
            "for a synchronous invocation; send a smaller event"
        )
    return data


@dataclass(frozen=True)
class InvokeResult:
    status_code: int
    executed_version: str
    function_error: str | None
    payload: str
    log_tail: str


def invoke(
    lam: LambdaClient, function: str, payload: bytes, *, qualifier: str | None = None
) -> InvokeResult:
    try:
        if qualifier:
            response = lam.invoke(
                FunctionName=function, Payload=payload, LogType="Tail", Qualifier=qualifier
            )
        else:
            response = lam.invoke(FunctionName=function, Payload=payload, LogType="Tail")
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise UserError(
                f"--function {function}: no such Lambda function"
                f"{' or qualifier ' + qualifier if qualifier else ''}; check the name and --region"
            ) from None
        raise
    body = response["Payload"].read().decode("utf-8", "replace")
    tail = response.get("LogResult")
    return InvokeResult(
        status_code=int(response.get("StatusCode", 0)),
        executed_version=response.get("ExecutedVersion", ""),
        function_error=response.get("FunctionError"),
        payload=body,
        log_tail=base64.b64decode(tail).decode("utf-8", "replace") if tail else "",
    )
