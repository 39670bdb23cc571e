"""What the function keeps: its DynamoDB table and its API-key secret.

The secret always exists, so its ARN (never its value) can go in the function's
environment; a version holding the key is added only when `marketDataApiKey` is
set, and its value arrives as a secret Output, so it is encrypted in state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass
class DataArgs:
    table_name: str
    secret_name: str
    deletion_protection: bool = False
    # A secret pulumi.Output[str], or None to create the secret without a value.
    api_key: Any = None
    tags: dict[str, str] = field(default_factory=dict)


class BotData(pulumi.ComponentResource):
    """Outputs: `table_name`, `table_arn`, `secret_arn`."""

    def __init__(self, name: str, args: DataArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cloud-trading-bot:data:BotData", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        table = aws.dynamodb.Table(
            f"{name}-table",
            name=args.table_name,
            # A few writes per schedule tick: on-demand costs nothing while idle.
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}],
            ttl={"attribute_name": "expires_at", "enabled": True},
            point_in_time_recovery={"enabled": True},
            # Encrypted with a KMS key rather than the default DynamoDB-owned key.
            server_side_encryption={"enabled": True},
            deletion_protection_enabled=args.deletion_protection,
            tags=args.tags,
            opts=child,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-api-key",
            name=args.secret_name,
            description="Market data provider API key, read by the function at run time",
            # Protected stacks keep a deleted secret recoverable for the longest window.
            recovery_window_in_days=30 if args.deletion_protection else 7,
            tags=args.tags,
            opts=child,
        )
        if args.api_key is not None:
            aws.secretsmanager.SecretVersion(
                f"{name}-api-key-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(args.api_key),
                opts=child,
            )
        self.table_name = table.name
        self.table_arn = table.arn
        self.secret_arn = secret.arn
        self.register_outputs(
            {
                "table_name": self.table_name,
                "table_arn": self.table_arn,
                "secret_arn": self.secret_arn,
            }
        )
