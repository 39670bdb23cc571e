"""The strategy service under Pulumi's mocks, once per shipped stack YAML: the FSBP
controls issue 13 lists (ECS.2, ECS.4, ECS.5, ECS.12, ECR.1, ECR.2, ECR.3, CloudWatch.16),
the roles' exact rights, the single-writer deployment, the image named by digest, the
contract environment, the alarms, a preview with unknowns, the switch, and bad input.
The networks have their own file (test_network.py)."""

from __future__ import annotations

import json

import pytest

import lambda_pkg.image
from backend.service.__main__ import SHUTDOWN_SECONDS
from backend.service.settings import ServiceSettings
from backend.trading.settings import parse_trading_config
from infra.config import ConfigError
from infra.service import HEALTH_CHECK_STOP, STOP_METRIC, UNEXPECTED_STOP_CODES
from lambda_pkg.errors import UserError
from lambda_pkg.image.build import USER as IMAGE_USER
from tests.infra.harness import (
    IMAGE_RELEASE,
    default_image_layout,
    is_secret,
    make_artifact,
    make_image_layout,
    run_program,
    stack_config,
)
from tests.infra.test_policies import assert_no_wildcards, by_sid, parliament_findings
from tests.unit.service.helpers import REQUIRED_ENV

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "arn:aws:s3:::cloud-trading-bot-lambda-deployment-m6x4p8e"
REPO_URL = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/cloud-trading-bot/{{}}/strategy"
CONTRACT_ENV = {*REQUIRED_ENV, "HEARTBEAT_FILE", "LOG_LEVEL"}
ALPACA = {"tradingMode": "alpaca-paper"}
CREDENTIALS = '{"key_id": "PK-test-key", "secret_key": "sk-test-0a1b2c3d"}'
SERVICE_TYPES_PREFIXES = ("aws:ecs/", "aws:ecr/", "aws:ec2/", IMAGE_RELEASE)


@pytest.fixture
def svc(run):
    """The StrategyService component's resources."""
    return run.under("strategy")


def container(svc) -> dict:
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition")
    (definition,) = json.loads(task.inputs["containerDefinitions"])
    return definition


def environment(svc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(svc)["environment"]}


def policy_of(svc, role_name: str) -> dict:
    role = next(r for r in svc.of_type("aws:iam/role:Role") if r.inputs["name"] == role_name)
    (policy,) = [
        p
        for p in svc.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == f"{role.name}-id"
    ]
    return json.loads(policy.inputs["policy"])


@pytest.fixture(scope="module")
def alpaca_run(artifact):
    return run_program(
        "dev", artifact.manifest_path, overrides=ALPACA, secrets={"brokerCredentials": CREDENTIALS}
    )


# ---- FSBP controls, per shipped stack


