"""Physical names per environment (docs/CONTRACTS.md §4), in one place.

Components never invent names: they receive them from here through their Args, so
dev and prod can share one account and one bucket without colliding.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "cloud-trading-bot"
FUNCTION_BASE = "market_data_fetcher"
ALIAS = "live"


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
