"""The market-data function: role, log group, function + `live` alias, schedule,
async settings and alarms.

The code comes from an S3 object version, pinned, with the zip's hash, so an S3
update can never leave the function on stale code (docs/DESIGN.md decision 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import parts
from infra.names import ALIAS, Names
from infra.policies import execution_role_policy, lambda_trust_policy

HANDLER = "aws.market_data_fetcher.handler"


@dataclass
class FunctionArgs:
    names: Names
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    package_key: pulumi.Input[str]
    package_version: pulumi.Input[str]
    code_sha256_b64: str
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    symbols: Sequence[str]
    market_data_provider: str = "yfinance"
    runtime: str = "python3.12"
    architecture: str = "x86_64"
    memory_size: int = 512
    timeout: int = 300
    reserved_concurrency: int = 1
    log_retention_days: int = 14
    log_level: str = "INFO"
    schedule: str | None = "cron(0 22 ? * MON-FRI *)"
    max_retry_attempts: int = 1
    max_event_age_seconds: int = 900
    layer_arns: list[pulumi.Input[str]] = field(default_factory=list)
    kms_key_arn: str | None = None
    alarm_topic_arn: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def runtime_environment(args: FunctionArgs) -> dict[str, pulumi.Input[str]]:
    """The environment contract (docs/CONTRACTS.md §3). The secret's ARN, never its value."""
    names = args.names
    return {
        "ENVIRONMENT": names.environment,
        "BUCKET_NAME": args.bucket_name,
        "DATA_PREFIX": names.data_prefix,
        "LOGS_PREFIX": names.logs_prefix,
        "TABLE_NAME": args.table_name,
        "API_KEY_SECRET_ARN": args.secret_arn,
        "SYMBOLS": ",".join(args.symbols),
        "MARKET_DATA_PROVIDER": args.market_data_provider,
        "LOG_LEVEL": args.log_level,
    }


class MarketDataFunction(pulumi.ComponentResource):
    """Outputs: `function_name`, `function_arn`, `version`, `alias_arn`, `role_arn`."""

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cloud-trading-bot:lambda:MarketDataFunction", name, None, opts)
        names = args.names
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        # Created by us, before the function: otherwise Lambda creates it on first
        # run with no retention, and the program would then fail to create it.
        log_group = parts.log_group(
            f"{name}-logs",
            name=names.log_group,
            retention_days=args.log_retention_days,
            tags=tags,
            opts=child,
        )
        role, role_policy = parts.role_with_policy(
            f"{name}-role",
            name=names.role,
            trust_policy=json.dumps(lambda_trust_policy()),
            policy_name=f"{names.function}-least-privilege",
            policy=pulumi.Output.all(
                bucket_arn=args.bucket_arn,
                table_arn=args.table_arn,
                secret_arn=args.secret_arn,
                log_group_arn=log_group.arn,
            ).apply(
                lambda arns: json.dumps(
                    execution_role_policy(
                        data_prefix=names.data_prefix,
                        logs_prefix=names.logs_prefix,
                        kms_key_arn=args.kms_key_arn,
                        **arns,
                    )
                )
            ),
            tags=tags,
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-function",
            name=names.function,
            role=role.arn,
            handler=HANDLER,
            runtime=args.runtime,
            architectures=[args.architecture],
            memory_size=args.memory_size,
            timeout=args.timeout,
            reserved_concurrent_executions=args.reserved_concurrency,
            s3_bucket=args.bucket_name,
            s3_key=args.package_key,
            # Pinned: a newer object at the same key changes nothing until deployed.
            s3_object_version=args.package_version,
            # Lambda's own CodeSha256 of the zip (base64 SHA-256): the provider compares it
            # with what AWS reports, so code changed outside Pulumi shows as drift in
            # `pulumi preview --refresh`. source_code_hash is synthetic (pulumi-aws 7 says
            # out-of-band changes escape it); it stays as the update trigger it always was.
            code_sha256=args.code_sha256_b64,
            source_code_hash=args.code_sha256_b64,
            layers=args.layer_arns,
            publish=True,
            environment={"variables": runtime_environment(args)},
            # Text, not JSON: the platform's START/END/REPORT lines stay plain text, so
            # the seed guide's `filter-log-events --filter-pattern REPORT` finds them (a
            # JSON-format function writes `platform.report` records it cannot match). The
            # runtime's own lines are JSON either way, filtered by LOG_LEVEL in the
            # runtime itself (backend/jsonlog.py), so Lambda-side level filtering, which
            # needs the JSON format, would add nothing.
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tracing_config={"mode": "Active"},
            tags=tags,
            # The role's rights must be in place before the first invocation.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, role_policy]),
        )
        alias = aws.lambda_.Alias(
            f"{name}-alias",
            name=ALIAS,
            function_name=function.name,
            function_version=function.version,
            opts=child,
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-async",
            function_name=function.name,
            qualifier=alias.name,
            maximum_retry_attempts=args.max_retry_attempts,
            # A retry older than this is stale: the next scheduled run fetches anew.
            maximum_event_age_in_seconds=args.max_event_age_seconds,
            opts=child,
        )
        if args.schedule:
            self._schedule(name, args, function, alias, tags)
        self._alarms(name, args, function, tags)

        self.function_name = function.name
        self.function_arn = function.arn
        self.version = function.version
        self.alias_arn = alias.arn
        self.role_arn = role.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "version": self.version,
                "alias_arn": self.alias_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
            }
        )

    def _schedule(
        self,
        name: str,
        args: FunctionArgs,
        function: aws.lambda_.Function,
        alias: aws.lambda_.Alias,
        tags: dict[str, str],
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=args.names.schedule_rule,
            description=f"Runs {args.names.function}:{ALIAS} on {args.schedule}",
            schedule_expression=args.schedule,
            tags=tags,
            opts=child,
        )
        # The alias, not $LATEST: a schedule always runs the deployed, published code.
        aws.cloudwatch.EventTarget(
            f"{name}-schedule-target",
            rule=rule.name,
            target_id="live-alias",
            arn=alias.arn,
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-schedule-permission",
            statement_id="AllowScheduleInvoke",
            action="lambda:InvokeFunction",
            function=function.name,
            qualifier=alias.name,
            principal="events.amazonaws.com",
            # Only this rule may invoke: no other EventBridge rule, in any account.
            source_arn=rule.arn,
            opts=child,
        )

    def _alarms(
        self, name: str, args: FunctionArgs, function: aws.lambda_.Function, tags: dict[str, str]
    ) -> None:
        for metric in ("Errors", "Throttles"):
            # No invocation between two scheduled runs is normal, not an alarm.
            parts.count_alarm(
                f"{name}-{metric.lower()}-alarm",
                name=f"{args.names.function}-{metric.lower()}",
                description=f"{args.names.function} reported {metric} in 5 minutes",
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions={"FunctionName": function.name},
                topic_arn=args.alarm_topic_arn,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