def test_ecr_1_2_3_scan_on_push_immutable_tags_and_a_lifecycle_rule(svc, stack):
    repository = svc.one("aws:ecr/repository:Repository").inputs
    assert repository["name"] == f"cloud-trading-bot/{stack}/strategy"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}  # ECR.1
    assert repository["imageTagMutability"] == "IMMUTABLE"  # ECR.2
    assert repository["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    (rule,) = json.loads(svc.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").inputs["policy"])[
        "rules"
    ]
    assert rule["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    }
    assert rule["action"] == {"type": "expire"}  # ECR.3


def test_ecs_12_container_insights(svc, stack):
    cluster = svc.one("aws:ecs/cluster:Cluster").inputs
    assert cluster["name"] == f"cloud-trading-bot-{stack}"
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_ecs_4_and_5_non_root_read_only_not_privileged(svc):
    c = container(svc)
    assert c["privileged"] is False  # ECS.4
    assert c["readonlyRootFilesystem"] is True  # ECS.5
    # The image's own user, non-root, with every capability dropped.
    assert c["user"] == IMAGE_USER == "65532:65532"
    assert c["linuxParameters"]["capabilities"]["drop"] == ["ALL"]


def test_the_one_writable_place_is_the_tmp_volume_with_the_heartbeat(svc):
    c = container(svc)
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    (volume,) = task["volumes"]
    (mount,) = c["mountPoints"]
    assert mount == {"sourceVolume": volume["name"], "containerPath": "/tmp", "readOnly": False}
    assert "host" not in volume  # Fargate's ephemeral storage, gone with the task
    assert environment(svc)["HEARTBEAT_FILE"].startswith("/tmp/")


def test_ecs_2_no_public_ip_by_default(svc):
    network = svc.one("aws:ecs/service:Service").inputs["networkConfiguration"]
    assert network["assignPublicIp"] is False
    assert network["subnets"] == ["service-network-private-0-id", "service-network-private-1-id"]


def test_cloudwatch_16_every_log_group_keeps_a_year(run, stack):
    # Security Hub's default parameter for CloudWatch.16 is 365 days; the shipped stacks
    # meet it for every log group the program creates (the Lambda's, the service's and
    # the stop events').
    groups = {
        g.inputs["name"]: g.inputs["retentionInDays"]
        for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    assert set(groups) == {
        f"/aws/lambda/market_data_fetcher-{stack}",
        f"/ecs/strategy-{stack}",
        f"/aws/events/strategy-{stack}-stops",
    }
    assert (
        set(groups.values())
        == {365}
        == {int(stack_config(stack)["cloud-trading-bot:logRetentionDays"])}
    )


# ---- the task definition


def test_fargate_size_and_platform_come_from_the_config(svc):
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["networkMode"] == "awsvpc"
    assert (task["cpu"], task["memory"]) == ("256", "512")
    assert task["runtimePlatform"] == {
        "operatingSystemFamily": "LINUX",
        "cpuArchitecture": "X86_64",
    }


def test_another_size_and_arm64_reach_the_task(tmp_path):
    manifest = make_artifact(tmp_path, architecture="arm64").manifest_path
    make_image_layout(tmp_path / "image", architecture="arm64")
    overrides = {"taskCpu": 1024, "taskMemory": 4096, "architecture": "arm64"}
    run = run_program("dev", manifest, overrides=overrides, image_layout=tmp_path / "image")
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert (task["cpu"], task["memory"]) == ("1024", "4096")
    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"


def test_health_check_and_stop_timeout_fit_the_service(svc):
    c = container(svc)
    check = c["healthCheck"]
    assert check["command"] == ["CMD", "python", "-m", "backend.service", "health"]
    # The first heartbeat comes after the first step: the grace period covers it, within
    # ECS's limit of 300 s, and is longer than the checks ECS would fail meanwhile.
    assert check["interval"] * check["retries"] < check["startPeriod"] <= 300
    # SIGTERM, then SIGKILL after stopTimeout: the service leaves within SHUTDOWN_SECONDS.
    assert 30 <= c["stopTimeout"] <= 120
    assert c["stopTimeout"] >= SHUTDOWN_SECONDS + 15


def test_logs_go_to_the_services_own_log_group(svc, stack):
    options = container(svc)["logConfiguration"]
    assert options["logDriver"] == "awslogs"
    assert options["options"]["awslogs-group"] == f"/ecs/strategy-{stack}"
    assert options["options"]["awslogs-region"] == REGION
    assert options["options"]["mode"] == "non-blocking"


def test_the_image_is_named_by_digest_after_it_is_pushed(run, svc, stack):
    layout, digest = default_image_layout()
    release = svc.one(IMAGE_RELEASE)
    # The release pushes the prebuilt layout's digest to the stack's own repository
    assert release.inputs["digest"] == digest
    assert release.inputs["blobs"] == str(layout)
    assert release.inputs["repository_url"] == REPO_URL.format(stack)
    # AND the task names exactly that digest, never a tag
    assert container(svc)["image"] == f"{REPO_URL.format(stack)}@{digest}"
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition")
    assert run.depends_on(task, release)
    # AND the provider in the state is readable (nothing secret in it) and kept by name
    assert isinstance(release.inputs["__provider"], str) and not is_secret(
        release.inputs["__provider"]
    )
    # AND the push waits for the repository's lifecycle rule
    assert run.depends_on(release, svc.one("aws:ecr/lifecyclePolicy:LifecyclePolicy"))
    assert run.outputs["service_image"] == f"{REPO_URL.format(stack)}@{digest}"


def test_a_new_revision_keeps_the_previous_one_for_rollback(svc):
    assert svc.one("aws:ecs/taskDefinition:TaskDefinition").inputs["skipDestroy"] is True


# ---- the service


def test_single_writer_deployment_with_circuit_breaker(run, svc, stack):
    service = svc.one("aws:ecs/service:Service")
    inputs = service.inputs
    assert inputs["name"] == f"strategy-{stack}"
    assert inputs["desiredCount"] == 1
    # Never two tasks at once: the old one stops before the new one starts.
    assert inputs["deploymentMinimumHealthyPercent"] == 0
    assert inputs["deploymentMaximumPercent"] == 100
    assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert inputs["launchType"] == "FARGATE"
    assert inputs["platformVersion"] == "LATEST"  # FSBP ECS.10
    assert inputs["enableExecuteCommand"] is False
    assert inputs["waitForSteadyState"] is True
    assert (
        inputs["taskDefinition"]
        == f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/strategy-{stack}:1"
    )
    # The task's rights exist before it starts.
    for name in ("strategy-task-role-policy", "strategy-execution-role-policy", "strategy-logs"):
        assert run.depends_on(service, run.named(name)), name


def test_environment_is_the_contract_and_the_service_accepts_it(svc, stack):
    env = environment(svc)
    assert set(env) == CONTRACT_ENV  # paper mode: no broker secret
    assert env["LEDGER_TABLE"] == f"cloud-trading-bot-{stack}-ledger"
    assert env["MARKET_DATA_TABLE"] == f"cloud-trading-bot-{stack}-market-data"
    assert (env["DATA_PREFIX"], env["LOGS_PREFIX"]) == (f"data/{stack}/", f"logs/{stack}/")
    # TRADING_CONFIG is the trading core's own validated config, every default filled in
    trading = parse_trading_config(json.loads(env["TRADING_CONFIG"]))
    assert trading.to_json() == env["TRADING_CONFIG"]
    assert trading.environment == stack and trading.trading_mode == "paper"
    # AND the service's own settings reader takes this environment as it is
    settings = ServiceSettings.from_env(env)
    assert settings.ledger_table == env["LEDGER_TABLE"] and settings.broker_secret_arn is None


def test_alpaca_mode_gets_the_secrets_arn_never_its_value(alpaca_run):
    svc = alpaca_run.under("strategy")
    env = environment(svc)
    secret = svc.one("aws:secretsmanager/secret:Secret").inputs
    assert secret["name"] == "cloud-trading-bot/dev/broker"
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cloud-trading-bot/dev/broker-AbCdEf"
    assert env["BROKER_SECRET_ARN"] == arn
    assert ServiceSettings.from_env(env).broker_secret_arn == arn
    # The value is a secret input of the secret's version, and nowhere else
    version = svc.one("aws:secretsmanager/secretVersion:SecretVersion").inputs
    assert is_secret(version["secretString"])
    assert version["secretString"]["value"] == CREDENTIALS
    others = [
        r.inputs
        for r in alpaca_run.resources
        if r.type != "aws:secretsmanager/secretVersion:SecretVersion"
    ]
    assert "sk-test-0a1b2c3d" not in json.dumps(others, default=str)
    assert "sk-test-0a1b2c3d" not in json.dumps(alpaca_run.outputs, default=str)


def test_alpaca_mode_without_credentials_leaves_the_value_to_be_set_out_of_band(artifact):
    run = run_program("dev", artifact.manifest_path, overrides=ALPACA)
    svc = run.under("strategy")
    assert (
        svc.one("aws:secretsmanager/secret:Secret").inputs["name"] == "cloud-trading-bot/dev/broker"
    )
    assert svc.of_type("aws:secretsmanager/secretVersion:SecretVersion") == []


def test_paper_mode_has_no_broker_secret(svc):
    assert svc.of_type("aws:secretsmanager/secret:Secret") == []


# ---- the ledger


def test_ledger_table_is_on_demand_recoverable_encrypted_and_retained(run, svc, stack):
    table = svc.one("aws:dynamodb/table:Table")
    inputs = table.inputs
    assert inputs["name"] == f"cloud-trading-bot-{stack}-ledger"
    assert (inputs["hashKey"], inputs["rangeKey"]) == ("pk", "sk")
    assert {a["name"]: a["type"] for a in inputs["attributes"]} == {"pk": "S", "sk": "S"}
    assert inputs["billingMode"] == "PAY_PER_REQUEST"
    assert inputs["pointInTimeRecovery"] == {"enabled": True}
    assert inputs["serverSideEncryption"] == {"enabled": True}
    assert "ttl" not in inputs  # money is never expired
    assert inputs["deletionProtectionEnabled"] is (stack == "prod")
    assert table.retain_on_delete is True


# ---- the roles


def test_task_role_has_exactly_what_the_service_calls(svc, stack):
    policy = policy_of(svc, f"strategy-{stack}-task-role")
    assert_no_wildcards(policy)
    assert parliament_findings(policy) == []
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/cloud-trading-bot-{stack}"
    assert {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]} == {
        "ReadOwnData": (["s3:GetObject"], [f"{BUCKET}/data/{stack}/*"]),
        "WriteDecisionRecords": (["s3:PutObject"], [f"{BUCKET}/logs/{stack}/strategy/*"]),
        "ReadMarketData": (["dynamodb:BatchGetItem", "dynamodb:Query"], [f"{table}-market-data"]),
        "OwnLedger": (
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            [f"{table}-ledger"],
        ),
    }


def test_task_role_reads_the_broker_secret_by_arn_in_alpaca_mode(alpaca_run):
    svc = alpaca_run.under("strategy")
    statement = by_sid(policy_of(svc, "strategy-dev-task-role"))["ReadBrokerSecret"]
    arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cloud-trading-bot/dev/broker-AbCdEf"
    assert (statement["Action"], statement["Resource"]) == (
        ["secretsmanager:GetSecretValue"],
        [arn],
    )


def test_task_role_trusts_ecs_tasks_of_this_account_only(svc, stack):
    role = next(
        r
        for r in svc.of_type("aws:iam/role:Role")
        if r.inputs["name"] == f"strategy-{stack}-task-role"
    )
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    assert not role.inputs.get("managedPolicyArns")


def test_execution_role_pulls_its_own_image_and_writes_its_own_logs(svc, stack):
    policy = policy_of(svc, f"strategy-{stack}-execution-role")
    # "*" only for GetAuthorizationToken, which has no resource-level permissions.
    assert_no_wildcards(policy, allowed_star_sids={"EcrAuthorizationToken"})
    assert parliament_findings(policy) == []
    statements = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}
    repository = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/cloud-trading-bot/{stack}/strategy"
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/strategy-{stack}:log-stream:*"
    assert statements == {
        "PullOwnImage": (
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [repository],
        ),
        "EcrAuthorizationToken": (["ecr:GetAuthorizationToken"], ["*"]),
        "OwnLogGroupStreams": (["logs:CreateLogStream", "logs:PutLogEvents"], [logs]),
    }


