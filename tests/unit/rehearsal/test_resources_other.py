"""IAM, logs, DynamoDB, Secrets Manager, KMS, EventBridge, alarms and the invokes."""

from __future__ import annotations

import json

import pytest
from pulumi.runtime import MockCallArgs

from infra.rehearsal.errors import ResourceFailed


def _doc(action: str, resource: str) -> dict:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_role_and_inline_policy(deploy, aws):
    role_arn = deploy.role("market_data_fetcher-dev-role")
    policy = _doc("s3:PutObject", "arn:aws:s3:::b/data/dev/*")
    physical, _ = deploy(
        "aws:iam/rolePolicy:RolePolicy", "rp", role="market_data_fetcher-dev-role",
        name="least-privilege", policy=json.dumps(policy),
    )  # fmt: skip
    iam = aws.client("iam")
    assert role_arn == iam.get_role(RoleName="market_data_fetcher-dev-role")["Role"]["Arn"]
    got = iam.get_role_policy(RoleName="market_data_fetcher-dev-role", PolicyName="least-privilege")
    assert got["PolicyDocument"] == policy
    assert physical == "market_data_fetcher-dev-role:least-privilege"


def test_role_policy_must_be_a_policy_document(deploy):
    deploy.role("r1")
    with pytest.raises(ResourceFailed, match="no Statement"):
        deploy("aws:iam/rolePolicy:RolePolicy", "rp", role="r1", name="p", policy="{}")


def test_log_group_with_retention(deploy, aws):
    name, out = deploy(
        "aws:cloudwatch/logGroup:LogGroup", "lg", name="/aws/lambda/fn-dev", retentionInDays=14.0
    )
    group = aws.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    assert group["retentionInDays"] == 14
    assert out["arn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn-dev"


def test_table_with_ttl_pitr_and_sse(deploy, aws):
    name, out = deploy(
        "aws:dynamodb/table:Table", "t", name="ctb-dev-market-data", billingMode="PAY_PER_REQUEST",
        hashKey="pk", rangeKey="sk", attributes=[{"name": "pk", "type": "S"},
                                                 {"name": "sk", "type": "S"}],
        ttl={"attributeName": "expires_at", "enabled": True},
        pointInTimeRecovery={"enabled": True}, serverSideEncryption={"enabled": True},
        deletionProtectionEnabled=True,
    )  # fmt: skip
    ddb = aws.client("dynamodb")
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["DeletionProtectionEnabled"] is True
    assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    pitr = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert out["arn"] == table["TableArn"]


def test_secret_without_a_version_has_no_value(deploy, aws):
    arn, out = deploy(
        "aws:secretsmanager/secret:Secret", "s", name="ctb/dev/key", recoveryWindowInDays=7.0
    )
    assert out["arn"] == arn
    sm = aws.client("secretsmanager")
    assert sm.describe_secret(SecretId=arn)["Name"] == "ctb/dev/key"
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=arn)


def test_schedule_rule_and_target(deploy, aws):
    rule, out = deploy(
        "aws:cloudwatch/eventRule:EventRule", "rule", name="fn-dev-schedule",
        scheduleExpression="rate(15 minutes)",
    )  # fmt: skip
    target_arn = "arn:aws:lambda:us-east-1:123456789012:function:fn-dev:live"
    deploy(
        "aws:cloudwatch/eventTarget:EventTarget", "target", rule=rule, targetId="live-alias",
        arn=target_arn,
    )  # fmt: skip
    events = aws.client("events")
    described = events.describe_rule(Name=rule)
    assert described["ScheduleExpression"] == "rate(15 minutes)"
    assert described["State"] == "ENABLED"
    assert described["Arn"] == out["arn"]
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert [(t["Id"], t["Arn"]) for t in targets] == [("live-alias", target_arn)]


def test_rule_needs_a_schedule_or_pattern(deploy):
    with pytest.raises(ResourceFailed, match="scheduleExpression or eventPattern"):
        deploy("aws:cloudwatch/eventRule:EventRule", "rule", name="x")


def test_metric_alarm(deploy, aws):
    name, _ = deploy(
        "aws:cloudwatch/metricAlarm:MetricAlarm", "errors", name="fn-dev-errors",
        namespace="AWS/Lambda", metricName="Errors", dimensions={"FunctionName": "fn-dev"},
        statistic="Sum", period=300.0, evaluationPeriods=1.0, threshold=1.0,
        comparisonOperator="GreaterThanOrEqualToThreshold", treatMissingData="notBreaching",
        alarmActions=[],
    )  # fmt: skip
    alarm = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "fn-dev"}]
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (300, 1, 1.0)
    assert alarm["TreatMissingData"] == "notBreaching"


def _call(engine, token: str, **args):
    return engine.call(MockCallArgs(token=token, args=args, provider=""))[0]


def test_get_bucket_answers_from_the_emulator(engine, aws):
    aws.client("s3").create_bucket(Bucket="shared-bucket-2")
    found = _call(engine, "aws:s3/getBucket:getBucket", bucket="shared-bucket-2")
    assert found["arn"] == "arn:aws:s3:::shared-bucket-2"


def test_get_bucket_of_a_missing_bucket_says_who_creates_it(engine):
    with pytest.raises(ResourceFailed, match="bucketOwner: true"):
        _call(engine, "aws:s3/getBucket:getBucket", bucket="nobody-made-this")
