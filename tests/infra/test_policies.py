"""Policy documents, checked statically: pure functions in, dicts out (and parliament)."""

from __future__ import annotations

import json

import pytest
from parliament import analyze_policy_string

from infra.names import ServiceNames
from infra.policies import (
    ECR_PUSH_ACTIONS,
    LEDGER_ACTIONS,
    MARKET_DATA_ACTIONS,
    deployer_policy,
    ecs_tasks_trust_policy,
    events_to_logs_policy,
    execution_role_policy,
    lambda_trust_policy,
    parse_arn,
    task_execution_policy,
    task_role_policy,
    tls_only_bucket_policy,
)

BUCKET_ARN = "arn:aws:s3:::cloud-trading-bot-lambda-deployment-m6x4p8e"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/cloud-trading-bot-dev-market-data"
SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    "cloud-trading-bot/dev/market-data-api-key-AbCdEf"
)
LOG_GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/market_data_fetcher-dev"
KMS_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def execution(**extra):
    return execution_role_policy(
        bucket_arn=BUCKET_ARN,
        data_prefix="data/dev/",
        logs_prefix="logs/dev/",
        table_arn=TABLE_ARN,
        secret_arn=SECRET_ARN,
        log_group_arn=LOG_GROUP_ARN,
        **extra,
    )


def deployer(**extra):
    args = {
        "partition": "aws",
        "region": "us-east-1",
        "account_id": "123456789012",
        "bucket": "cloud-trading-bot-lambda-deployment-m6x4p8e",
        "key_prefix": "lambda/dev/",
        "function_name": "market_data_fetcher-dev",
        "role_name": "market_data_fetcher-dev-role",
        **extra,
    }
    return deployer_policy(**args)


def by_sid(policy):
    return {s["Sid"]: s for s in policy["Statement"]}


def as_list(value):
    return value if isinstance(value, list) else [value]


