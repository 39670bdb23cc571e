"""The strategy service on ECS Fargate: its image in ECR, cluster, task definition,
service, ledger table, broker secret, roles and alarms (docs/service.md).

One task, always: the service is the ledger's only writer, so a deployment stops the
old task before it starts the new one (minimum healthy 0 %, maximum 100 %); a new
revision that never becomes healthy is rolled back by the deployment circuit breaker.
The task definition names the image by digest, and the image is pushed by the
ImageRelease resource (infra/image_release.py) only when its digest changes: an
unchanged deploy registers no revision and restarts nothing.

The component takes a built image (digest + blobs), never a source directory, and
never builds. Where the task runs (subnets, security group) comes from ServiceNetwork
(infra/network.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import parts
from infra.artifact import TMP_VOLUME, ServiceImage
from infra.image_release import ImageRelease, ImageReleaseArgs
from infra.names import ServiceNames
from infra.policies import (
    ecs_tasks_trust_policy,
    events_to_logs_policy,
    parse_arn,
    task_execution_policy,
    task_role_policy,
)

# The image's user (lambda_pkg.image.build.USER, distroless' "nonroot"); set again here
# so the task runs non-root even on an image built elsewhere.
USER = "65532:65532"
# The service finishes its step and exits within 25 s of SIGTERM (docs/CONTRACTS.md §10),
# so ECS must wait at least 30 s before SIGKILL; 45 s leaves room for a slow broker call.
STOP_TIMEOUT = 45
HEARTBEAT_FILE = f"{TMP_VOLUME}/ctb/heartbeat.json"
TMP_VOLUME_NAME = "tmp"
# The health check (python -m backend.service health) fails until the first step has
# written its heartbeat: imports, the exchange calendar and a first step on 0.25 vCPU
# take well under a minute, so 240 s of grace (ECS allows at most 300) is ample.
HEALTH_CHECK = {
    "command": ["CMD", "python", "-m", "backend.service", "health"],
    "interval": 30,
    "timeout": 10,
    "retries": 3,
    "startPeriod": 240,
}
CPU_ARCHITECTURES = {"x86_64": "X86_64", "arm64": "ARM64"}
# A stopped task is unexpected unless ECS stopped it for a deployment or scaling
# (ServiceSchedulerInitiated), or a person did (UserInitiated): the container exited on
# its own, the task never started, or ECS replaced it after failed health checks.
UNEXPECTED_STOP_CODES = ("EssentialContainerExited", "TaskFailedToStart")
HEALTH_CHECK_STOP = "Task failed container health checks"
STOP_METRIC = "UnexpectedTaskStops"
# A deployment stops the old task before the new one runs: a minute or two at zero is a
# deploy, five minutes is an outage.
RUNNING_ALARM_MINUTES = 5


@dataclass
class ServiceArgs:
    names: ServiceNames
    image: ServiceImage
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    data_prefix: str
    logs_prefix: str
    market_table_name: pulumi.Input[str]
    market_table_arn: pulumi.Input[str]
    symbols: Sequence[str]
    # backend.trading.settings.TradingConfig.to_json(): what TRADING_CONFIG carries.
    trading_config: str
    trading_mode: str
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    assign_public_ip: bool = False
    architecture: str = "x86_64"
    cpu: int = 256
    memory: int = 512
    log_retention_days: int = 365
    log_level: str = "INFO"
    deletion_protection: bool = False
    # A secret pulumi.Output of the broker keys' JSON, or None (set out of band).
    broker_credentials: Any = None
    kms_key_arn: str | None = None
    alarm_topic_arn: str | None = None
    # The rollback window: the newest images kept in the repository.
    images_kept: int = 10
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def needs_broker_secret(self) -> bool:
        return self.trading_mode != "paper"


def _validate(args: ServiceArgs) -> None:
    # infra.config refuses these already; checked again before anything is registered.
    if args.architecture not in CPU_ARCHITECTURES:
        raise ValueError(f"architecture {args.architecture!r}: x86_64 or arm64")
    if args.image.architecture != args.architecture:
        raise ValueError(
            f"image {args.image.digest} is for {args.image.architecture}, "
            f"the task for {args.architecture}"
        )
    if args.broker_credentials is not None and not args.needs_broker_secret:
        raise ValueError("broker credentials are only used in the alpaca trading modes")
    if not 1 <= args.images_kept <= 1000:
        raise ValueError(f"images_kept {args.images_kept}: from 1 to 1000")


def task_environment(
    args: ServiceArgs,
    *,
    ledger_table: pulumi.Input[str],
    broker_secret_arn: pulumi.Input[str] | None,
) -> list[dict[str, pulumi.Input[str]]]:
    """The service's environment, exactly docs/CONTRACTS.md §10's: names and ARNs, never
    a secret's value. Sorted by name, so the task definition's text is stable."""
    env: dict[str, pulumi.Input[str]] = {
        "ENVIRONMENT": args.names.environment,
        "BUCKET_NAME": args.bucket_name,
        "DATA_PREFIX": args.data_prefix,
        "LOGS_PREFIX": args.logs_prefix,
        "MARKET_DATA_TABLE": args.market_table_name,
        "LEDGER_TABLE": ledger_table,
        "SYMBOLS": ",".join(args.symbols),
        "TRADING_CONFIG": args.trading_config,
        "HEARTBEAT_FILE": HEARTBEAT_FILE,
        "LOG_LEVEL": args.log_level,
    }
    if broker_secret_arn is not None:
        env["BROKER_SECRET_ARN"] = broker_secret_arn
    return [{"name": key, "value": env[key]} for key in sorted(env)]


def lifecycle_policy(images_kept: int) -> dict[str, Any]:
    """Expire all but the newest N images, tagged or not (FSBP ECR.3)."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the newest {images_kept} images (the rollback window)",
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": images_kept,
                },
                "action": {"type": "expire"},
            }
        ]
    }


