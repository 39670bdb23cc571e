"""The API key never leaves Secrets Manager: not in a response, a log line, an error, an
S3 object or a DynamoDB item, on any path, at any log level.

The Lambda Python runtime puts its own handler on the root logger and sets the root's
level from the function's application log level (AWS_LAMBDA_LOG_LEVEL); the dev stack
runs at DEBUG. The fixture below recreates that, so a library logging a response body
(botocore does, at DEBUG) would be caught here.
"""

import json
import logging
from datetime import UTC, datetime

import pytest

from aws.market_data_fetcher import AllSymbolsFailedError, handle
from backend import jsonlog
from backend.providers import ProviderError
from backend.providers.fixture import FixtureProvider
from backend.settings import SettingsError

NOW = datetime(2024, 3, 15, 14, 30, tzinfo=UTC)


class Failing(FixtureProvider):
    def fetch(self, symbol, interval, period):
        raise ProviderError(f"no data for {symbol}")


@pytest.fixture
def lambda_root_logger():
    """The runtime's root handler at DEBUG, as Lambda sets it up for LOG_LEVEL=DEBUG."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    def reset_libraries():
        for name in jsonlog.QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)

    root = logging.getLogger()
    handler, level = Keep(), root.level
    reset_libraries()  # as in a fresh container
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)
    reset_libraries()


def _run(world, event, context, *, env=None, provider=None):
    try:
        return handle(
            event,
            context,
            env=env or {**world.env, "LOG_LEVEL": "DEBUG"},
            clients=world.clients,
            provider=provider or FixtureProvider(clock=lambda: NOW),
            now=lambda: NOW,
        )
    except (AllSymbolsFailedError, SettingsError) as err:
        return {"raised": f"{type(err).__name__}: {err}"}


def test_the_key_appears_nowhere_on_any_path(world, context, capsys, lambda_root_logger):
    secret = world.secret_value
    answers = [
        _run(world, {"test": True}, context),  # reads the key
        _run(world, {}, context),
        _run(world, {"symbols": ["SPY"]}, context, provider=Failing()),  # raises
        _run(world, {"test": True}, context, env={**world.env, "LOG_LEVEL": "LOUD"}),
        _run(world, {}, context, env={**world.env, "TABLE_NAME": ""}),  # raises
        _run(world, {"symbolz": []}, context),
    ]
    assert answers[0]["ok"] is True  # test mode did read the secret
    assert any(c.operation == "GetSecretValue" for c in world.clients.calls)
    out = capsys.readouterr()
    # The logs were there to leak into: ours on stdout, and the runtime's root handler.
    assert '"message":"health check"' in out.out
    places = {
        "responses and errors": json.dumps(answers),
        "stdout": out.out,
        "stderr": out.err,
        "root logger": "\n".join(lambda_root_logger),
        "S3": repr(world.objects()),
        "DynamoDB": repr(world.items()),
    }
    assert [where for where, text in places.items() if secret in text] == []


def test_the_sdk_cannot_log_bodies_even_when_the_runtime_logs_debug(
    world, context, lambda_root_logger
):
    _run(world, {"test": True}, context)
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING
    assert not [line for line in lambda_root_logger if "Response body" in line]
