"""The service's environment, read in one place; each problem names its variable."""

import json

import pytest

from backend.service.settings import ServiceSettings, ServiceSettingsError
from tests.unit.service.helpers import REQUIRED_ENV, service_env


def problems(env):
    with pytest.raises(ServiceSettingsError) as err:
        ServiceSettings.from_env(env)
    return err.value.problems


def test_a_complete_environment(tmp_path):
    settings = ServiceSettings.from_env(service_env(["AAPL", "msft"], tmp_path / "hb"))
    assert settings.symbols == ("AAPL", "MSFT")
    assert settings.trading.strategy_params["slow"] == 5
    assert settings.poll_seconds == 0.2


def test_missing_variables_each_one_line():
    lines = problems({})
    assert tuple(line.split(" ")[0] for line in lines) == REQUIRED_ENV


def test_live_trading_is_refused_at_start_off_prod(tmp_path):
    """A live switch that reached a dev task (say, by an edited task definition)."""
    env = service_env(["AAPL"], tmp_path / "hb")
    raw = json.loads(env["TRADING_CONFIG"])
    raw.update(environment="prod", tradingMode="alpaca-live", liveTrading=True)
    env["TRADING_CONFIG"] = json.dumps(raw)
    assert problems(env) == ["TRADING_CONFIG: environment 'prod' does not match ENVIRONMENT='test'"]
    raw.pop("environment")
    env["TRADING_CONFIG"] = json.dumps(raw)
    env["BROKER_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf"
    assert problems(env) == [
        "TRADING_CONFIG: liveTrading: true is refused on environment 'test': live trading runs "
        "only on the prod stack; set liveTrading: false here"
    ]


def test_alpaca_modes_need_the_secret_arn_never_a_value(tmp_path):
    env = service_env(["AAPL"], tmp_path / "hb", tradingMode="alpaca-paper")
    assert problems(env) == [
        "BROKER_SECRET_ARN is not set: tradingMode alpaca-paper needs the ARN of a secret "
        'holding {"key_id": ..., "secret_key": ...}'
    ]
    env["BROKER_SECRET_ARN"] = '{"key_id": "AK", "secret_key": "s"}'
    (line,) = problems(env)
    assert line.startswith("BROKER_SECRET_ARN is not a Secrets Manager ARN")
    assert "secret_key" not in line.split("ARN")[1] or '"s"' not in line


def test_bad_trading_config_lines_name_the_key(tmp_path):
    env = service_env(["AAPL"], tmp_path / "hb")
    env["TRADING_CONFIG"] = json.dumps({"strategyParams": {"fast": 9, "slow": 3}})
    assert problems(env) == [
        "TRADING_CONFIG: strategyParams.fast: must be < strategyParams.slow (got 9 >= 3)"
    ]
    env["TRADING_CONFIG"] = "{nope"
    assert problems(env)[0].startswith("TRADING_CONFIG is not JSON")
