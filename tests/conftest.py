"""Shared test settings. Each suite (unit/, infra/, e2e/) keeps its own fixtures
in its own conftest.py; only what every suite needs lives here."""

import pytest

from localcloud.emulator import EMULATOR_ENV


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    # No test may reach real AWS or use the developer's credentials: every test
    # sees dummy ones, and no profile or config file from the home directory.
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
