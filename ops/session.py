"""One boto3 session for the operator commands: region, endpoint, profile, and
botocore's own retries with a bounded number of attempts.

Retries are botocore's standard mode (exponential backoff with jitter on
throttling, 5xx and connection errors, and a retry quota), set with
`total_max_attempts`, so every call, paginated ones and s3transfer's parts
included, gets the same budget of N attempts. What botocore does not give is
a record of which call failed: the hooks below keep the latest failed attempt
(`CallLog`), so the CLI boundary can say "s3:HeadBucket s3://bucket" in its
one-line error, and announce each retry to a person at a terminal.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambda_pkg.errors import UserError, debug_enabled
from ops import debuglog

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client

DEFAULT_MAX_ATTEMPTS = 5
MAX_ATTEMPTS_LIMIT = 20

NO_REGION = "no AWS region: pass --region REGION (e.g. us-east-1) or set AWS_REGION"


@dataclass(frozen=True)
class AwsSettings:
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True)
class AwsCall:
    """One API call, as an error message names it."""

    service: str  # "s3", "lambda", "logs"
    operation: str  # "HeadBucket"
    target: str  # "s3://bucket/key", a function, a log group, or ""
    bucket: str | None = None

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(frozen=True)
class FailedAttempt:
    call: AwsCall
    attempt: int
    reason: str  # "SlowDown, HTTP 503" or "EndpointConnectionError"


class CallLog:
    """The latest failed attempt of any call made through the session. Parts of a
    multipart upload fail in worker threads, hence the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: FailedAttempt | None = None

    def record(self, failed: FailedAttempt) -> None:
        with self._lock:
            self._last = failed

    @property
    def last(self) -> FailedAttempt | None:
        with self._lock:
            return self._last


def call_of(params: dict[str, Any], model: Any) -> AwsCall:
    """What a call was about: s3://bucket/key, a function, a log group."""
    service = str(model.service_model.service_name)
    bucket = params.get("Bucket")
    if bucket:
        key = params.get("Key")
        target = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    else:
        found = [str(params[n]) for n in ("FunctionName", "logGroupName") if n in params]
        target = found[0] if found else ""
    return AwsCall(service, str(model.name), target, str(bucket) if bucket else None)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _reason(exception: BaseException | None, response: dict[str, Any] | None) -> str:
    if exception is not None:
        return type(exception).__name__
    parsed = response or {}
    code = str(parsed.get("Error", {}).get("Code", ""))
    status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return f"{code}, HTTP {status}" if code and code != str(status) else f"HTTP {status}"


class AwsSession:
    """One boto3 session; `s3()`, `lambda_()` and `logs()` return botocore clients
    with standard retries, bounded at `max_attempts` attempts per call."""

    def __init__(self, settings: AwsSettings | None = None, *, calls: CallLog | None = None):
        import boto3

        self.settings = settings or AwsSettings()
        self.calls = calls or CallLog()
        # botocore reads AWS_DEFAULT_REGION and the profile, but not AWS_REGION, which
        # the AWS CLI v2, the other SDKs and the Lambda runtime use; the CLI's order is
        # kept: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile's region.
        region = self.settings.region or os.environ.get("AWS_REGION") or None
        # An unknown profile (ProfileNotFound) or an unreadable ~/.aws/config
        # (ConfigParseError) is raised here; ops.failures words it.
        self.session = boto3.session.Session(region_name=region, profile_name=self.settings.profile)
        if not self.session.region_name:
            raise UserError(NO_REGION)
        if debug_enabled():
            debuglog.enable()

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    @property
    def profile(self) -> str | None:
        """The profile in use, when one was named (--profile or AWS_PROFILE)."""
        return self.settings.profile or os.environ.get("AWS_PROFILE") or None

    def configured_endpoint(self, service: str) -> str | None:
        """--endpoint-url, else the environment's (AWS_ENDPOINT_URL_<SERVICE>, then
        AWS_ENDPOINT_URL, which botocore honours too): what a printed command needs to
        reach the same place."""
        if self.settings.endpoint_url:
            return self.settings.endpoint_url
        if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
            return None
        variable = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
        return os.environ.get(variable) or os.environ.get("AWS_ENDPOINT_URL") or None

    def s3(self) -> S3Client:
        client: S3Client = self._client("s3")
        return client

    def lambda_(self) -> LambdaClient:
        client: LambdaClient = self._client("lambda")
        return client

    def logs(self) -> CloudWatchLogsClient:
        client: CloudWatchLogsClient = self._client("logs")
        return client

    def _client(self, service: str) -> Any:
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard", "total_max_attempts": self.settings.max_attempts},
            connect_timeout=10,
            read_timeout=60,
        )
        client = self.session.client(
            service, endpoint_url=self.settings.endpoint_url, config=config
        )
        events = client.meta.events
        events.register("before-parameter-build", _remember_call)
        events.register("response-received", self._on_response)
        events.register("request-created", self._on_request)
        if debug_enabled():
            debuglog.attach(events)
        return client

    def _on_response(
        self,
        context: dict[str, Any],
        exception: BaseException | None = None,
        parsed_response: dict[str, Any] | None = None,
        response_dict: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        status = int((response_dict or {}).get("status_code", 0) or 0)
        call = context.get("ops_call")
        if call is None or (exception is None and status < 300):
            return
        attempt = int(context.get("retries", {}).get("attempt", 1))
        self.calls.record(FailedAttempt(call, attempt, _reason(exception, parsed_response)))

    def _on_request(self, request: Any, **_: Any) -> None:
        """Each retry, announced to a person watching a terminal (or with DEBUG=true);
        in a script or a CI log the final outcome is the one line that matters."""
        context = getattr(request, "context", None) or {}
        attempt = int(context.get("retries", {}).get("attempt", 1))
        last = self.calls.last
        if attempt < 2 or last is None or not (debug_enabled() or sys.stderr.isatty()):
            return
        print(
            f"warning: {last.call.name} failed ({last.reason}); retrying "
            f"(attempt {attempt} of {self.settings.max_attempts})",
            file=sys.stderr,
        )


def _remember_call(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context["ops_call"] = call_of(params, model)
