"""IAM, CloudWatch Logs, DynamoDB, Secrets Manager, EventBridge and alarms."""

from __future__ import annotations

from typing import Any

from infra.rehearsal.clients import EmulatorClients, Handler, IdAndOutputs, Inputs, autoname
from infra.rehearsal.shapes import given, json_document, number, require, tags, to_aws


def role(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "assumeRolePolicy")
    role_name = inputs.get("name") or autoname(inputs.get("namePrefix") or name)
    kwargs: dict[str, Any] = {
        "RoleName": role_name,
        "AssumeRolePolicyDocument": json_document("assumeRolePolicy", inputs["assumeRolePolicy"]),
        **to_aws(
            given(
                inputs,
                Path="path",
                Description="description",
                MaxSessionDuration="maxSessionDuration",
                PermissionsBoundary="permissionsBoundary",
            )
        ),
    }
    kwargs.update(tags(inputs))
    iam = aws.client("iam")
    created = iam.create_role(**kwargs)["Role"]
    for attached in inputs.get("managedPolicyArns") or []:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=attached)
    for inline in inputs.get("inlinePolicies") or []:
        if inline.get("name") and inline.get("policy"):
            iam.put_role_policy(
                RoleName=role_name,
                PolicyName=inline["name"],
                PolicyDocument=json_document("inlinePolicies.policy", inline["policy"]),
            )
    return role_name, {
        "name": role_name,
        "arn": created["Arn"],
        "uniqueId": created["RoleId"],
        "createDate": str(created["CreateDate"]),
    }


def role_policy(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "role", "policy")
    policy_name = inputs.get("name") or autoname(inputs.get("namePrefix") or name)
    aws.client("iam").put_role_policy(
        RoleName=inputs["role"],
        PolicyName=policy_name,
        PolicyDocument=json_document("policy", inputs["policy"]),
    )
    return f"{inputs['role']}:{policy_name}", {"name": policy_name}


