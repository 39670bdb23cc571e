import pytest

from backend import health
from backend.settings import Settings

SETTINGS = Settings(
    environment="dev",
    bucket_name="b",
    data_prefix="data/dev/",
    logs_prefix="logs/dev/",
    table_name="t",
    api_key_secret_arn=None,
    symbols=("SPY",),
    provider="yfinance",
    log_level="INFO",
)


class FakeTable:
    def __init__(self, description=None, error=None):
        self.description = description
        self.error = error

    def describe(self):
        if self.error:
            raise self.error
        return self.description


def test_provider_libraries_missing_from_the_package_is_an_error(monkeypatch):
    monkeypatch.setattr(health.importlib.util, "find_spec", lambda name: None)
    check = health.check_provider(SETTINGS)
    assert check.status == "error"
    assert check.detail == "yfinance: yfinance, pandas, numpy not in the package"


def test_provider_libraries_present_is_ok(monkeypatch):
    monkeypatch.setattr(health.importlib.util, "find_spec", lambda name: object())
    assert health.check_provider(SETTINGS).status == "ok"


def test_a_package_without_the_calendar_library_is_a_warning(monkeypatch):
    # It still runs, on the weekday stand-in (backend/market_calendar.py).
    present = lambda name: None if name == "exchange_calendars" else object()  # noqa: E731
    monkeypatch.setattr(health.importlib.util, "find_spec", present)
    check = health.check_provider(SETTINGS)
    assert check.status == "warning"
    assert "exchange_calendars not in the package" in check.detail


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (
            {"TableName": "t", "TableStatus": "ACTIVE", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}]},
            ("ok", "t is ACTIVE"),
        ),
        (
            {"TableName": "t", "TableStatus": "CREATING", "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}]},
            ("error", "t is CREATING, not ACTIVE"),
        ),
        (
            {"TableName": "t", "TableStatus": "ACTIVE", "KeySchema": [
                {"AttributeName": "id", "KeyType": "HASH"}]},
            ("error", "key schema is {'id': 'HASH'}, expected pk (HASH) and sk (RANGE)"),
        ),
    ],
)  # fmt: skip
def test_table_check(description, expected):
    check = health.check_table(FakeTable(description))
    assert (check.status, check.detail) == expected


def test_a_crashing_check_becomes_an_error_result():
    check = health._guard(
        "table", lambda: health.check_table(FakeTable(error=TimeoutError("slow")))
    )
    assert (check.status, check.detail) == ("error", "TimeoutError: slow")


def test_no_secret_configured_is_a_warning_and_warnings_keep_ok():
    check = health.check_secret(None)
    assert check.status == "warning"
    assert health.report([check, health.Check("table", "ok", "")])["ok"] is True
    assert health.report([health.Check("table", "error", "")])["ok"] is False
