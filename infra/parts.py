"""Resources that more than one component creates the same way: a log group, a role
with its one inline policy, and an alarm on a count. Each takes the caller's child
options (`parent=` the component), so the resources stay the component's children.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws


def log_group(
    resource_name: str,
    *,
    name: pulumi.Input[str],
    retention_days: int,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.LogGroup:
    """A log group with a retention: created by us, so it never lives forever."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=name,
        retention_in_days=retention_days,
        tags=dict(tags),
        opts=opts,
    )


def role_with_policy(
    resource_name: str,
    *,
    name: str,
    trust_policy: pulumi.Input[str],
    policy_name: str,
    policy: pulumi.Input[str],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """A role and its inline policy (`<resource_name>-policy`). Callers that must wait
    for the role's rights depend on the policy, not the role: the role exists first."""
    role = aws.iam.Role(
        resource_name,
        name=name,
        assume_role_policy=trust_policy,
        tags=dict(tags),
        opts=opts,
    )
    role_policy = aws.iam.RolePolicy(
        f"{resource_name}-policy",
        name=policy_name,
        role=role.id,
        policy=policy,
        opts=opts,
    )
    return role, role_policy


def alarm_actions(topic_arn: str | None) -> list[str]:
    """Where an alarm's state changes go: the topic, or nowhere."""
    return [topic_arn] if topic_arn else []


def count_alarm(
    resource_name: str,
    *,
    name: pulumi.Input[str],
    description: pulumi.Input[str],
    namespace: pulumi.Input[str],
    metric_name: str,
    topic_arn: str | None,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    dimensions: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
) -> aws.cloudwatch.MetricAlarm:
    """Alarms when the metric's sum over 5 minutes is at least 1. No data is not an
    alarm: these count failures, and a quiet spell has none to count."""
    actions = alarm_actions(topic_arn)
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=name,
        alarm_description=description,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        statistic="Sum",
        period=300,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=actions,
        ok_actions=actions,
        tags=dict(tags),
        opts=opts,
    )
