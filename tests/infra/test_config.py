"""Pure config validation: no Pulumi engine, no mocks (kept apart from the program tests)."""

from __future__ import annotations

import pytest
import yaml

from infra.config import (
    DEFAULTS,
    KEYS,
    LOG_RETENTION_DAYS,
    ConfigError,
    check_pulumi_names,
    parse_config,
)
from infra.config.keys import SECRET_KEYS
from tests.infra.harness import PROJECT, ROOT, SHIPPED_STACKS, stack_config


def shipped(stack: str) -> dict:
    prefix = f"{PROJECT}:"
    return {k[len(prefix) :]: v for k, v in stack_config(stack).items() if k.startswith(prefix)}


def test_defaults_follow_the_design_table():
    # GIVEN no config at all WHEN parsed for stack "dev"
    cfg = parse_config({}, stack="dev")
    # THEN every default is the one docs/DESIGN.md and CONTRACTS.md name
    assert cfg.environment == "dev"
    assert cfg.bucket_name == "cloud-trading-bot-lambda-deployment-m6x4p8e"
    assert cfg.bucket_owner is False
    assert cfg.lambda_s3_key == "lambda/dev/lambda_deployment.zip"
    assert (cfg.runtime, cfg.architecture) == ("python3.12", "x86_64")
    assert (cfg.memory_size, cfg.timeout) == (512, 300)
    assert cfg.schedule == "cron(0 22 ? * MON-FRI *)"
    assert cfg.symbols == ("SPY", "QQQ", "AAPL")
    # A year: FSBP CloudWatch.16's default parameter (docs/service.md, the FSBP table).
    assert cfg.log_retention_days == 365
    assert cfg.broker_credentials is None
    # Unreserved: a new account (quota 10) refuses any reservation (issue 10, section 5).
    assert cfg.reserved_concurrency == -1
    assert cfg.dependency_layer is False
    assert cfg.market_data_api_key is None
    assert cfg.market_data_provider == "yfinance"
    assert (cfg.lambda_noncurrent_versions, cfg.lambda_noncurrent_days) == (5, 30)
    assert cfg.kms_key_arn is None


def test_engine_strings_and_yaml_types_parse_the_same():
    as_strings = parse_config(
        {"bucketOwner": "true", "memorySize": "1024", "symbols": '["MSFT"]', "tags": '{"a":"b"}'},
        stack="dev",
    )
    as_yaml = parse_config(
        {"bucketOwner": True, "memorySize": 1024, "symbols": ["MSFT"], "tags": {"a": "b"}},
        stack="dev",
    )
    assert as_strings == as_yaml
    assert as_strings.memory_size == 1024 and as_strings.symbols == ("MSFT",)


def test_lambda_key_default_follows_the_environment():
    cfg = parse_config({"environment": "qa"}, stack="whatever")
    assert cfg.lambda_s3_key == "lambda/qa/lambda_deployment.zip"
    assert cfg.names.function == "market_data_fetcher-qa"
    assert cfg.lambda_key_prefix == "lambda/qa/"