def test_the_task_definition_names_both_roles(svc, stack):
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert task["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/strategy-{stack}-task-role"
    assert (
        task["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/strategy-{stack}-execution-role"
    )


def test_kms_bucket_adds_the_key_to_the_task_role_and_the_repository(artifact):
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    run = run_program("prod", artifact.manifest_path, overrides={"kmsKeyArn": kms})
    svc = run.under("strategy")
    statement = by_sid(policy_of(svc, "strategy-prod-task-role"))["BucketKmsKey"]
    assert (statement["Action"], statement["Resource"]) == (
        ["kms:Decrypt", "kms:GenerateDataKey"],
        [kms],
    )
    repository = svc.one("aws:ecr/repository:Repository").inputs
    assert repository["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": kms}]


# ---- alarms


def test_running_task_count_below_one_alarms(svc, stack):
    alarm = next(
        a.inputs
        for a in svc.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["metricName"] == "RunningTaskCount"
    )
    assert alarm["name"] == f"strategy-{stack}-running-tasks"
    assert alarm["namespace"] == "ECS/ContainerInsights"
    assert alarm["dimensions"] == {
        "ClusterName": f"cloud-trading-bot-{stack}",
        "ServiceName": f"strategy-{stack}",
    }
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("LessThanThreshold", 1)
    # A deployment's minute at zero is not an outage; five minutes, or no metric, is.
    assert alarm["evaluationPeriods"] * alarm["period"] == 300
    assert alarm["treatMissingData"] == "breaching"


def test_unexpected_stops_feed_a_metric_and_an_alarm(run, svc, stack):
    rule = svc.one("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    detail = pattern["detail"]
    assert pattern["source"] == ["aws.ecs"] and pattern["detail-type"] == ["ECS Task State Change"]
    assert detail["clusterArn"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/cloud-trading-bot-{stack}"
    ]
    assert detail["group"] == [f"service:strategy-{stack}"]
    assert detail["lastStatus"] == ["STOPPED"]
    # Deployments and people stop tasks too (ServiceSchedulerInitiated, UserInitiated):
    # only a crash, a failed start or failed health checks count.
    assert detail["$or"] == [
        {"stopCode": list(UNEXPECTED_STOP_CODES)},
        {"stoppedReason": [{"prefix": HEALTH_CHECK_STOP}]},
    ]
    assert "ServiceSchedulerInitiated" not in json.dumps(pattern)
    # The events land in their own log group, which allows this rule alone to write.
    target = svc.one("aws:cloudwatch/eventTarget:EventTarget")
    log_group = run.named("strategy-stop-log").inputs
    assert target.inputs["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group['name']}"
    resource_policy = svc.one("aws:cloudwatch/logResourcePolicy:LogResourcePolicy")
    (statement,) = json.loads(resource_policy.inputs["policyDocument"])["Statement"]
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/strategy-{stack}-unexpected-stops"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    assert statement["Resource"] == [f"{target.inputs['arn']}:*"]
    assert run.depends_on(target, resource_policy)
    # A metric filter counts them, and the alarm watches that very metric.
    metric = svc.one("aws:cloudwatch/logMetricFilter:LogMetricFilter").inputs
    assert metric["logGroupName"] == log_group["name"]
    alarm = next(
        a.inputs
        for a in svc.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["metricName"] == STOP_METRIC
    )
    transform = metric["metricTransformation"]
    assert (transform["name"], transform["namespace"]) == (alarm["metricName"], alarm["namespace"])
    assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 1)
    assert alarm["treatMissingData"] == "notBreaching"


def test_alarms_notify_the_topic_when_set(artifact):
    topic = "arn:aws:sns:us-east-1:123456789012:trading-alerts"
    run = run_program("dev", artifact.manifest_path, overrides={"alarmTopicArn": topic})
    alarms = run.under("strategy").of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 2
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic] == alarm.inputs["okActions"]


# ---- the deployer policy gains the service's rights, scoped to its own resources


def test_deployer_policy_pushes_its_own_image_and_updates_its_own_service(run, stack):
    statements = by_sid(run.outputs["deployer_policy"])
    ecs = f"arn:aws:ecs:{REGION}:{ACCOUNT}"
    assert statements["PushServiceImage"]["Resource"] == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/cloud-trading-bot/{stack}/strategy"
    ]
    assert "ecr:PutImage" in statements["PushServiceImage"]["Action"]
    assert statements["RegisterTaskDefinitionRevision"]["Resource"] == [
        f"{ecs}:task-definition/strategy-{stack}:*"
    ]
    assert statements["UpdateOwnService"]["Resource"] == [
        f"{ecs}:service/cloud-trading-bot-{stack}/strategy-{stack}"
    ]
    passed = statements["PassServiceRoles"]
    assert passed["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/strategy-{stack}-task-role",
        f"arn:aws:iam::{ACCOUNT}:role/strategy-{stack}-execution-role",
    ]
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    # The role the program gives the task is the one the deployer may pass.
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert {task["taskRoleArn"], task["executionRoleArn"]} == set(passed["Resource"])


