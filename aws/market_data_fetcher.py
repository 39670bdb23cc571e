"""Lambda entry point `aws.market_data_fetcher.handler`: a thin adapter over backend/.

Parse the event, read the settings, run the fetch (or the health check), shape the
response. Events, responses and the environment are documented in docs/runtime.md.
Importing this module imports no boto3, yfinance or pandas: clients and providers
are created on first use, so a cold start pays only for what the invocation needs.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from backend import jsonlog
from backend.clients import AwsClients
from backend.events import EventError, HealthRequest, parse_event
from backend.providers import Provider, get_provider
from backend.settings import Settings, SettingsError
from backend.storage import DynamoTable, S3ObjectStore

FUNCTION = "market_data_fetcher"
FETCH_THREADS = 16  # backend.fetcher.MAX_WORKERS, which this module does not import
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class AllSymbolsFailedError(RuntimeError):
    """Raised when no symbol succeeded, so that Lambda counts an error, retries
    asynchronous invocations and the Errors alarm fires."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, context, env=os.environ)


@functools.cache
def container_clients() -> AwsClients:
    """Per container: the clients and the cached API key survive between warm
    invocations. One pooled connection per fetch thread (backend.fetcher.MAX_WORKERS),
    and spare."""
    return AwsClients(max_pool_connections=FETCH_THREADS + 4)


def _request_id(context: Any) -> str:
    rid = getattr(context, "aws_request_id", None)
    # It becomes part of an S3 key, so only a well-formed id is used as is.
    if isinstance(rid, str) and _REQUEST_ID_RE.match(rid):
        return rid
    return str(uuid.uuid4())


def _remaining_seconds(context: Any) -> Callable[[], float] | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return (lambda: remaining() / 1000.0) if callable(remaining) else None


def handle(
    event: Any,
    context: Any,
    *,
    env: Mapping[str, str],
    clients: AwsClients | None = None,
    provider: Provider | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    max_workers: int = FETCH_THREADS,
) -> dict[str, Any]:
    """The handler with its collaborators injectable, for tests and the benchmark."""
    started = time.monotonic()
    request_id = _request_id(context)
    jsonlog.configure()
    jsonlog.bind(request_id=request_id, function=FUNCTION)

    try:
        request = parse_event(event)
    except EventError as err:
        # A bad event will be just as bad on a retry: answer, do not raise.
        jsonlog.log(logging.WARNING, "bad event", field=err.field, error=str(err))
        return {
            "ok": False,
            "error": "bad_event",
            "field": err.field,
            "message": str(err),
            "request_id": request_id,
        }

    try:
        settings = Settings.from_env(env)
    except SettingsError as err:
        jsonlog.log(logging.ERROR, "invalid settings", problems=err.problems)
        if isinstance(request, HealthRequest):
            from backend import health

            checks = [health.Check("settings", health.ERROR, p) for p in err.problems]
            return health.report(checks, request_id=request_id)
        raise

    jsonlog.set_level(settings.log_level)
    jsonlog.bind(request_id=request_id, function=FUNCTION, environment=settings.environment)
    clients = clients or container_clients()

    if isinstance(request, HealthRequest):
        objects = S3ObjectStore(client=clients.get("s3"), bucket=settings.bucket_name)
        table = DynamoTable(client=clients.get("dynamodb"), table_name=settings.table_name)
        return _health(settings, clients, objects, table, request_id)

    # The fetch path is imported when a fetch runs, so test mode's cold start skips it.
    from backend import run
    from backend.market_calendar import get_calendar

    calendar = get_calendar()  # exchange_calendars (pandas) loads here, once per container
    if request.scheduled and not calendar.run_due(now()):
        # Nothing can have changed since the last close: no AWS client, no provider
        # call, no write (not even a run record); this answer and one log line.
        return run.market_closed(
            settings, calendar, request_id=request_id, now=now(), started=started
        )

    response, all_failed = run.fetch(
        request,
        settings,
        objects=S3ObjectStore(client=clients.get("s3"), bucket=settings.bucket_name),
        table=DynamoTable(client=clients.get("dynamodb"), table_name=settings.table_name),
        calendar=calendar,
        provider=provider or get_provider(settings.provider),
        request_id=request_id,
        remaining_seconds=_remaining_seconds(context),
        now=now,
        started=started,
        max_workers=max_workers,
    )
    if all_failed:
        raise AllSymbolsFailedError(all_failed)
    return response


def _health(
    settings: Settings,
    clients: AwsClients,
    objects: S3ObjectStore,
    table: DynamoTable,
    request_id: str,
) -> dict[str, Any]:
    from backend import health

    secret = (
        clients.secret_reader(settings.api_key_secret_arn) if settings.api_key_secret_arn else None
    )
    checks = health.run_checks(settings, objects=objects, table=table, secret=secret)
    result = health.report(checks, request_id=request_id, environment=settings.environment)
    jsonlog.log(
        logging.INFO if result["ok"] else logging.ERROR,
        "health check",
        ok=result["ok"],
        checks={c.name: c.status for c in checks},
    )
    return result
