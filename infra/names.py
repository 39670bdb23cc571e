"""Physical names per environment (docs/CONTRACTS.md §4), in one place.

Components never invent names: they receive them from here through their Args, so
dev and prod can share one account and one bucket without colliding.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "cloud-trading-bot"
FUNCTION_BASE = "market_data_fetcher"
ALIAS = "live"
SERVICE_BASE = "strategy"
# The one container of the service's task (its logs' stream prefix too).
CONTAINER = "strategy"


@dataclass(frozen=True)
class Names:
    environment: str
    function: str
    role: str
    log_group: str
    table: str
    secret: str
    layer: str
    schedule_rule: str
    data_prefix: str
    logs_prefix: str

    @property
    def service(self) -> ServiceNames:
        return ServiceNames.for_env(self.environment)

    @classmethod
    def for_env(cls, env: str) -> Names:
        function = f"{FUNCTION_BASE}-{env}"
        return cls(
            environment=env,
            function=function,
            role=f"{function}-role",
            log_group=f"/aws/lambda/{function}",
            table=f"{PROJECT}-{env}-market-data",
            secret=f"{PROJECT}/{env}/market-data-api-key",
            layer=f"{function}-deps",
            schedule_rule=f"{function}-schedule",
            data_prefix=f"data/{env}/",
            logs_prefix=f"logs/{env}/",
        )


@dataclass(frozen=True)
class ServiceNames:
    """The strategy service's names (docs/CONTRACTS.md §4): its own repository, cluster,
    roles, log groups and tables, so dev and prod never share one."""

    environment: str
    repository: str
    cluster: str
    service: str
    task_family: str
    container: str
    task_role: str
    execution_role: str
    log_group: str
    ledger_table: str
    broker_secret: str
    stop_rule: str
    stop_log_group: str
    stop_log_policy: str
    running_alarm: str
    stops_alarm: str
    metric_namespace: str
    network: str
    task_security_group: str
    endpoint_security_group: str
    decisions_prefix: str

    @classmethod
    def for_env(cls, env: str) -> ServiceNames:
        service = f"{SERVICE_BASE}-{env}"
        return cls(
            environment=env,
            repository=f"{PROJECT}/{env}/{SERVICE_BASE}",
            cluster=f"{PROJECT}-{env}",
            service=service,
            task_family=service,
            container=CONTAINER,
            task_role=f"{service}-task-role",
            execution_role=f"{service}-execution-role",
            log_group=f"/ecs/{service}",
            ledger_table=f"{PROJECT}-{env}-ledger",
            broker_secret=f"{PROJECT}/{env}/broker",
            stop_rule=f"{service}-unexpected-stops",
            # EventBridge's console only offers log groups under /aws/events/ as targets.
            stop_log_group=f"/aws/events/{service}-stops",
            stop_log_policy=f"{service}-stop-events",
            running_alarm=f"{service}-running-tasks",
            stops_alarm=f"{service}-unexpected-stops",
            metric_namespace=f"{PROJECT}/{env}",
            network=f"{PROJECT}-{env}-service",
            task_security_group=f"{service}-task",
            endpoint_security_group=f"{service}-endpoints",
            # Where the service writes its decision records (docs/CONTRACTS.md §10).
            decisions_prefix=f"logs/{env}/strategy/",
        )


def layer_prefix(env: str) -> str:
    """The dependency layer's folder. Fixed per environment (docs/CONTRACTS.md §4), so
    it is outside the package key's folder when `lambdaS3Key` names another one."""
    return f"lambda/{env}/layers/"


def layer_key(env: str, layer_sha256: str) -> str:
    # Content-addressed, so a dependency change is a new object (and a new layer
    # version) while a code-only deploy leaves the layer untouched.
    return f"{layer_prefix(env)}dependencies-{layer_sha256[:16]}.zip"


def default_lambda_s3_key(env: str) -> str:
    return f"lambda/{env}/lambda_deployment.zip"