BAD_VALUES = [
    ("environment", "Prod"),
    ("environment", "x"),
    ("environment", "a-very-long-environment-name"),
    ("bucketName", "Upper_Case"),
    ("bucketName", "ab"),
    ("bucketName", "my..bucket"),
    ("bucketName", "192.168.1.1"),
    ("bucketName", "xn--bucket"),
    ("bucketOwner", "yes"),
    ("lambdaS3Key", "code/dev/lambda_deployment.zip"),
    ("lambdaS3Key", "lambda/dev/lambda_deployment.tar"),
    ("lambdaS3Key", "lambda/../dev.zip"),
    ("runtime", "python2.7"),
    ("runtime", "python3.9"),
    ("runtime", "nodejs20.x"),
    ("architecture", "aarch64"),
    ("memorySize", "64"),
    ("memorySize", "10241"),
    ("memorySize", "lots"),
    ("timeout", "0"),
    ("timeout", "901"),
    ("schedule", "every 15 minutes"),
    ("schedule", "rate(1 minutes)"),
    ("schedule", "rate(5 minute)"),
    ("schedule", "cron(0 * * *)"),
    ("symbols", "[]"),
    ("symbols", '["SPY","SPY"]'),
    ("symbols", '["S P Y"]'),
    ("symbols", "[1, 2]"),
    ("symbols", '["A^B"]'),  # the runtime refuses '^' anywhere but first
    ("logRetentionDays", "10"),
    ("logRetentionDays", "0"),
    ("reservedConcurrency", "0"),
    ("reservedConcurrency", "-2"),
    ("dependencyLayer", "maybe"),
    ("marketDataProvider", "bloomberg"),
    ("logLevel", "TRACE"),
    ("kmsKeyArn", "alias/my-key"),
    ("lambdaNoncurrentVersions", "0"),
    ("lambdaNoncurrentVersions", "101"),
    ("lambdaNoncurrentDays", "0"),
    ("deletionProtection", "1"),
    ("maxRetryAttempts", "3"),
    ("maxEventAgeSeconds", "59"),
    ("alarmTopicArn", "my-topic"),
    ("tags", '{"aws:reserved": "x"}'),
    ("tags", "[1]"),
    ("deploymentsEnabled", "on"),
    ("ciRoleEnabled", "off"),
    ("githubRepository", "not a repo"),
    ("githubBranch", "bad..branch"),
    ("githubBranch", "refs/heads/main"),  # the trust policy adds refs/heads/ itself
    ("githubEnvironment", "bad\tname"),
    ("githubOidcProviderArn", "arn:aws:iam::123456789012:oidc-provider/example.com"),
    ("pulumiOidcProviderArn", "token.actions.githubusercontent.com"),
    ("deployRoleArn", "my-role"),
    ("deploymentsPushToDeploy", "yes"),
    ("deploymentsPreviewPullRequests", "no"),
    ("strategyEnabled", "maybe"),
    ("strategy", "sma\ncrossover"),
    ("strategyParams", "[1, 2]"),
    ("barInterval", ""),
    ("riskLimits", '{"maxOpenPositions": {"nested": 1}}'),
    ("tradingMode", "paper\n"),
    ("liveTrading", "yes"),
    ("paperCash", "0"),
    ("paperSlippageBps", "-1"),
    ("paperFeeRate", "0.5"),
    ("taskCpu", "300"),
    ("taskMemory", "100"),
    ("serviceBaseImage", "python:3.12-slim"),
    ("serviceNetwork", "vpn"),
    ("serviceSubnetIds", '["sg-0123abcd"]'),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_each_bad_value_fails_naming_key_value_and_rule(key, value):
    with pytest.raises(ConfigError) as err:
        parse_config({key: value}, stack="dev")
    message = str(err.value)
    assert f"cloud-trading-bot:{key} = {value!r}: must be" in message
    # One problem, one line: nothing else in the config was blamed.
    assert message.count("\n") == 1


def test_every_key_has_a_bad_value_case():
    # No key may escape validation: each has at least one rejected value above.
    assert {k for k, _ in BAD_VALUES} >= {k.name for k in KEYS} - SECRET_KEYS


def test_deployments_without_a_role_names_deploy_role_arn():
    # GIVEN Pulumi Deployments on, but neither a CI role nor a role ARN to assume
    raw = {"deploymentsEnabled": "true", "githubRepository": "acme/bot"}
    # WHEN the config is parsed THEN the missing key is named with both ways to fix it
    with pytest.raises(ConfigError, match=r"deployRoleArn = '': must be the ARN.*ciRoleEnabled"):
        parse_config(raw, stack="dev")
    # AND either fix is accepted
    parse_config({**raw, "ciRoleEnabled": "true"}, stack="dev")
    arn = "arn:aws:iam::123456789012:role/deployer"
    assert parse_config({**raw, "deployRoleArn": arn}, stack="dev").deploy_role_arn == arn


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        parse_config({"memorySize": "1", "timeout": "0", "runtime": "x"}, stack="dev")
    message = str(err.value)
    for key in ("memorySize", "timeout", "runtime"):
        assert f"cloud-trading-bot:{key}" in message


def test_unknown_key_is_reported_with_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"memorysize: unknown config key; did you mean memorySize"
    ):
        parse_config({"memorysize": "1024"}, stack="dev")


