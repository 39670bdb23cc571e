"""Wires the strategy service (infra/network.py, infra/service.py) from the stack config.

Kept out of __main__.py so the program stays a thin list of components. Nothing here
is created unless `strategyEnabled` is true.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.artifact import ServiceImage
from infra.config import NAMESPACE, ConfigError, StackConfig
from infra.network import NetworkArgs, ServiceNetwork
from infra.service import ServiceArgs, StrategyService


@dataclass(frozen=True)
class Strategy:
    network: ServiceNetwork
    service: StrategyService


def trading_config_json(cfg: StackConfig) -> str:
    """TRADING_CONFIG: the trading keys as the trading core validated them, every default
    filled in (docs/CONTRACTS.md §9), with the stack's environment."""
    from backend.trading.settings import TradingConfigError, parse_trading_config

    try:
        config = parse_trading_config(dict(cfg.trading_settings), environment=cfg.environment)
    except TradingConfigError as exc:  # load_config refused these already
        raise ConfigError(f"{NAMESPACE}: {exc}") from None
    return config.to_json()


def wire_service(
    cfg: StackConfig,
    image: ServiceImage | None,
    *,
    bucket_name: pulumi.Input[str],
    bucket_arn: pulumi.Input[str],
    market_table_name: pulumi.Input[str],
    market_table_arn: pulumi.Input[str],
    tags: dict[str, str],
) -> Strategy | None:
    if not cfg.strategy_enabled:
        return None
    if image is None:  # infra.artifact.get_image gives one whenever the service is on
        raise ConfigError(f"{NAMESPACE}:strategyEnabled = True: no service image was given")
    names = cfg.names
    trading = trading_config_json(cfg)
    network = ServiceNetwork(
        "service-network",
        NetworkArgs(
            names=names.service,
            mode=cfg.service_network,
            subnet_ids=cfg.service_subnet_ids,
            tags=tags,
        ),
    )
    service = StrategyService(
        "strategy",
        ServiceArgs(
            names=names.service,
            image=image,
            bucket_name=bucket_name,
            bucket_arn=bucket_arn,
            data_prefix=names.data_prefix,
            logs_prefix=names.logs_prefix,
            market_table_name=market_table_name,
            market_table_arn=market_table_arn,
            symbols=cfg.symbols,
            trading_config=trading,
            trading_mode=cfg.trading_mode,
            subnet_ids=network.subnet_ids,
            security_group_id=network.security_group_id,
            assign_public_ip=network.assign_public_ip,
            architecture=cfg.architecture,
            cpu=cfg.task_cpu,
            memory=cfg.task_memory,
            log_retention_days=cfg.log_retention_days,
            log_level=cfg.log_level,
            deletion_protection=cfg.deletion_protection,
            broker_credentials=(cfg.broker_credentials if cfg.trading_mode != "paper" else None),
            kms_key_arn=cfg.kms_key_arn,
            alarm_topic_arn=cfg.alarm_topic_arn,
            tags=tags,
        ),
    )
    pulumi.export("service_image", service.image_uri)
    pulumi.export("service_repository_url", service.repository_url)
    pulumi.export("ecs_cluster", service.cluster_name)
    pulumi.export("ecs_service", service.service_name)
    pulumi.export("task_definition_arn", service.task_definition_arn)
    pulumi.export("ledger_table_name", service.ledger_table_name)
    pulumi.export("service_log_group", service.log_group_name)
    if service.broker_secret_arn is not None:
        pulumi.export("broker_secret_arn", service.broker_secret_arn)
    return Strategy(network=network, service=service)