# ---- preview: unknowns, and nothing pushed


def test_preview_with_unknowns_registers_everything_and_pushes_nothing(artifact):
    # GIVEN a first preview: the repository does not exist, so its URL is unknown, and the
    # release's outputs are unknown (the provider only runs on `pulumi up`)
    unknown = {
        "aws:ecr/repository:Repository": {"repositoryUrl", "arn"},
        IMAGE_RELEASE: {"image_uri", "uploaded", "uploaded_bytes"},
    }
    run = run_program("dev", artifact.manifest_path, preview=True, unknown=unknown)
    # THEN every resource of the service is still declared
    svc = run.under("strategy")
    assert svc.one("aws:ecs/service:Service")
    release = svc.one(IMAGE_RELEASE)
    assert release.inputs["digest"] == default_image_layout()[1]
    # AND what depends on the pushed image waits for it instead of guessing
    task = svc.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    assert not isinstance(task["containerDefinitions"], str)
    assert not isinstance(release.inputs["repository_url"], str)


# ---- the switch


def test_strategy_disabled_creates_nothing_of_the_service_and_reads_no_image(artifact, tmp_path):
    # GIVEN the service switched off, and an image layout that does not exist
    run = run_program(
        "prod",
        artifact.manifest_path,
        overrides={"strategyEnabled": False},
        image_layout=tmp_path / "no-such-layout",
    )
    # THEN no component, resource, export or deployer right of the service exists
    components = {r.type for r in run.resources if r.type.startswith("cloud-trading-bot:")}
    assert "cloud-trading-bot:service:StrategyService" not in components
    assert "cloud-trading-bot:service:ServiceNetwork" not in components
    assert [r.name for r in run.resources if r.type.startswith(SERVICE_TYPES_PREFIXES)] == []
    assert not any(
        r.inputs.get("name", "").endswith("-ledger")
        for r in run.of_type("aws:dynamodb/table:Table")
    )
    assert "service_image" not in run.outputs and "ecs_service" not in run.outputs
    sids = set(by_sid(run.outputs["deployer_policy"]))
    assert not sids & {"PushServiceImage", "UpdateOwnService", "PassServiceRoles"}
    # AND the Lambda half is untouched
    assert run.one("aws:lambda/function:Function")