def test_invalid_stack_name_points_at_the_environment_key():
    with pytest.raises(ConfigError, match=r"cloud-trading-bot:environment = 'My_Stack'"):
        parse_config({}, stack="My_Stack")


def test_plaintext_api_key_is_refused_and_not_echoed():
    with pytest.raises(ConfigError) as err:
        parse_config({"marketDataApiKey": "sk-live-123"}, stack="dev")
    assert "pulumi config set --secret marketDataApiKey" in str(err.value)
    assert "sk-live-123" not in str(err.value)


def test_secret_api_key_is_accepted_and_hidden_from_repr():
    cfg = parse_config(
        {"marketDataApiKey": "sk-live-123"}, stack="dev", secret_keys={"marketDataApiKey"}
    )
    assert cfg.market_data_api_key is not None
    assert "sk-live-123" not in repr(cfg)


@pytest.mark.parametrize("switch", ["deploymentsEnabled", "ciRoleEnabled"])
def test_ci_switches_need_a_github_repository(switch):
    with pytest.raises(ConfigError, match=r"githubRepository.*owner/repo when deploymentsEnabled"):
        parse_config({switch: "true"}, stack="dev")
    # (ciRoleEnabled also gives Pulumi Deployments the role it assumes)
    raw = {switch: "true", "githubRepository": "acme/bot", "ciRoleEnabled": "true"}
    assert parse_config(raw, stack="dev").github_repository == "acme/bot"


def test_deployments_that_could_never_trigger_are_refused():
    # GIVEN Pulumi Deployments on with both of its triggers off
    raw = {
        "deploymentsEnabled": "true",
        "ciRoleEnabled": "true",
        "githubRepository": "acme/bot",
        "deploymentsPushToDeploy": "false",
        "deploymentsPreviewPullRequests": "false",
    }
    # THEN the config fails (not the component, after other resources were registered)
    with pytest.raises(ConfigError, match=r"deploymentsEnabled = True: .* would never run"):
        parse_config(raw, stack="dev")
    assert parse_config({**raw, "deploymentsPushToDeploy": "true"}, stack="dev")


@pytest.mark.parametrize(
    ("organization", "project", "stack", "named"),
    [
        (None, "cloud-trading-bot", "dev", "organization: not set"),
        ("", "cloud-trading-bot", "dev", "organization: not set"),
        ("acme", "cloud-trading-bot", "dev stack", "stack: 'dev stack'"),
    ],
)
def test_deployments_need_usable_pulumi_names(organization, project, stack, named):
    raw = {"deploymentsEnabled": "true", "ciRoleEnabled": "true", "githubRepository": "a/b"}
    cfg = parse_config(raw, stack="dev")
    with pytest.raises(ConfigError, match=rf"deploymentsEnabled = True: Pulumi {named}"):
        check_pulumi_names(cfg, organization=organization, project=project, stack=stack)
    # Without Pulumi Deployments the names are not used, so not checked.
    plain = parse_config({}, stack="dev")
    check_pulumi_names(plain, organization=organization, project=project, stack=stack)


@pytest.mark.parametrize(
    "schedule", ["rate(1 minute)", "rate(15 minutes)", "rate(2 hours)", "cron(0 14 ? * MON-FRI *)"]
)
def test_good_schedules_pass(schedule):
    assert parse_config({"schedule": schedule}, stack="dev").schedule == schedule


def test_empty_schedule_means_none():
    assert parse_config({"schedule": ""}, stack="dev").schedule is None


def test_every_cloudwatch_retention_value_is_accepted():
    for days in LOG_RETENTION_DAYS:
        assert parse_config({"logRetentionDays": str(days)}, stack="dev").log_retention_days == days


# ---- the shipped files


def test_pulumi_yaml_declares_every_key_with_type_description_and_the_same_default():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "cloud-trading-bot"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    declared = project["config"]
    assert set(declared) == {k.name for k in KEYS}
    for key in KEYS:
        entry = declared[key.name]
        if key.type in ("object", "number"):  # no such type in a project file
            assert "type" not in entry, key.name
        else:
            assert entry["type"] == key.type, key.name
        assert entry["description"], key.name
        # The engine injects Pulumi.yaml defaults; config.py must agree with them.
        assert entry["default"] == DEFAULTS[key.name], key.name
        assert "secret" not in entry  # a secret key may not have a default (Pulumi rule)


