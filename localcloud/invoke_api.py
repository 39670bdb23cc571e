"""The Lambda Invoke API as the front serves it: the request, parsed and checked the
way Lambda checks it, and Lambda's error answers (rest-json: the code in the
`X-Amzn-ErrorType` header, the message in the body), which botocore and the AWS CLI
turn into the same exceptions and messages as from AWS."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from dataclasses import dataclass, field

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # RequestResponse and DryRun, each way
ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # Event (raised from 256 KB to 1 MB in 2025)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")

_QUALIFIER = r"\$LATEST|[a-zA-Z0-9_-]{1,128}"
_NAME = r"[a-zA-Z0-9_-]{1,64}"
_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    rf"function:(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)
_PARTIAL = re.compile(
    rf"^(?P<account>\d{{12}}):function:(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$"
)
_PLAIN = re.compile(rf"^(?P<name>{_NAME})(?::(?P<qualifier>{_QUALIFIER}))?$")


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LambdaApiError(Exception):
    """An answer in Lambda's error shape; `code` is what botocore raises as."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def answer(self, request_id: str) -> HttpAnswer:
        body = {"Type": "User" if self.status < 500 else "Service", "message": self.message}
        body.update(self.extra)
        return HttpAnswer(
            self.status,
            json.dumps(body).encode(),
            {
                "Content-Type": "application/json",
                "X-Amzn-ErrorType": self.code,
                "x-amzn-RequestId": request_id,
            },
        )


def not_found(what: str) -> LambdaApiError:
    return LambdaApiError(404, "ResourceNotFoundException", f"Function not found: {what}")


def service_error(message: str) -> LambdaApiError:
    """The local cloud itself cannot run the function (not the function's fault)."""
    return LambdaApiError(500, "ServiceException", f"local cloud: {message}")


@dataclass(frozen=True)
class InvokeRequest:
    function: str  # the plain function name
    qualifier: str | None  # alias, version number, $LATEST, or None (= $LATEST)
    invocation_type: str
    tail_logs: bool
    payload: bytes
    client_context: str | None  # as sent: base64 JSON

    @property
    def invoked_qualifier(self) -> str:
        return self.qualifier or "$LATEST"


def split_function_name(raw: str) -> tuple[str, str | None]:
    """Name, ARN or partial ARN (each optionally `:qualifier`) -> (name, qualifier)."""
    for pattern in (_ARN, _PARTIAL, _PLAIN):
        match = pattern.match(raw)
        if match:
            return match["name"], match["qualifier"]
    raise LambdaApiError(
        400,
        "ValidationException",
        f"1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
        "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
    )


def parse_invoke(path: str, headers: dict[str, str], body: bytes) -> InvokeRequest | None:
    """The Invoke request at `path` (with its query string), or None if `path` is not
    Invoke. Raises LambdaApiError for what Lambda would refuse before running anything."""
    parts = urllib.parse.urlsplit(path)
    match = INVOKE_PATH.match(parts.path)
    if match is None:
        return None
    name, derived = split_function_name(urllib.parse.unquote(match["function"]))
    query = urllib.parse.parse_qs(parts.query)
    qualifier = query["Qualifier"][0] if query.get("Qualifier") else None
    if derived and qualifier and derived != qualifier:
        raise LambdaApiError(
            400,
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )
    lowered = {k.lower(): v for k, v in headers.items()}
    invocation_type = lowered.get("x-amz-invocation-type") or "RequestResponse"
    if invocation_type not in INVOCATION_TYPES:
        raise LambdaApiError(
            400,
            "InvalidParameterValueException",
            f"InvocationType {invocation_type!r}: use one of {', '.join(INVOCATION_TYPES)}",
        )
    log_type = lowered.get("x-amz-log-type") or "None"
    if log_type not in ("None", "Tail"):
        raise LambdaApiError(
            400, "InvalidParameterValueException", f"LogType {log_type!r}: use None or Tail"
        )
    limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
    if len(body) > limit:
        raise LambdaApiError(
            413,
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
        )
    payload = body if body.strip() else b"{}"
    try:
        json.loads(payload)
    except ValueError as exc:
        raise LambdaApiError(
            400,
            "InvalidRequestContentException",
            f"Could not parse request body into json: {exc}",
        ) from None
    context = lowered.get("x-amz-client-context")
    if context is not None:
        try:
            json.loads(base64.b64decode(context, validate=True))
        except ValueError:
            raise LambdaApiError(
                400,
                "InvalidRequestContentException",
                "Client context must be a base64-encoded JSON object",
            ) from None
    return InvokeRequest(
        function=name,
        qualifier=derived or qualifier,
        invocation_type=invocation_type,
        tail_logs=log_type == "Tail",
        payload=payload,
        client_context=context,
    )