def assert_no_wildcards(policy, *, allowed_star_sids=()):
    """IAM.1 / IAM.21: no `*` or `service:*` action; a bare "*" resource only where allowed."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action, (statement["Sid"], action)
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert statement["Sid"] in allowed_star_sids, statement["Sid"]
            else:
                # A trailing * is allowed only below a fully scoped ARN.
                assert "*" not in resource.rstrip("*"), resource
                assert resource.startswith("arn:aws:"), resource


def parliament_findings(policy):
    findings = analyze_policy_string(json.dumps(policy)).findings
    return [(f.issue, f.detail) for f in findings]


def test_execution_policy_is_scoped_to_its_own_resources():
    statements = by_sid(execution())
    assert statements["OwnLogGroupStreams"]["Resource"] == [f"{LOG_GROUP_ARN}:log-stream:*"]
    assert "logs:CreateLogGroup" not in statements["OwnLogGroupStreams"]["Action"]
    assert statements["WriteOwnPrefixes"]["Action"] == ["s3:PutObject"]
    assert statements["WriteOwnPrefixes"]["Resource"] == [
        f"{BUCKET_ARN}/data/dev/*",
        f"{BUCKET_ARN}/logs/dev/*",
    ]
    assert statements["OwnTable"]["Resource"] == [TABLE_ARN]
    # Only what docs/runtime.md says the runtime calls.
    assert statements["OwnTable"]["Action"] == [
        "dynamodb:BatchWriteItem",
        "dynamodb:DescribeTable",
    ]
    assert statements["ReadOwnSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadOwnSecret"]["Resource"] == [SECRET_ARN]
    assert "BucketKmsKey" not in statements


def test_execution_policy_has_no_wildcards_except_xray():
    policy = execution()
    assert_no_wildcards(policy, allowed_star_sids={"XRayWrite"})
    xray = by_sid(policy)["XRayWrite"]
    assert all(a.startswith("xray:Put") for a in xray["Action"])


def test_execution_policy_adds_the_kms_key_only_when_given():
    statements = by_sid(execution(kms_key_arn=KMS_ARN))
    assert statements["BucketKmsKey"]["Resource"] == [KMS_ARN]
    assert statements["BucketKmsKey"]["Action"] == ["kms:GenerateDataKey"]


def test_execution_policy_passes_parliament():
    assert parliament_findings(execution(kms_key_arn=KMS_ARN)) == []


def test_trust_policy_lets_only_lambda_assume_the_role():
    (statement,) = lambda_trust_policy()["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def test_tls_policy_denies_plain_http_and_old_tls_on_bucket_and_objects():
    statements = by_sid(tls_only_bucket_policy(BUCKET_ARN))
    insecure = statements["DenyInsecureTransport"]
    assert insecure["Effect"] == "Deny" and insecure["Principal"] == "*"
    assert insecure["Action"] == "s3:*"
    assert insecure["Resource"] == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert insecure["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    old_tls = statements["DenyOutdatedTls"]
    assert old_tls["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert all(s["Effect"] == "Deny" for s in statements.values())


def test_deployer_policy_is_scoped_to_bucket_prefix_function_and_role():
    statements = by_sid(deployer())
    bucket = "arn:aws:s3:::cloud-trading-bot-lambda-deployment-m6x4p8e"
    assert statements["PackageObjects"]["Resource"] == [f"{bucket}/lambda/dev/*"]
    assert "s3:DeleteObjectVersion" not in statements["PackageObjects"]["Action"]
    assert "s3:ListBucketVersions" not in statements["FindBucketAndObjects"]["Action"]
    assert statements["ListPackageVersions"]["Condition"] == {
        "StringLike": {"s3:prefix": ["lambda/dev/*"]}
    }
    function = "arn:aws:lambda:us-east-1:123456789012:function:market_data_fetcher-dev"
    assert statements["UpdateFunction"]["Resource"] == [function, f"{function}:*"]
    assert "lambda:UpdateFunctionCode" in statements["UpdateFunction"]["Action"]
    # The post-deploy test (`python -m ops invoke`) may invoke this function only.
    assert statements["TestInvoke"] == {
        "Sid": "TestInvoke",
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": [function, f"{function}:*"],
    }
    pass_role = statements["PassExecutionRole"]
    assert pass_role["Action"] == ["iam:PassRole"]
    assert pass_role["Resource"] == ["arn:aws:iam::123456789012:role/market_data_fetcher-dev-role"]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
    }
    assert_no_wildcards(deployer())


def test_deployer_policy_covers_layer_and_kms_only_when_used():
    assert {"PublishLayer", "BucketKmsKey"}.isdisjoint(by_sid(deployer()))
    statements = by_sid(deployer(layer_name="market_data_fetcher-dev-deps", kms_key_arn=KMS_ARN))
    layer = "arn:aws:lambda:us-east-1:123456789012:layer:market_data_fetcher-dev-deps"
    assert statements["PublishLayer"]["Resource"] == [layer, f"{layer}:*"]
    assert statements["BucketKmsKey"]["Resource"] == [KMS_ARN]


def test_deployer_policy_uses_the_partition():
    policy = deployer(partition="aws-cn", region="cn-north-1")
    resources = [r for s in policy["Statement"] for r in s["Resource"]]
    assert all(r.startswith("arn:aws-cn:") for r in resources)


def test_deployer_policy_passes_parliament():
    policy = deployer(layer_name="market_data_fetcher-dev-deps", kms_key_arn=KMS_ARN)
    assert parliament_findings(policy) == []


def test_deployer_policy_rejects_a_prefix_without_slash():
    with pytest.raises(ValueError, match="must end in '/'"):
        deployer(key_prefix="lambda/dev")


def test_parse_arn():
    arn = "arn:aws:lambda:eu-west-1:210987654321:function:market_data_fetcher-prod"
    assert parse_arn(arn) == ("aws", "eu-west-1", "210987654321")
    with pytest.raises(ValueError, match="not an ARN"):
        parse_arn("market_data_fetcher-prod")


# ---- the strategy service's documents

SERVICE = ServiceNames.for_env("dev")
LEDGER_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/cloud-trading-bot-dev-ledger"
BROKER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloud-trading-bot/dev/broker-x"


def task_policy(**extra):
    return task_role_policy(
        bucket_arn=BUCKET_ARN,
        data_prefix="data/dev/",
        decisions_prefix=SERVICE.decisions_prefix,
        market_table_arn=TABLE_ARN,
        ledger_table_arn=LEDGER_ARN,
        **extra,
    )


def test_task_policy_reads_data_writes_decisions_and_keeps_the_ledger():
    statements = by_sid(task_policy())
    assert statements["ReadOwnData"]["Resource"] == [f"{BUCKET_ARN}/data/dev/*"]
    assert statements["WriteDecisionRecords"]["Resource"] == [f"{BUCKET_ARN}/logs/dev/strategy/*"]
    # No UpdateItem, Scan or DescribeTable: the ledger store calls none of them, and a
    # TransactWriteItems is authorised as its PutItem and DeleteItem items.
    assert statements["OwnLedger"]["Action"] == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ]
    assert statements["ReadMarketData"]["Action"] == ["dynamodb:BatchGetItem", "dynamodb:Query"]
    assert {"ReadBrokerSecret", "BucketKmsKey"}.isdisjoint(statements)
    assert_no_wildcards(task_policy())


def test_task_policy_adds_the_broker_secret_and_kms_key_only_when_given():
    policy = task_policy(broker_secret_arn=BROKER_ARN, kms_key_arn=KMS_ARN)
    statements = by_sid(policy)
    assert statements["ReadBrokerSecret"]["Resource"] == [BROKER_ARN]
    assert statements["BucketKmsKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert parliament_findings(policy) == []


def test_the_ledger_actions_are_what_the_ledger_store_calls():
    # Read backend/trading/dynamo.py's client calls: each must be allowed, nothing more.
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "backend/trading/dynamo.py").read_text()
    calls = set(re.findall(r"self\._client\.(\w+)\(", source))
    assert calls == {"get_item", "query", "put_item", "delete_item", "transact_write_items"}
    as_actions = {"dynamodb:" + "".join(p.title() for p in c.split("_")) for c in calls}
    # TransactWriteItems has no IAM action: its Put and Delete items are checked as such.
    assert as_actions - {"dynamodb:TransactWriteItems"} == set(LEDGER_ACTIONS)


def test_the_market_data_actions_are_what_the_service_reader_calls():
    # Read backend/service/market.py's DynamoDB calls: each must be allowed, nothing more
    # (moto does not enforce the role, so a missing action would first fail on AWS).
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "backend/service/market.py").read_text()
    calls = set(re.findall(r"self\._client\.(\w+)\(", source))
    assert calls == {"batch_get_item", "query"}
    as_actions = {"dynamodb:" + "".join(p.title() for p in c.split("_")) for c in calls}
    assert as_actions == set(MARKET_DATA_ACTIONS)


def test_execution_policy_pulls_one_repository_and_writes_one_log_group():
    repository = "arn:aws:ecr:us-east-1:123456789012:repository/cloud-trading-bot/dev/strategy"
    log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/strategy-dev"
    policy = task_execution_policy(repository_arn=repository, log_group_arn=log_group)
    statements = by_sid(policy)
    assert statements["PullOwnImage"]["Resource"] == [repository]
    assert statements["OwnLogGroupStreams"]["Resource"] == [f"{log_group}:log-stream:*"]
    assert_no_wildcards(policy, allowed_star_sids={"EcrAuthorizationToken"})
    assert statements["EcrAuthorizationToken"]["Action"] == ["ecr:GetAuthorizationToken"]
    assert parliament_findings(policy) == []


def test_ecs_trust_with_and_without_the_confused_deputy_guard():
    (plain,) = ecs_tasks_trust_policy()["Statement"]
    assert plain["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert "Condition" not in plain
    (guarded,) = ecs_tasks_trust_policy(
        source_account="123456789012", source_arn="arn:aws:ecs:us-east-1:123456789012:*"
    )["Statement"]
    assert guarded["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert guarded["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:ecs:us-east-1:123456789012:*"
    }


def test_events_to_logs_policy_lets_one_rule_write_one_log_group():
    log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/events/strategy-dev-stops"
    rule = "arn:aws:events:us-east-1:123456789012:rule/strategy-dev-unexpected-stops"
    (statement,) = events_to_logs_policy(log_group_arn=log_group, rule_arn=rule)["Statement"]
    assert statement["Resource"] == [f"{log_group}:*"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule}}


def test_deployer_policy_for_the_service_is_scoped_and_passes_parliament():
    policy = deployer(service=SERVICE)
    statements = by_sid(policy)
    assert statements["PushServiceImage"]["Action"] == sorted(ECR_PUSH_ACTIONS)
    assert "ecr:BatchDeleteImage" not in statements["PushServiceImage"]["Action"]
    assert statements["TagNewTaskDefinitionRevision"]["Condition"] == {
        "StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}
    }
    # No create, delete or deregister: a deploy changes the service, never its existence.
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert not {
        a for a in actions if a.split(":")[1].startswith(("Create", "Delete", "Deregister"))
    }
    assert_no_wildcards(policy, allowed_star_sids={"EcrAuthorizationToken", "ReadTaskDefinitions"})
    assert parliament_findings(policy) == []


def test_deployer_policy_for_the_service_uses_the_partition():
    policy = deployer(partition="aws-cn", region="cn-north-1", service=SERVICE)
    resources = [r for s in policy["Statement"] for r in s["Resource"] if r != "*"]
    assert all(r.startswith("arn:aws-cn:") for r in resources)
    assert any(":ecs:cn-north-1:" in r for r in resources)
