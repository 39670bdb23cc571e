import pytest

from backend.settings import Settings, SettingsError

GOOD = {
    "ENVIRONMENT": "dev",
    "BUCKET_NAME": "cloud-trading-bot-lambda-deployment-m6x4p8e",
    "DATA_PREFIX": "data/dev/",
    "LOGS_PREFIX": "logs/dev/",
    "TABLE_NAME": "cloud-trading-bot-dev-market-data",
    "API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ctb/dev/key-AbCdEf",
    "SYMBOLS": "SPY, qqq,AAPL,SPY",
    "MARKET_DATA_PROVIDER": "fixture",
    "LOG_LEVEL": "debug",
}


def test_contract_environment_parses():
    settings = Settings.from_env(GOOD)
    assert settings.environment == "dev"
    assert settings.data_prefix == "data/dev/"
    assert settings.symbols == ("SPY", "QQQ", "AAPL")  # normalised, de-duplicated, in order
    assert settings.provider == "fixture"
    assert settings.log_level == "DEBUG"


def test_defaults_for_optional_variables():
    env = {k: v for k, v in GOOD.items() if k not in ("MARKET_DATA_PROVIDER", "LOG_LEVEL")}
    env.pop("API_KEY_SECRET_ARN")
    settings = Settings.from_env(env)
    assert (settings.provider, settings.log_level, settings.api_key_secret_arn) == (
        "yfinance",
        "INFO",
        None,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENVIRONMENT", "Dev!", "ENVIRONMENT='Dev!' is invalid"),
        ("BUCKET_NAME", "", "BUCKET_NAME is not set"),
        (
            "DATA_PREFIX",
            "data/dev",
            "DATA_PREFIX='data/dev' is invalid: a key prefix ending in '/'",
        ),
        ("LOGS_PREFIX", "/logs/dev/", "LOGS_PREFIX='/logs/dev/' is invalid"),
        ("DATA_PREFIX", "data/../x/", "must not contain '..'"),
        ("TABLE_NAME", "t", "TABLE_NAME='t' is invalid"),
        ("API_KEY_SECRET_ARN", "sk-live-123", "must hold the secret's ARN, never its value"),
        ("SYMBOLS", " , ", "SYMBOLS is not set"),
        ("SYMBOLS", "AAPL,BAD TICKER", "SYMBOLS: malformed ticker 'BAD TICKER'"),
        ("SYMBOLS", ",".join(f"S{i}" for i in range(201)), "at most 200"),
        ("MARKET_DATA_PROVIDER", "alpaca", "use one of yfinance, fixture"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL='LOUD' is invalid"),
    ],
)
def test_each_bad_variable_is_named_with_a_fix(name, value, message):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, name: value})
    assert message in str(caught.value)


def test_secret_value_in_the_arn_variable_is_not_echoed():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**GOOD, "API_KEY_SECRET_ARN": "sk-live-123"})
    assert "sk-live-123" not in str(caught.value)


def test_all_problems_are_reported_together():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({})
    named = " ".join(caught.value.problems)
    for name in (
        "ENVIRONMENT",
        "BUCKET_NAME",
        "DATA_PREFIX",
        "LOGS_PREFIX",
        "TABLE_NAME",
        "SYMBOLS",
    ):
        assert name in named