# What the CLI's project schema (sdk/go/common/workspace/project.json) accepts in a
# config declaration, and how it checks a stack's value against a declared type.
PROJECT_CONFIG_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}
DECLARATION_FIELDS = {"type", "items", "description", "secret", "default", "value"}


def test_pulumi_yaml_passes_the_cli_schema():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for name, entry in project["config"].items():
        assert set(entry) <= DECLARATION_FIELDS, name
        if "type" in entry:
            assert entry["type"] in PROJECT_CONFIG_TYPES, name
        if entry.get("type") == "array":
            assert entry["items"]["type"] in PROJECT_CONFIG_TYPES, name


def _fits(declared_type: str, value) -> bool:
    python_type = PROJECT_CONFIG_TYPES[declared_type]
    if python_type is int and isinstance(value, bool):
        return False
    return isinstance(value, python_type)


@pytest.mark.parametrize("stack", [*SHIPPED_STACKS, "local"])
def test_stack_values_have_the_declared_types(stack):
    # The CLI refuses a stack value whose YAML type differs from the declared one.
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key, value in values.items():
        short = key.removeprefix(f"{PROJECT}:")
        entry = declared.get(short, {})
        if ":" not in short and "type" in entry:
            assert _fits(entry["type"], value), (key, value)
    for name, entry in declared.items():
        if "type" in entry:
            assert _fits(entry["type"], entry["default"]), name


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stack_files_validate(stack):
    cfg = parse_config(shipped(stack), stack=stack)
    assert cfg.environment == stack
    assert cfg.lambda_s3_key == f"lambda/{stack}/lambda_deployment.zip"


def test_prod_owns_the_bucket_and_is_protected():
    dev = parse_config(shipped("dev"), stack="dev")
    prod = parse_config(shipped("prod"), stack="prod")
    assert prod.bucket_owner and not dev.bucket_owner
    assert prod.deletion_protection and not dev.deletion_protection
    # Both keep a year of logs: the trading decisions' audit trail, and CloudWatch.16.
    assert prod.log_retention_days == dev.log_retention_days == 365
    assert prod.bucket_name == dev.bucket_name  # one bucket, shared


# ---- brokerCredentials (the strategy service's broker secret)

GOOD_CREDENTIALS = '{"key_id": "PKTEST", "secret_key": "secret-0123"}'


def test_broker_credentials_are_a_secret_of_a_fixed_shape():
    cfg = parse_config(
        {"brokerCredentials": GOOD_CREDENTIALS, "tradingMode": "alpaca-paper"},
        stack="dev",
        secret_keys={"brokerCredentials"},
    )
    assert cfg.broker_credentials is not None
    assert "secret-0123" not in repr(cfg)
    assert cfg.service_warnings == []


def test_encrypted_broker_credentials_count_as_set_without_being_read():
    cfg = parse_config({}, stack="dev", encrypted_keys={"brokerCredentials"})
    assert cfg.broker_credentials is not None


@pytest.mark.parametrize(
    "value",
    [
        "[]",
        '{"key_id": "", "secret_key": "x"}',
        '{"key_id": "a", "secret_key": 5}',
        '{"key_id": " a", "secret_key": "b"}',
        '{"key_id": "a", "secret_key": "b\\u0000"}',
        "{" * 5000,
    ],
)
def test_bad_broker_credentials_are_one_line_that_never_shows_them(value):
    with pytest.raises(ConfigError) as err:
        parse_config({"brokerCredentials": value}, stack="dev", secret_keys={"brokerCredentials"})
    (line,) = str(err.value).splitlines()[1:]
    assert line.strip().startswith("cloud-trading-bot:brokerCredentials = <secret>: must be")
    assert value not in str(err.value)


def test_broker_credentials_without_an_alpaca_mode_are_reported_not_used():
    cfg = parse_config(
        {"brokerCredentials": GOOD_CREDENTIALS}, stack="dev", secret_keys={"brokerCredentials"}
    )
    (warning,) = cfg.service_warnings
    assert "tradingMode is 'paper'" in warning and "secret-0123" not in warning
