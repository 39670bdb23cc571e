"""parse_trading_config: the one validator of the trading keys (issue 12 section 5)."""

import json

import pytest

from backend.trading.settings import (
    TradingConfigError,
    parse_trading_config,
    risk_limit_keys,
)


def problems(raw, **kwargs):
    with pytest.raises(TradingConfigError) as err:
        parse_trading_config(raw, **kwargs)
    return err.value.problems


def test_defaults_are_paper_sma_crossover_on_daily_bars():
    config = parse_trading_config({"environment": "dev"})
    assert config.strategy == "sma_crossover"
    assert dict(config.strategy_params) == {"fast": 20, "slow": 50}
    assert config.trading_mode == "paper" and config.live_trading is False
    assert config.bar_interval == "1d"
    assert config.risk.allow_short is False


def test_unknown_strategy_is_one_line_naming_the_key_with_a_suggestion():
    assert problems({"environment": "dev", "strategy": "sma_crosover"}) == [
        "strategy: unknown strategy 'sma_crosover' (did you mean 'sma_crossover'?); "
        "use one of sma_crossover, rsi_mean_reversion"
    ]


def test_fast_window_not_below_slow_names_both_keys_and_values():
    assert problems({"environment": "dev", "strategyParams": {"fast": 30, "slow": 20}}) == [
        "strategyParams.fast: must be < strategyParams.slow (got 30 >= 20)"
    ]


def test_oversold_not_below_overbought():
    raw = {"environment": "dev", "strategy": "rsi_mean_reversion"}
    raw["strategyParams"] = {"oversold": 70, "overbought": 60}
    assert problems(raw) == [
        "strategyParams.oversold: must be < strategyParams.overbought (got 70 >= 60)"
    ]


def test_negative_limits_each_name_their_key_all_at_once():
    raw = {
        "environment": "dev",
        "riskLimits": {"maxPositionNotional": -5, "maxDailyLossPct": -1, "maxStaleBars": 1.5},
    }
    assert problems(raw) == [
        "riskLimits.maxPositionNotional: must not be negative (got -5)",
        "riskLimits.maxDailyLossPct: must not be negative (got -1)",
        "riskLimits.maxStaleBars: must be a whole number, got 1.5",
    ]


def test_live_switch_on_dev_is_refused():
    raw = {"environment": "dev", "tradingMode": "alpaca-live", "liveTrading": True}
    assert problems(raw) == [
        "liveTrading: true is refused on environment 'dev': live trading runs only on the "
        "prod stack; set liveTrading: false here"
    ]


def test_live_mode_needs_the_explicit_switch_even_on_prod():
    assert problems({"environment": "prod", "tradingMode": "alpaca-live"}) == [
        "tradingMode: alpaca-live needs liveTrading: true (the explicit live switch, allowed "
        "only on prod); use alpaca-paper to trade on paper"
    ]
    config = parse_trading_config(
        {"environment": "prod", "tradingMode": "alpaca-live", "liveTrading": True}
    )
    assert config.trading_mode == "alpaca-live" and config.live_trading


def test_live_switch_without_live_mode_is_refused():
    assert problems({"environment": "prod", "liveTrading": "true"}) == [
        "liveTrading: true, but tradingMode is 'paper': set tradingMode: alpaca-live to "
        "trade live, or liveTrading: false"
    ]


def test_unknown_parameter_and_limit_keys_are_named():
    raw = {
        "environment": "dev",
        "strategyParams": {"fastt": 5},
        "riskLimits": {"maxOpenPosition": 3},
    }
    assert problems(raw) == [
        "strategyParams.fastt: unknown parameter of sma_crossover (did you mean 'fast'?); "
        "its parameters are fast, slow",
        "riskLimits.maxOpenPosition: unknown limit (did you mean 'maxOpenPositions'?); "
        f"the limits are {', '.join(risk_limit_keys())}",
    ]


def test_values_as_the_pulumi_cli_passes_them_are_decoded():
    """pulumi.Config hands every value over as a string: JSON for objects."""
    raw = {
        "environment": "prod",
        "strategy": "rsi_mean_reversion",
        "strategyParams": json.dumps({"period": 10}),
        "riskLimits": json.dumps({"allowShort": True, "maxOpenPositions": 4}),
        "tradingMode": "alpaca-live",
        "liveTrading": "true",
        "paperCash": "25000",
        "memorySize": "512",  # other stack keys are ignored
    }
    config = parse_trading_config(raw)
    assert config.strategy_params["period"] == 10
    assert config.risk.allow_short is True and config.risk.max_open_positions == 4
    assert config.paper_cash == 25_000.0


def test_every_problem_is_reported_at_once():
    raw = {
        "strategy": "nope",
        "barInterval": "1h",
        "tradingMode": "live",
        "paperCash": 0,
        "riskLimits": "[1]",
    }
    lines = problems(raw)
    assert [line.split(":")[0] for line in lines] == [
        "environment",
        "strategy",
        "barInterval",
        "riskLimits",
        "tradingMode",
        "paperCash",
    ]


def test_to_raw_round_trips_and_is_canonical_json():
    config = parse_trading_config(
        {"environment": "dev", "strategyParams": {"fast": 5}, "riskLimits": {"allowShort": True}}
    )
    assert parse_trading_config(config.to_raw()) == config
    assert parse_trading_config(json.loads(config.to_json())) == config
    assert json.loads(config.to_json())["riskLimits"]["allowShort"] is True


def test_environment_argument_stands_in_for_a_computed_environment():
    assert parse_trading_config({"environment": ""}, environment="dev").environment == "dev"
    assert problems({"liveTrading": True, "tradingMode": "alpaca-live"}, environment="dev")