# ---- bad input fails before anything is built or pushed


@pytest.fixture
def no_build(monkeypatch):
    """Stands in for the image builder: records each request and builds nothing."""
    calls: list[dict] = []

    def ensure_image(**kwargs):
        calls.append(kwargs)
        raise UserError("the test's builder builds nothing")

    monkeypatch.setattr(lambda_pkg.image, "ensure_image", ensure_image)
    return calls


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("serviceBaseImage", "python:3.12-slim", "a tag alone can move to other bytes"),
        ("taskMemory", 8192, "one of Fargate's sizes for taskCpu 256"),
        ("taskCpu", 300, "Fargate CPU units"),
        (
            "serviceNetwork",
            "nat-gateway",
            "one of private-nat, private-endpoints, public-ip, subnets",
        ),
    ],
)
def test_bad_service_config_fails_before_anything_is_built_or_pushed(
    artifact, no_build, key, value, says
):
    # GIVEN no prebuilt image, so the program would build one if it got that far
    run = run_program(
        "dev", artifact.manifest_path, overrides={key: value}, image_layout=None, raises=ConfigError
    )
    # THEN one line names the key and the rule
    message = str(run.error)
    assert f"cloud-trading-bot:{key} = " in message and says in message
    assert message.count("\n") == 1
    # AND nothing was built, registered or pushed
    assert no_build == []
    assert run.resources == []


