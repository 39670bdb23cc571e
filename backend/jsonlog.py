"""Structured logs: one JSON object per line on stdout, carrying the request id.

Lambda sends stdout to CloudWatch Logs line by line, so one JSON line is one event
that Logs Insights can query by field. Our logger does not propagate to the root
logger, where the Lambda runtime installs its own handler.

The function runs with Lambda's JSON log format and an application log level
(infra/function.py). Lambda filters stdout lines by their `level` key and treats a
line whose level is invalid or missing, or that has no valid `timestamp`, as INFO. So
the keys are `timestamp` (RFC 3339) and `level` in Lambda's documented names (WARN,
not WARNING), or a WARN/ERROR stack could drop our warnings and errors.

That log level also sets the *root* logger's level in the Lambda runtime; at DEBUG,
botocore would log every response body there, the API key's GetSecretValue answer
included. `configure()` therefore caps the AWS SDK's loggers at WARNING, whatever
LOG_LEVEL says.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

LOGGER_NAME = "market_data_fetcher"
# Lambda's level names (docs: "Log-level filtering"); Python's WARNING is WARN there.
LAMBDA_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}
# Libraries that log request and response bodies at DEBUG: never below WARNING.
QUIET_LIBRARIES = ("boto3", "botocore", "s3transfer", "urllib3")
# Fields of the current invocation. A Lambda container runs one invocation at a time,
# and the fetch threads must see the same request id, which a contextvar would not
# carry into the thread pool.
_bound: dict[str, Any] = {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": LAMBDA_LEVELS.get(record.levelname, record.levelname),
            "message": record.getMessage(),
            **_bound,
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler[TextIO]):
    # Look stdout up on every write, so a replaced sys.stdout (tests) is honoured.
    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def get_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger


def configure() -> None:
    """Once per invocation, before any client exists: our handler in place, and the SDK's
    loggers capped (see the module docstring). Cheap and idempotent."""
    get_logger()
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        if library.getEffectiveLevel() < logging.WARNING:
            library.setLevel(logging.WARNING)


def adopt(name: str, level: int = logging.WARNING) -> None:
    """Send a library's logger (yfinance's) through our JSON handler, so its lines carry
    the request id too, instead of reaching the runtime's plain-text root handler."""
    library = logging.getLogger(name)
    library.handlers[:] = get_logger().handlers
    library.propagate = False
    library.setLevel(level)


def set_level(level: str) -> None:
    get_logger().setLevel(level)


def bind(**fields: Any) -> None:
    """Replace the invocation's fields (request_id, environment) on every later line."""
    _bound.clear()
    _bound.update(fields)


def log(level: int, message: str, *, exc_info: bool = False, **fields: Any) -> None:
    get_logger().log(level, message, exc_info=exc_info, extra={"fields": fields})