def stop_event_pattern(cluster_arn: str, service: str) -> dict[str, Any]:
    """ECS's task state change events for this service's tasks that stopped unexpectedly."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "group": [f"service:{service}"],
            "lastStatus": ["STOPPED"],
            "$or": [
                {"stopCode": list(UNEXPECTED_STOP_CODES)},
                {"stoppedReason": [{"prefix": HEALTH_CHECK_STOP}]},
            ],
        },
    }


class StrategyService(pulumi.ComponentResource):
    """Outputs: `repository_url`, `image_uri`, `cluster_name`, `service_name`,
    `task_definition_arn`, `ledger_table_name`, `ledger_table_arn`, `broker_secret_arn`
    (None in paper mode), `task_role_arn`, `execution_role_arn`, `log_group_name`."""

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _validate(args)
        super().__init__("cloud-trading-bot:service:StrategyService", name, None, opts)
        self._name, self._args = name, args
        self._tags = dict(args.tags)
        names = args.names
        child = pulumi.ResourceOptions(parent=self)

        repository = self._repository()
        release = ImageRelease(
            f"{name}-image",
            ImageReleaseArgs(repository_url=repository.repository_url, image=args.image),
            # The lifecycle rule first: an image is never pushed to an unmanaged repository.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._lifecycle]),
        )
        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            name=names.cluster,
            settings=[{"name": "containerInsights", "value": "enabled"}],  # FSBP ECS.12
            tags=self._tags,
            opts=child,
        )
        log_group = parts.log_group(
            f"{name}-logs",
            name=names.log_group,
            retention_days=args.log_retention_days,
            tags=self._tags,
            opts=child,
        )
        ledger = self._ledger()
        secret = self._broker_secret() if args.needs_broker_secret else None
        secret_arn = secret.arn if secret is not None else None
        task_role, task_policy = self._task_role(cluster, ledger, secret_arn)
        execution_role, execution_policy = self._execution_role(repository, log_group)

        environment = task_environment(args, ledger_table=ledger.name, broker_secret_arn=secret_arn)
        container = {
            "name": names.container,
            "image": release.image_uri,
            "essential": True,
            "user": USER,
            "readonlyRootFilesystem": True,  # FSBP ECS.5
            "privileged": False,  # FSBP ECS.4
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
            "mountPoints": [
                {"sourceVolume": TMP_VOLUME_NAME, "containerPath": TMP_VOLUME, "readOnly": False}
            ],
            "environment": environment,
            "healthCheck": HEALTH_CHECK,
            "stopTimeout": STOP_TIMEOUT,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group.name,
                    "awslogs-region": log_group.arn.apply(lambda arn: parse_arn(arn)[1]),
                    "awslogs-stream-prefix": names.container,
                    # A full log buffer must never block the trading loop.
                    "mode": "non-blocking",
                    "max-buffer-size": "4m",
                },
            },
        }
        task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=names.task_family,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.cpu),
            memory=str(args.memory),
            runtime_platform={
                "operating_system_family": "LINUX",
                "cpu_architecture": CPU_ARCHITECTURES[args.architecture],
            },
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            # A bind mount on the task's ephemeral storage: the one writable place
            # (the heartbeat, HOME); it takes the image's VOLUME /tmp and its mode.
            volumes=[{"name": TMP_VOLUME_NAME}],
            container_definitions=pulumi.Output.json_dumps([container], sort_keys=True),
            # Keep the previous revision ACTIVE when a new one replaces it: rolling back
            # is pointing the service at it (docs/service.md, "Rolling back").
            skip_destroy=True,
            tags=self._tags,
            opts=child,
        )
        service = aws.ecs.Service(
            f"{name}-service",
            name=names.service,
            cluster=cluster.arn,
            task_definition=task.arn,
            launch_type="FARGATE",
            platform_version="LATEST",
            desired_count=1,
            # The ledger's single writer: never two tasks at once, even mid-deployment.
            deployment_minimum_healthy_percent=0,
            deployment_maximum_percent=100,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            network_configuration={
                "subnets": args.subnet_ids,
                "security_groups": [args.security_group_id],
                # Only the public-ip network asks for one (FSBP ECS.2).
                "assign_public_ip": args.assign_public_ip,
            },
            # No shell into a task that holds broker credentials.
            enable_execute_command=False,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            # `pulumi up` returns once the new task runs (or fails after ECS gave up).
            wait_for_steady_state=True,
            tags=self._tags,
            # The task's rights and its log group exist before it starts.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[task_policy, execution_policy, log_group]
            ),
        )
        self._alarms(cluster, service)

        self.repository_url = repository.repository_url
        self.image_uri = release.image_uri
        self.cluster_name = cluster.name
        self.service_name = service.name
        self.task_definition_arn = task.arn
        self.ledger_table_name = ledger.name
        self.ledger_table_arn = ledger.arn
        self.broker_secret_arn = secret_arn
        self.task_role_arn = task_role.arn
        self.execution_role_arn = execution_role.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "image_uri": self.image_uri,
                "cluster_name": self.cluster_name,
                "service_name": self.service_name,
                "task_definition_arn": self.task_definition_arn,
                "ledger_table_name": self.ledger_table_name,
                "ledger_table_arn": self.ledger_table_arn,
                "broker_secret_arn": self.broker_secret_arn,
                "task_role_arn": self.task_role_arn,
                "execution_role_arn": self.execution_role_arn,
                "log_group_name": self.log_group_name,
            }
        )

    def _repository(self) -> aws.ecr.Repository:
        args, name = self._args, self._name
        encryption: aws.ecr.RepositoryEncryptionConfigurationArgsDict = (
            {"encryption_type": "KMS", "kms_key": args.kms_key_arn}
            if args.kms_key_arn
            else {"encryption_type": "AES256"}
        )
        repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.names.repository,
            image_tag_mutability="IMMUTABLE",  # FSBP ECR.2
            image_scanning_configuration={"scan_on_push": True},  # FSBP ECR.1
            encryption_configurations=[encryption],
            # The images are rebuilt from the sources; a destroyed stack leaves none behind.
            force_delete=True,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._lifecycle = aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(args.images_kept), sort_keys=True),  # FSBP ECR.3
            opts=pulumi.ResourceOptions(parent=self),
        )
        return repository

    def _ledger(self) -> aws.dynamodb.Table:
        args = self._args
        return aws.dynamodb.Table(
            f"{self._name}-ledger",
            name=args.names.ledger_table,
            # A few writes per trading day: on-demand costs nothing while idle.
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}],
            # No TTL: money is never expired (docs/CONTRACTS.md §10).
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True},
            deletion_protection_enabled=args.deletion_protection,
            tags=self._tags,
            # Orders, fills and positions outlive the stack: `pulumi destroy` leaves the
            # table (recreating the stack then needs `pulumi import`, docs/service.md).
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _broker_secret(self) -> aws.secretsmanager.Secret:
        args = self._args
        secret = aws.secretsmanager.Secret(
            f"{self._name}-broker-secret",
            name=args.names.broker_secret,
            description='Alpaca keys for the strategy service: JSON {"key_id", "secret_key"}',
            recovery_window_in_days=30 if args.deletion_protection else 7,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.broker_credentials is not None:
            aws.secretsmanager.SecretVersion(
                f"{self._name}-broker-secret-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(args.broker_credentials),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return secret

    def _task_role(
        self,
        cluster: aws.ecs.Cluster,
        ledger: aws.dynamodb.Table,
        secret_arn: pulumi.Output[str] | None,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        args, names = self._args, self._args.names

        def trust(cluster_arn: str) -> str:
            partition, region, account = parse_arn(cluster_arn)
            return json.dumps(
                ecs_tasks_trust_policy(
                    source_account=account,
                    source_arn=f"arn:{partition}:ecs:{region}:{account}:*",
                )
            )

        return parts.role_with_policy(
            f"{self._name}-task-role",
            name=names.task_role,
            trust_policy=cluster.arn.apply(trust),
            policy_name=f"{names.service}-least-privilege",
            policy=pulumi.Output.all(
                bucket_arn=args.bucket_arn,
                market_table_arn=args.market_table_arn,
                ledger_table_arn=ledger.arn,
                broker_secret_arn=secret_arn,
            ).apply(
                lambda arns: json.dumps(
                    task_role_policy(
                        data_prefix=args.data_prefix,
                        decisions_prefix=names.decisions_prefix,
                        kms_key_arn=args.kms_key_arn,
                        **arns,
                    )
                )
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _execution_role(
        self, repository: aws.ecr.Repository, log_group: aws.cloudwatch.LogGroup
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        names = self._args.names
        # The execution role is assumed by ECS itself for every task it starts; AWS's
        # documented trust for it names the service alone.
        return parts.role_with_policy(
            f"{self._name}-execution-role",
            name=names.execution_role,
            trust_policy=json.dumps(ecs_tasks_trust_policy()),
            policy_name=f"{names.service}-pull-and-log",
            policy=pulumi.Output.all(repository.arn, log_group.arn).apply(
                lambda arns: json.dumps(
                    task_execution_policy(repository_arn=arns[0], log_group_arn=arns[1])
                )
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _alarms(self, cluster: aws.ecs.Cluster, service: aws.ecs.Service) -> None:
        args, names, name = self._args, self._args.names, self._name
        child = pulumi.ResourceOptions(parent=self)
        actions = parts.alarm_actions(args.alarm_topic_arn)
        aws.cloudwatch.MetricAlarm(
            f"{name}-running-alarm",
            name=names.running_alarm,
            alarm_description=(
                f"No task of {names.service} has run for {RUNNING_ALARM_MINUTES} minutes "
                "(Container Insights RunningTaskCount)"
            ),
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions={"ClusterName": cluster.name, "ServiceName": service.name},
            statistic="Maximum",
            period=60,
            evaluation_periods=RUNNING_ALARM_MINUTES,
            datapoints_to_alarm=RUNNING_ALARM_MINUTES,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # No metric at all means no task reporting: an outage, not a quiet night.
            treat_missing_data="breaching",
            alarm_actions=actions,
            ok_actions=actions,
            tags=self._tags,
            opts=child,
        )
        # Unexpected stops: EventBridge matches them and writes each event to a log group
        # (the stop reason, kept for the log retention); a metric filter counts them.
        rule = aws.cloudwatch.EventRule(
            f"{name}-stop-events",
            name=names.stop_rule,
            description=f"Tasks of {names.service} that stopped unexpectedly",
            event_pattern=cluster.arn.apply(
                lambda arn: json.dumps(stop_event_pattern(arn, names.service), sort_keys=True)
            ),
            tags=self._tags,
            opts=child,
        )
        log_group = parts.log_group(
            f"{name}-stop-log",
            name=names.stop_log_group,
            retention_days=args.log_retention_days,
            tags=self._tags,
            opts=child,
        )
        log_policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-stop-log-policy",
            policy_name=names.stop_log_policy,
            policy_document=pulumi.Output.all(log_group.arn, rule.arn).apply(
                lambda arns: json.dumps(
                    events_to_logs_policy(log_group_arn=arns[0], rule_arn=arns[1])
                )
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-stop-target",
            rule=rule.name,
            target_id="stop-log",
            arn=log_group.arn,
            # EventBridge may write only once the log group allows it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_policy]),
        )
        aws.cloudwatch.LogMetricFilter(
            f"{name}-stop-metric",
            name=f"{names.service}-unexpected-stops",
            log_group_name=log_group.name,
            pattern='{ $.detail.lastStatus = "STOPPED" }',
            metric_transformation={
                "name": STOP_METRIC,
                "namespace": names.metric_namespace,
                "value": "1",
                "unit": "Count",
            },
            opts=child,
        )
        # No stop is no data, and that is good news.
        parts.count_alarm(
            f"{name}-stops-alarm",
            name=names.stops_alarm,
            description=(
                f"A task of {names.service} stopped unexpectedly (it exited, failed to start "
                f"or failed its health checks); the event is in {names.stop_log_group}"
            ),
            namespace=names.metric_namespace,
            metric_name=STOP_METRIC,
            topic_arn=args.alarm_topic_arn,
            tags=self._tags,
            opts=child,
        )
