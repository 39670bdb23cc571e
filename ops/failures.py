"""botocore's failures as one line and an exit code: the CLI boundary's only
translation of AWS errors.

Exit 2 for what the user fixes (credentials, profile, config file, region,
permissions, a missing bucket, an endpoint that does not answer); exit 1 for the
service's trouble (throttling or 5xx until botocore's attempts ran out). Anything
no rule knows is left to the caller (`None`), which prints it on one line, exit 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lambda_pkg.errors import one_line
from ops.session import FailedAttempt, error_code, http_status

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


@dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int


def _user(message: str) -> Failure:
    return Failure(message, 2)


def _attempts(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def explain(
    exc: BaseException, last: FailedAttempt | None, *, profile_from: str = "AWS_PROFILE"
) -> Failure | None:
    """One line and an exit code for a botocore exception; None when no rule knows it.
    `last` is the session's latest failed attempt (which call, how many attempts)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        return _client_error(exc, last)
    if isinstance(exc, BotoCoreError):
        return _setup_error(exc, profile_from) or _transport_error(exc, last)
    return None


def _setup_error(exc: Any, profile_from: str) -> Failure | None:
    """The session could not be set up: profile, config files, credentials, region."""
    from botocore import exceptions as e

    kwargs = getattr(exc, "kwargs", {}) or {}
    message = None
    if isinstance(exc, e.ProfileNotFound):
        files = (
            f"{os.environ.get('AWS_CONFIG_FILE', '~/.aws/config')} or "
            f"{os.environ.get('AWS_SHARED_CREDENTIALS_FILE', '~/.aws/credentials')}"
        )
        message = (
            f"{profile_from} {kwargs.get('profile')!r}: no such profile in {files}; check the "
            "name ('aws configure list-profiles'), create it ('aws configure --profile NAME'), "
            f"or unset {profile_from}"
        )
    elif isinstance(exc, e.ConfigParseError):
        detail = one_line(kwargs.get("error") or "", 120)
        message = (
            f"{kwargs.get('path')}: not a valid AWS config or credentials file ({detail}); fix "
            "its syntax ('[name]' section headers, then 'key = value' lines), or point "
            "AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at another file"
        )
    elif isinstance(exc, e.NoCredentialsError):
        message = NO_CREDENTIALS
    elif isinstance(exc, e.PartialCredentialsError):
        message = (
            f"incomplete AWS credentials from {kwargs.get('provider')}: "
            f"{kwargs.get('cred_var')} is missing; set it, or use a profile (AWS_PROFILE)"
        )
    elif isinstance(exc, e.SSOError | e.TokenRetrievalError | e.CredentialRetrievalError):
        message = (
            f"could not get AWS credentials ({type(exc).__name__}: {one_line(exc, 160)}): for "
            "an SSO profile run 'aws sso login', else fix the profile or use other credentials"
        )
    elif isinstance(exc, e.InvalidRegionError):
        message = (
            f"region {kwargs.get('region_name')!r} is not a valid region name: pass --region "
            "e.g. us-east-1 (or fix AWS_REGION, AWS_DEFAULT_REGION or the profile's region)"
        )
    return _user(message) if message else None


def _transport_error(exc: Any, last: FailedAttempt | None) -> Failure | None:
    """Out of attempts on the network. Not reaching the endpoint at all (refused, DNS,
    connect timeout, proxy, TLS) is the user's to fix: a wrong --endpoint-url or
    --region, an emulator that is not running, no network (exit 2). A connection that
    dropped or timed out mid-request is the service's trouble (exit 1)."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    call = f"for {last.call.name} after {_attempts(last.attempt)}" if last else "after retrying"
    if isinstance(exc, BotoConnectionError):
        kwargs = getattr(exc, "kwargs", {}) or {}
        where = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or "the endpoint"
        return _user(
            f"cannot reach {where} ({type(exc).__name__}) {call}: check --endpoint-url, "
            "--region and the network (is the emulator running?)"
        )
    if isinstance(exc, HTTPClientError):
        name = last.call.name if last else "an AWS call"
        attempts = f" after {_attempts(last.attempt)}" if last else ""
        return Failure(f"{name} failed{attempts} ({type(exc).__name__}); giving up", 1)
    return None


def _client_error(exc: Any, last: FailedAttempt | None) -> Failure | None:
    operation = str(getattr(exc, "operation_name", "") or "")
    call = last.call if last and last.call.operation == operation else None
    name = call.name if call else operation
    target = f" {call.target}" if call and call.target else ""
    code = error_code(exc)
    if operation == "HeadBucket" and code not in CREDENTIAL_CODES:
        bucket_failure = _bucket_error(exc, call.bucket if call else None)
        if bucket_failure is not None:
            return bucket_failure
    if code in CREDENTIAL_CODES:
        return _user(
            f"AWS rejected the credentials ({code}) on {name}: they are invalid or expired; "
            "refresh them (aws sso login / new keys) and retry"
        )
    if code in ACCESS_DENIED_CODES:
        return _user(
            f"access denied (AccessDenied) on {name}{target}: the credentials in use lack "
            "this permission; attach the stack's deployer policy or use a role that has it"
        )
    if code == "NoSuchBucket":
        bucket = (call.bucket if call else None) or exc.response.get("Error", {}).get("BucketName")
        return _user(
            f"bucket {bucket!r} does not exist (NoSuchBucket): check the name or create it "
            "with the stack that owns it (bucketOwner: true)"
        )
    meta = exc.response.get("ResponseMetadata", {})
    if meta.get("MaxAttemptsReached"):
        attempts = int(meta.get("RetryAttempts", 0)) + 1
        status = http_status(exc)
        detail = f"{code}, HTTP {status}" if code and str(status) != code else f"HTTP {status}"
        return Failure(f"{name} failed after {_attempts(attempts)} ({detail}); giving up", 1)
    return None


def _bucket_error(exc: Any, bucket: str | None) -> Failure | None:
    # HeadBucket has no body, so the error "code" is the bare HTTP status.
    code, status = error_code(exc), http_status(exc)
    if code in {"404", "NoSuchBucket"} or status == 404:
        return _user(
            f"bucket {bucket!r} does not exist (NoSuchBucket): check the name, or create it "
            "with the stack that owns it (bucketOwner: true)"
        )
    if code in {"301", "PermanentRedirect"} or status == 301:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region", "another region")
        return _user(f"bucket {bucket!r} is in {region}: pass --region {region}")
    if code in ACCESS_DENIED_CODES or status == 403:
        return _user(
            f"access denied (AccessDenied) to bucket {bucket!r}: it belongs to another account, "
            "or the credentials in use lack s3:ListBucket on it; use the stack's deployer policy"
        )
    return None


def unknown_client_error(exc: Any) -> str:
    """'AWS HeadObject failed: 400 Bad Request (HTTP 400)' rather than botocore's
    sentence: an AWS error no rule above knows, on one line."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code, message = error.get("Code", ""), error.get("Message", "")
    detail = " ".join(str(p) for p in (code, message) if p) or f"HTTP {status}"
    if status and str(status) != code:
        detail += f" (HTTP {status})"
    return one_line(f"AWS {getattr(exc, 'operation_name', '') or 'call'} failed: {detail}")