def test_a_cached_build_uses_the_stacks_base(artifact, no_build):
    # GIVEN no prebuilt layout: the program asks the image builder, with the stack's
    # runtime, architecture and base
    pinned = "python:3.12-slim@sha256:" + "e" * 64
    run_program(
        "dev",
        artifact.manifest_path,
        overrides={"serviceBaseImage": pinned},
        image_layout=None,
        raises=ConfigError,
    )
    (call,) = no_build
    assert (call["runtime"], call["architecture"], call["base"]) == ("python3.12", "x86_64", pinned)


def test_ctb_image_base_overrides_the_base_for_a_cached_build(artifact, no_build, monkeypatch):
    monkeypatch.setenv("CTB_IMAGE_BASE", "local")
    run = run_program("dev", artifact.manifest_path, image_layout=None, raises=ConfigError)
    assert no_build[0]["base"] == "local"
    # A builder's refusal is one line, naming the image.
    assert str(run.error) == "strategy service image: the test's builder builds nothing"


def test_an_image_for_another_architecture_is_refused(artifact, tmp_path):
    make_image_layout(tmp_path / "arm", architecture="arm64")
    run = run_program(
        "dev", artifact.manifest_path, image_layout=tmp_path / "arm", raises=ConfigError
    )
    assert "is for arm64, but the stack's architecture is x86_64" in str(run.error)
    assert "CTB_IMAGE_LAYOUT" in str(run.error)
    assert run.resources == []


def test_a_layout_missing_a_blob_fails_the_preview_not_the_push(artifact, tmp_path):
    digest = make_image_layout(tmp_path / "image")
    manifest = json.loads((tmp_path / "image/blobs/sha256" / digest[7:]).read_text())
    (tmp_path / "image/blobs/sha256" / manifest["layers"][1]["digest"][7:]).unlink()
    run = run_program(
        "dev", artifact.manifest_path, image_layout=tmp_path / "image", raises=ConfigError
    )
    assert f"blob {manifest['layers'][1]['digest']} is missing" in str(run.error)
    assert run.resources == []