def log_group(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    group = inputs.get("name") or autoname(inputs.get("namePrefix") or name)
    kwargs = {
        "logGroupName": group,
        **given(inputs, kmsKeyId="kmsKeyId", logGroupClass="logGroupClass"),
    }
    if inputs.get("tags"):
        kwargs["tags"] = dict(inputs["tags"])
    logs = aws.client("logs")
    logs.create_log_group(**kwargs)
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(
            logGroupName=group, retentionInDays=number(inputs["retentionInDays"])
        )
    return group, {"name": group, "arn": aws.arn("logs", f"log-group:{group}")}


def table(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "hashKey", "attributes")
    table_name = inputs.get("name") or autoname(name)
    schema = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
    if inputs.get("rangeKey"):
        schema.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
    billing = inputs.get("billingMode") or "PROVISIONED"
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": schema,
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]
        ],
        "BillingMode": billing,
        "DeletionProtectionEnabled": bool(inputs.get("deletionProtectionEnabled")),
    }
    if billing == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": number(inputs.get("readCapacity") or 1),
            "WriteCapacityUnits": number(inputs.get("writeCapacity") or 1),
        }
    sse = inputs.get("serverSideEncryption") or {}
    if sse.get("enabled"):
        kwargs["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
        if sse.get("kmsKeyArn"):
            kwargs["SSESpecification"]["KMSMasterKeyId"] = sse["kmsKeyArn"]
    if inputs.get("streamEnabled"):
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": inputs.get("streamViewType") or "NEW_AND_OLD_IMAGES",
        }
    if inputs.get("globalSecondaryIndexes"):
        raise ValueError("globalSecondaryIndexes are not rehearsed yet; add them to the engine")
    kwargs.update(tags(inputs))
    ddb = aws.client("dynamodb")
    created = ddb.create_table(**kwargs)["TableDescription"]
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        ddb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
        )
    if (inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        ddb.update_continuous_backups(
            TableName=table_name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return table_name, {
        "name": table_name,
        "arn": created["TableArn"],
        "streamArn": created.get("LatestStreamArn", ""),
    }


def secret(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    secret_name = inputs.get("name") or autoname(inputs.get("namePrefix") or name)
    kwargs = {"Name": secret_name, **given(inputs, Description="description", KmsKeyId="kmsKeyId")}
    kwargs.update(tags(inputs))
    arn = aws.client("secretsmanager").create_secret(**kwargs)["ARN"]
    return arn, {"name": secret_name, "arn": arn}


def secret_version(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "secretId")
    kwargs: dict[str, Any] = {"SecretId": inputs["secretId"]}
    if inputs.get("secretString") is not None:
        kwargs["SecretString"] = inputs["secretString"]
    elif inputs.get("secretBinary") is not None:
        kwargs["SecretBinary"] = inputs["secretBinary"]
    else:
        raise ValueError("neither secretString nor secretBinary is set")
    kwargs.update(given(inputs, VersionStages="versionStages"))
    put = aws.client("secretsmanager").put_secret_value(**kwargs)
    # The value itself never goes into the outputs: Pulumi keeps it in the
    # (encrypted) inputs, and the summary must not print it.
    return f"{put['ARN']}|{put['VersionId']}", {"arn": put["ARN"], "versionId": put["VersionId"]}


def event_rule(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    if not inputs.get("scheduleExpression") and not inputs.get("eventPattern"):
        raise ValueError("an EventRule needs scheduleExpression or eventPattern")
    rule_name = inputs.get("name") or autoname(inputs.get("namePrefix") or name)
    state = inputs.get("state") or ("DISABLED" if inputs.get("isEnabled") is False else "ENABLED")
    kwargs = {"Name": rule_name, "State": state, **given(
        inputs, ScheduleExpression="scheduleExpression", EventPattern="eventPattern",
        Description="description", RoleArn="roleArn", EventBusName="eventBusName",
    )}  # fmt: skip
    kwargs.update(tags(inputs))
    arn = aws.client("events").put_rule(**kwargs)["RuleArn"]
    return rule_name, {"name": rule_name, "arn": arn}


def event_target(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "rule", "arn")
    target_id = inputs.get("targetId") or autoname(name)
    target = {
        "Id": target_id,
        "Arn": inputs["arn"],
        **given(inputs, Input="input", InputPath="inputPath", RoleArn="roleArn"),
        **to_aws(given(inputs, RetryPolicy="retryPolicy", DeadLetterConfig="deadLetterConfig")),
    }
    kwargs = {
        "Rule": inputs["rule"],
        "Targets": [target],
        **given(inputs, EventBusName="eventBusName"),
    }
    result = aws.client("events").put_targets(**kwargs)
    if result.get("FailedEntryCount"):
        raise ValueError(f"put_targets failed: {result.get('FailedEntries')}")
    return f"{inputs['rule']}-{target_id}", {"targetId": target_id}


def metric_alarm(aws: EmulatorClients, name: str, inputs: Inputs) -> IdAndOutputs:
    require(inputs, "comparisonOperator", "evaluationPeriods")
    alarm_name = inputs.get("name") or autoname(name)
    kwargs: dict[str, Any] = {
        "AlarmName": alarm_name,
        "ComparisonOperator": inputs["comparisonOperator"],
        "EvaluationPeriods": number(inputs["evaluationPeriods"]),
        **to_aws(
            given(
                inputs,
                MetricName="metricName",
                Namespace="namespace",
                Period="period",
                Statistic="statistic",
                ExtendedStatistic="extendedStatistic",
                Threshold="threshold",
                AlarmDescription="alarmDescription",
                DatapointsToAlarm="datapointsToAlarm",
                TreatMissingData="treatMissingData",
                Unit="unit",
                AlarmActions="alarmActions",
                OKActions="okActions",
                InsufficientDataActions="insufficientDataActions",
            )
        ),
    }
    if "Threshold" in kwargs:
        kwargs["Threshold"] = float(kwargs["Threshold"])
    if inputs.get("actionsEnabled") is not None:
        kwargs["ActionsEnabled"] = bool(inputs["actionsEnabled"])
    if inputs.get("dimensions"):
        kwargs["Dimensions"] = [{"Name": k, "Value": v} for k, v in inputs["dimensions"].items()]
    if inputs.get("metricQueries"):
        raise ValueError("metricQueries alarms are not rehearsed yet; add them to the engine")
    kwargs.update(tags(inputs))
    aws.client("cloudwatch").put_metric_alarm(**kwargs)
    return alarm_name, {"name": alarm_name, "arn": aws.arn("cloudwatch", f"alarm:{alarm_name}")}


RESOURCES: dict[str, Handler] = {
    "aws:iam/role:Role": role,
    "aws:iam/rolePolicy:RolePolicy": role_policy,
    "aws:cloudwatch/logGroup:LogGroup": log_group,
    "aws:dynamodb/table:Table": table,
    "aws:secretsmanager/secret:Secret": secret,
    "aws:secretsmanager/secretVersion:SecretVersion": secret_version,
    "aws:cloudwatch/eventRule:EventRule": event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": event_target,
    "aws:cloudwatch/metricAlarm:MetricAlarm": metric_alarm,
}
