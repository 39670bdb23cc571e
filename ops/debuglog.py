"""DEBUG=true: every AWS call logged to stderr, with no credential in the log.

botocore's own DEBUG output includes the signed headers and request bodies, so a
filter redacts SigV4 credentials, signatures, session tokens and secret keys, and
cuts long lines (a part is 8 MiB).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

log = logging.getLogger("ops.aws")
_LOGGERS = ("botocore", "boto3", "s3transfer", "ops.aws")

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
    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        if len(message) > _MAX_LOG_LINE:
            message = message[:_MAX_LOG_LINE] + f" ... [{len(message) - _MAX_LOG_LINE} chars cut]"
        record.msg, record.args = message, None
        return True


_handler: logging.Handler | None = None


def enable(stream: TextIO | None = None) -> None:
    """Log every AWS call (botocore at DEBUG, redacted) to stderr; once per process."""
    global _handler  # noqa: PLW0603 - one handler per process, installed once
    if _handler is not None:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter())
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    _handler = handler


def disable() -> None:
    global _handler  # noqa: PLW0603
    if _handler is None:
        return
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.removeHandler(_handler)
        logger.setLevel(logging.NOTSET)
    _handler = None


def attach(events: Any) -> None:
    """A `call` line before and a `done` line after each API call of this client."""
    events.register("before-parameter-build", _log_call)
    events.register("after-call", _log_result)


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