def test_a_layout_that_is_not_there_is_one_line(artifact, tmp_path):
    run = run_program(
        "dev", artifact.manifest_path, image_layout=tmp_path / "nope", raises=ConfigError
    )
    assert str(run.error).count("\n") == 0
    assert "CTB_IMAGE_LAYOUT" in str(run.error) and "python -m lambda_pkg image --output" in str(
        run.error
    )


def test_an_image_without_a_tmp_volume_is_warned_about(artifact, tmp_path, caplog):
    make_image_layout(tmp_path / "image", tmp_volume=False)
    run_program("dev", artifact.manifest_path, image_layout=tmp_path / "image")
    warned = [r.getMessage() for r in caplog.records if "declares no VOLUME /tmp" in r.getMessage()]
    assert len(warned) == 1 and "cannot write its heartbeat" in warned[0]


def test_broker_credentials_in_paper_mode_are_said_to_change_nothing(artifact, caplog):
    run = run_program("dev", artifact.manifest_path, secrets={"brokerCredentials": CREDENTIALS})
    assert run.under("strategy").of_type("aws:secretsmanager/secret:Secret") == []
    warned = [
        r.getMessage()
        for r in caplog.records
        if "brokerCredentials has no effect" in r.getMessage()
    ]
    assert len(warned) == 1
    assert "sk-test" not in warned[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not json", "this is not JSON"),
        ('{"key_id": "PK1"}', "`secret_key` is missing"),
        ('{"key_id": "PK1", "secret_key": "sk-2 \\n"}', "`secret_key` has whitespace"),
        ('{"key_id": "PK1", "secret_key": "sk-2", "extra": 1}', "other keys: 'extra'"),
    ],
)
def test_malformed_broker_credentials_fail_the_preview_without_showing_them(artifact, value, says):
    run = run_program(
        "dev",
        artifact.manifest_path,
        overrides=ALPACA,
        secrets={"brokerCredentials": value},
        raises=ConfigError,
    )
    message = str(run.error)
    assert "cloud-trading-bot:brokerCredentials = <secret>: must be" in message and says in message
    assert "sk-2" not in message and "PK1" not in message and "not json" not in message
    assert run.resources == []


def test_plaintext_broker_credentials_fail_the_preview(artifact):
    run = run_program(
        "dev",
        artifact.manifest_path,
        overrides={**ALPACA, "brokerCredentials": CREDENTIALS},
        raises=ConfigError,
    )
    assert "brokerCredentials is stored in plain text" in str(run.error)
    assert "sk-test" not in str(run.error)
    assert run.resources == []


def test_the_preview_role_reads_the_service_but_gets_no_registry_token(artifact):
    # GIVEN prod with its CI roles: the preview role is derived from the deployer policy
    ci = {"ciRoleEnabled": True, "githubRepository": "acme/trading-bot"}
    run = run_program("prod", artifact.manifest_path, overrides=ci)
    policy = json.loads(run.named("ci-preview-policy").inputs["policy"])
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    # THEN it may look at the service and its task definitions
    assert {"ecs:DescribeServices", "ecs:DescribeTaskDefinition"} <= actions
    # AND never push, register, update or pass a role, nor hold a registry credential
    assert "ecr:GetAuthorizationToken" not in actions
    assert not actions & {
        "ecr:PutImage",
        "ecs:UpdateService",
        "ecs:RegisterTaskDefinition",
        "iam:PassRole",
    }


def test_exports_name_the_service_for_the_deploy_check(run, stack):
    # .github/workflows/deploy.yml hands these three to `python -m infra.rollout`.
    assert run.outputs["ecs_cluster"] == f"cloud-trading-bot-{stack}"
    assert run.outputs["ecs_service"] == f"strategy-{stack}"
    assert run.outputs["task_definition_arn"].endswith(f":task-definition/strategy-{stack}:1")
    assert run.outputs["ledger_table_name"] == f"cloud-trading-bot-{stack}-ledger"
    assert run.outputs["service_log_group"] == f"/ecs/strategy-{stack}"
    assert run.outputs["service_repository_url"] == REPO_URL.format(stack)
    assert "broker_secret_arn" not in run.outputs  # paper mode
