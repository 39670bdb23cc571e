"""boto3 clients for the operating commands: region, endpoint, bounded retries,
clear credential/permission errors and DEBUG=true call logging.

Retries live in one place, `RetryingClient`, rather than in botocore's retry
handler: botocore's own retries are switched off (total_max_attempts=1) so the
attempt budget is exactly `max_attempts`, not botocore's times ours, and so the
retry logic can be tested with botocore's Stubber (which answers before
botocore's retry handler ever runs).
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambda_pkg.errors import UserError, debug_enabled

DEFAULT_MAX_ATTEMPTS = 5
BASE_DELAY = 0.25  # seconds; doubled each attempt, with full jitter
MAX_DELAY = 20.0

# Mirrors botocore's standard retry mode (botocore/retries/standard.py).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "InternalError", "ServiceUnavailable"}
)
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403"})

NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, or run 'aws configure'"
)

log = logging.getLogger("lambda_pkg.aws")


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_retryable(exc: BaseException) -> bool:
    """Throttling, 5xx and connection trouble: worth another attempt."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        code = error_code(exc)
        return (
            code in THROTTLING_CODES
            or code in TRANSIENT_CODES
            or http_status(exc) in TRANSIENT_STATUS
        )
    return False


def _target(params: dict[str, Any]) -> str:
    """What a call was about, for error messages: s3://bucket/key, a function, a log group."""
    if "Bucket" in params:
        key = params.get("Key")
        return f"s3://{params['Bucket']}/{key}" if key else f"s3://{params['Bucket']}"
    for name in ("FunctionName", "logGroupName"):
        if name in params:
            return str(params[name])
    return ""


def translate(exc: BaseException, service: str, operation: str, params: dict[str, Any]):
    """Turn credential and permission failures into one-line UserErrors; None otherwise."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return UserError(NO_CREDENTIALS)
    if not isinstance(exc, ClientError):
        return None
    code = error_code(exc)
    if operation == "HeadBucket" and code not in CREDENTIAL_CODES:
        return _bucket_error(code, http_status(exc), exc, params.get("Bucket"))
    message = None
    if code in CREDENTIAL_CODES:
        message = (
            f"AWS rejected the credentials ({code}) on {service}:{operation}: they are invalid "
            "or expired; refresh them (aws sso login / new keys) and retry"
        )
    elif code in ACCESS_DENIED_CODES:
        message = (
            f"access denied (AccessDenied) on {service}:{operation} {_target(params)}: the "
            "credentials in use lack this permission; attach the stack's deployer policy or "
            "use a role that has it"
        )
    elif code == "NoSuchBucket":
        message = (
            f"bucket {params.get('Bucket')!r} does not exist (NoSuchBucket): check the name "
            "or create it with the stack that owns it (bucketOwner: true)"
        )
    return UserError(message) if message else None


def _bucket_error(code: str, status: int, exc: Any, bucket: str | None) -> UserError | None:
    # HeadBucket has no body, so the error "code" is the bare HTTP status.
    if code in {"404", "NoSuchBucket"} or status == 404:
        return UserError(
            f"bucket {bucket!r} does not exist (NoSuchBucket): check the name, or create it "
            "with the stack that owns it (bucketOwner: true)"
        )
    if code in {"301", "PermanentRedirect"} or status == 301:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region", "another region")
        return UserError(f"bucket {bucket!r} is in {region}: pass --region {region}")
    if code in ACCESS_DENIED_CODES or status == 403:
        return UserError(
            f"access denied (AccessDenied) to bucket {bucket!r}: it belongs to another account, "
            "or the credentials in use lack s3:ListBucket on it; use the stack's deployer policy"
        )
    return None


class RetryingClient:
    """Wraps a boto3 client: every API method retries throttling/5xx/connection
    errors with exponential backoff and full jitter, at most `max_attempts` times."""

    def __init__(
        self,
        client: Any,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.max_attempts = max(1, max_attempts)
        self._sleep = sleep
        self._warn = warn or _retry_notice

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name.startswith("_") or name in {"meta", "exceptions", "get_paginator", "get_waiter"}:
            return attr
        if not callable(attr):
            return attr

        def call(**params: Any) -> Any:
            return self._call(name, attr, params)

        return call

    def _call(self, name: str, method: Callable[..., Any], params: dict[str, Any]) -> Any:
        service = self.client.meta.service_model.service_name
        operation = self.client.meta.method_to_api_mapping.get(name, name)
        attempt = 1
        while True:
            try:
                return method(**params)
            except Exception as exc:
                user_error = translate(exc, service, operation, params)
                if user_error is not None:
                    raise user_error from None
                if not is_retryable(exc) or attempt >= self.max_attempts:
                    if is_retryable(exc):
                        raise _exhausted(exc, service, operation, attempt) from exc
                    raise
                delay = random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not crypto
                self._warn(
                    f"{service}:{operation} failed ({_describe(exc)}); retrying in {delay:.1f} s "
                    f"(attempt {attempt + 1} of {self.max_attempts})"
                )
                self._sleep(delay)
                attempt += 1


class RetriesExhausted(Exception):
    """A retryable failure kept happening until the attempt budget ran out."""


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def _exhausted(exc: BaseException, service: str, operation: str, attempts: int) -> Exception:
    """Out of attempts. Not reaching the endpoint at all (refused, DNS, connect
    timeout, proxy) is the user's to fix: a wrong --endpoint-url or --region, an
    emulator that is not running, no network. It is a one-line UserError (exit 2).
    Throttling, 5xx and a connection dropped mid-request are the service's
    trouble: RetriesExhausted (exit 1)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, BotoConnectionError):
        kwargs = getattr(exc, "kwargs", {}) or {}
        where = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or "the endpoint"
        return UserError(
            f"cannot reach {where} ({type(exc).__name__}) for {service}:{operation} after "
            f"{_attempts(attempts)}: check --endpoint-url, --region and the network "
            "(is the emulator running?)"
        )
    return RetriesExhausted(
        f"{service}:{operation} failed after {_attempts(attempts)} ({_describe(exc)}); giving up"
    )


