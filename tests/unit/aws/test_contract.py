"""The Lambda environment contract (docs/CONTRACTS.md §3), two ways: infra/function.py
sets it, backend/settings.py reads it. They must agree, and every value the stack
configuration accepts must be one the runtime accepts."""

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from backend.models import MAX_SYMBOLS
from backend.settings import LOG_LEVELS, PROVIDERS, Settings, SettingsError
from infra import config as infra_config
from infra.function import FunctionArgs, runtime_environment
from infra.names import Names
from tests.runtime_support import lambda_env

ROOT = Path(__file__).resolve().parents[3]
SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    "cloud-trading-bot/dev/market-data-api-key-AbCdEf"
)


class Recording(Mapping[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: Mapping[str, str]):
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def get(self, key, default=None):
        self.read.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def _function_env(cfg) -> dict[str, str]:
    names = cfg.names
    args = FunctionArgs(
        names=names,
        bucket_name=cfg.bucket_name,
        bucket_arn=f"arn:aws:s3:::{cfg.bucket_name}",
        package_key=cfg.lambda_s3_key,
        package_version="v1",
        code_sha256_b64="x",
        table_name=names.table,
        table_arn=f"arn:aws:dynamodb:us-east-1:123456789012:table/{names.table}",
        secret_arn=SECRET_ARN,
        symbols=cfg.symbols,
        market_data_provider=cfg.market_data_provider,
        log_level=cfg.log_level,
    )
    return runtime_environment(args)


def _stack_config(stack: str):
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    prefix = f"{infra_config.NAMESPACE}:"
    values = {k.removeprefix(prefix): v for k, v in raw.items() if k.startswith(prefix)}
    return infra_config.parse_config(values, stack=stack)


def test_infra_and_runtime_name_the_same_variables():
    # WHEN the program builds the function's environment (no value the runtime's
    # default), and the runtime reads it
    overrides = {"marketDataProvider": "fixture", "logLevel": "DEBUG"}
    infra_env = _function_env(infra_config.parse_config(overrides, stack="dev"))
    recording = Recording(infra_env)
    Settings.from_env(recording)
    # THEN the runtime reads every variable the program sets, and no other
    assert recording.read == set(infra_env)
    # AND each one is read for a reason: without it, the runtime refuses or falls back
    for name in infra_env:
        fewer = {k: v for k, v in infra_env.items() if k != name}
        try:
            changed = Settings.from_env(fewer) != Settings.from_env(infra_env)
        except SettingsError:
            changed = True
        assert changed, f"{name} is set by infra but the runtime does not depend on it"


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_each_stacks_environment_is_accepted_by_the_runtime(stack):
    cfg = _stack_config(stack)
    settings = Settings.from_env(_function_env(cfg))
    names = Names.for_env(cfg.environment)
    assert settings.environment == cfg.environment
    assert (settings.data_prefix, settings.logs_prefix) == (names.data_prefix, names.logs_prefix)
    assert settings.table_name == names.table and settings.api_key_secret_arn == SECRET_ARN
    assert settings.symbols == tuple(s.upper() for s in cfg.symbols)
    assert (settings.provider, settings.log_level) == (cfg.market_data_provider, cfg.log_level)


def test_every_choice_the_config_allows_is_one_the_runtime_allows():
    # The config shares the runtime's choice lists (PROVIDERS, LOG_LEVELS); its symbol
    # cap is its own and must stay within the runtime's.
    assert infra_config.MAX_SYMBOLS <= MAX_SYMBOLS
    # The config's longest symbol list, lower case (the config keeps the case given).
    symbols = [f"t{i}.x" for i in range(infra_config.MAX_SYMBOLS)]
    cfg = infra_config.parse_config(
        {"environment": "a-long-env-name1", "symbols": symbols}, stack="x"
    )
    assert len(cfg.symbols) == infra_config.MAX_SYMBOLS
    for provider in PROVIDERS:
        for level in LOG_LEVELS:
            env = _function_env(
                infra_config.parse_config(
                    {
                        "environment": cfg.environment,
                        "symbols": symbols,
                        "marketDataProvider": provider,
                        "logLevel": level,
                    },
                    stack="x",
                )
            )
            assert len(Settings.from_env(env).symbols) == infra_config.MAX_SYMBOLS


def test_the_tests_run_under_the_deployed_contract():
    # tests/runtime_support.lambda_env is what every runtime test and the benchmark use.
    cfg = infra_config.parse_config({"marketDataProvider": "fixture"}, stack="dev")
    expected = _function_env(cfg)
    built = lambda_env(
        environment="dev",
        bucket=cfg.bucket_name,
        table=cfg.names.table,
        secret_arn=SECRET_ARN,
        symbols=cfg.symbols,
        provider="fixture",
        log_level=cfg.log_level,
    )
    assert built == expected