def _retry_notice(message: str) -> None:
    """Retries are announced to a person watching a terminal (or with DEBUG=true);
    in a script or CI log the final outcome is the one line that matters."""
    if debug_enabled() or sys.stderr.isatty():
        print(f"warning: {message}", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    code = error_code(exc)
    if code:
        status = http_status(exc)
        return f"{code}, HTTP {status}" if status else code
    return f"{type(exc).__name__}: {exc}"


# --- DEBUG=true logging -----------------------------------------------------------------

_SECRET_PATTERNS = [
    # SigV4 Authorization header: Credential=<key id>/..., Signature=<hex>
    (re.compile(r"(Credential=)[^,/\s'\"]+"), r"\1<redacted>"),
    (re.compile(r"(Signature=)[0-9a-f]+"), r"\1<redacted>"),
    # Session tokens and secret keys, as headers or dict entries
    (
        re.compile(
            r"((?:X-Amz-Security-Token|x-amz-security-token|aws_session_token|"
            r"aws_secret_access_key|SecretAccessKey|SessionToken)['\"]?\s*[:=]\s*b?['\"]?)"
            r"[^'\",\s}]+"
        ),
        r"\1<redacted>",
    ),
]
_MAX_LOG_LINE = 2000


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """botocore's DEBUG output includes signed headers; never let a credential
    through, and cut request bodies short (a part is 8 MiB)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        if len(message) > _MAX_LOG_LINE:
            message = message[:_MAX_LOG_LINE] + f" ... [{len(message) - _MAX_LOG_LINE} chars cut]"
        record.msg, record.args = message, None
        return True


_debug_handler: logging.Handler | None = None


def enable_debug_logging(stream: Any = None) -> None:
    """Log every AWS call (botocore at DEBUG, redacted) to stderr."""
    global _debug_handler  # noqa: PLW0603 - one handler per process, installed once
    if _debug_handler is not None:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    for name in ("botocore", "boto3", "lambda_pkg.aws"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    _debug_handler = handler


def disable_debug_logging() -> None:
    global _debug_handler  # noqa: PLW0603
    if _debug_handler is None:
        return
    for name in ("botocore", "boto3", "lambda_pkg.aws"):
        logger = logging.getLogger(name)
        logger.removeHandler(_debug_handler)
        logger.setLevel(logging.NOTSET)
    _debug_handler = None


def _log_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    shown = {
        k: (f"<{len(v)} bytes>" if isinstance(v, bytes | bytearray) else v)
        for k, v in params.items()
    }
    log.debug("call %s:%s %s", model.service_model.service_name, model.name, redact(repr(shown)))


def _log_result(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    meta = parsed.get("ResponseMetadata", {})
    log.debug(
        "done %s:%s HTTP %s request id %s",
        model.service_model.service_name,
        model.name,
        getattr(http_response, "status_code", "?"),
        meta.get("RequestId", "-"),
    )


# --- the factory --------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsSettings:
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


class Aws:
    """One boto3 session; `client(name)` returns a RetryingClient."""

    def __init__(self, settings: AwsSettings | None = None, *, session: Any = None):
        import boto3

        self.settings = settings or AwsSettings()
        # botocore reads AWS_DEFAULT_REGION and the profile, but not AWS_REGION, which
        # the AWS CLI v2, the other SDKs and the Lambda runtime use; the CLI's order is
        # kept: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
        region = self.settings.region or os.environ.get("AWS_REGION") or None
        self.session = session or boto3.session.Session(region_name=region)
        if not self.session.region_name:
            raise UserError(
                "no AWS region: pass --region REGION (e.g. us-east-1) or set AWS_REGION"
            )
        if debug_enabled():
            enable_debug_logging()

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str) -> RetryingClient:
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=60,
        )
        raw = self.session.client(service, endpoint_url=self.settings.endpoint_url, config=config)
        if debug_enabled():
            raw.meta.events.register("before-parameter-build.*.*", _log_call)
            raw.meta.events.register("after-call.*.*", _log_result)
        return RetryingClient(raw, max_attempts=self.settings.max_attempts)
