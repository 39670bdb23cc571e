"""The whole program, under Pulumi mocks, once per shipped stack YAML.

Security properties are asserted as the AWS Foundational Security Best Practices
controls that check them (S3.x, IAM.x, Lambda.x, CloudWatch.16), on the inputs each
resource actually received.
"""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError
from infra.names import layer_key
from infra.package import LayerMismatch
from lambda_pkg.limits import RUNTIMES
from tests.infra.harness import (
    SHIPPED_STACKS,
    is_secret,
    make_artifact,
    make_image_layout,
    run_program,
    stack_config,
)
from tests.infra.test_policies import assert_no_wildcards, by_sid, parliament_findings

BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"
CONTRACT_ENV = {
    "ENVIRONMENT",
    "BUCKET_NAME",
    "DATA_PREFIX",
    "LOGS_PREFIX",
    "TABLE_NAME",
    "API_KEY_SECRET_ARN",
    "SYMBOLS",
    "MARKET_DATA_PROVIDER",
    "LOG_LEVEL",
}
EXPORTS = {
    "bucket_name",
    "lambda_s3_key",
    "function_name",
    "function_arn",
    "alias_arn",
    "package_sha256",
    "package_version",
    "table_name",
    "secret_arn",
    "deployer_policy",
}


@pytest.fixture(scope="session")
def owner_runs(runs, artifact):
    """Owner-mode runs: prod as shipped, and dev as a dev-only account would set it."""
    dev_owner = run_program("dev", artifact.manifest_path, overrides={"bucketOwner": True})
    return {"prod": runs["prod"], "dev": dev_owner}


@pytest.fixture
def owner_run(owner_runs, stack):
    return owner_runs[stack]


# ---- structure


# What outlives a destroyed stack: the shared bucket and every setting on it (deleting
# BucketVersioning would suspend versioning under the other stacks' pinned packages),
# and an account's OIDC provider.
BUCKET_SETTINGS = {
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
}
RETAINED_TYPES = {
    "aws:s3/bucket:Bucket",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    *BUCKET_SETTINGS,
}
# And the money: the ledger table outlives the stack (infra/service.py says why).
RETAINED_RESOURCES = {"strategy-ledger"}


def assert_every_resource_sits_under_a_named_component(run) -> set[str]:
    """Components sit at the top; every cloud resource sits in one and is named after it.
    Returns the component types."""
    components = {r.urn: r for r in run.resources if r.type.startswith("cloud-trading-bot:")}
    for component in components.values():
        assert component.parent_type == "pulumi:pulumi:Stack"
    for resource in run.resources:
        if resource.type.startswith("cloud-trading-bot:"):
            continue
        parent = components.get(resource.parent_urn)
        assert parent is not None, f"{resource.type} {resource.name} is not under a component"
        assert resource.name.startswith(f"{parent.name}-"), resource.name
        # Only what is shared beyond the stack (the bucket, an account's OIDC provider)
        # is kept on destroy; no component copies that onto its other children.
        if resource.type not in RETAINED_TYPES and resource.name not in RETAINED_RESOURCES:
            assert not (resource.protect or resource.retain_on_delete), resource.name
    return {c.type for c in components.values()}


def test_every_resource_sits_under_a_named_component(run):
    assert assert_every_resource_sits_under_a_named_component(run) == {
        "cloud-trading-bot:storage:DeploymentBucket",
        "cloud-trading-bot:lambda:LambdaPackage",
        "cloud-trading-bot:data:BotData",
        "cloud-trading-bot:lambda:MarketDataFunction",
        "cloud-trading-bot:service:ServiceNetwork",
        "cloud-trading-bot:service:StrategyService",
    }


def test_exports(run, stack, artifact):
    assert set(run.outputs) >= EXPORTS
    assert run.outputs["bucket_name"] == BUCKET
    assert run.outputs["lambda_s3_key"] == f"lambda/{stack}/lambda_deployment.zip"
    assert run.outputs["function_name"] == f"market_data_fetcher-{stack}"
    assert run.outputs["alias_arn"].endswith(f":function:market_data_fetcher-{stack}:live")
    assert run.outputs["package_sha256"] == artifact.sha256
    assert run.outputs["table_name"] == f"cloud-trading-bot-{stack}-market-data"
    assert run.outputs["secret_arn"].startswith("arn:aws:secretsmanager:")
    policy = run.outputs["deployer_policy"]
    assert by_sid(policy)["PackageObjects"]["Resource"] == [
        f"arn:aws:s3:::{BUCKET}/lambda/{stack}/*"
    ]


def test_dev_and_prod_coexist_in_one_account(runs):
    def physical(run):
        # Account-wide names (an alias name is only unique within its function).
        names = set()
        for r in run.resources:
            if r.type == "aws:lambda/alias:Alias":
                continue
            for key in ("name", "key", "layerName"):
                if isinstance(r.inputs.get(key), str) and r.type.startswith("aws:"):
                    names.add((r.type, r.inputs[key]))
        return names

    dev, prod = physical(runs["dev"]), physical(runs["prod"])
    assert len(dev) >= 10
    assert dev.isdisjoint(prod)


# ---- the path contract (docs/DESIGN.md decision 3)


def test_object_key_version_and_hash_are_what_the_function_deploys(run, stack, artifact):
    obj = run.one("aws:s3/bucketObjectv2:BucketObjectv2")
    function = run.one("aws:lambda/function:Function").inputs
    key = f"lambda/{stack}/lambda_deployment.zip"
    assert obj.inputs["key"] == key == function["s3Key"] == run.outputs["lambda_s3_key"]
    assert obj.inputs["bucket"] == BUCKET == function["s3Bucket"]
    assert function["s3ObjectVersion"] == run.outputs["package_version"]
    assert function["s3ObjectVersion"].startswith("version-")
    assert function["sourceCodeHash"] == artifact.sha256_b64
    # Lambda's own CodeSha256 of the zip: what drift detection compares with AWS.
    assert function["codeSha256"] == artifact.sha256_b64
    assert obj.inputs["source"].path == str(artifact.path)
    assert obj.inputs["checksumAlgorithm"] == "SHA256"
    assert obj.inputs["metadata"] == artifact.metadata()
    assert function["publish"] is True


def test_function_settings_come_from_the_config(run, stack):
    function = run.one("aws:lambda/function:Function").inputs
    assert function["name"] == f"market_data_fetcher-{stack}"
    assert function["handler"] == "aws.market_data_fetcher.handler"
    assert function["runtime"] == "python3.12"
    assert function["architectures"] == ["x86_64"]
    assert function["memorySize"] == 512
    assert function["timeout"] == 300
    # Unreserved by default: a new account (concurrency quota 10) refuses any reservation.
    assert function["reservedConcurrentExecutions"] == -1
    # Text: the seed's `--filter-pattern REPORT` must match the platform's REPORT lines.
    assert function["loggingConfig"]["logFormat"] == "Text"
    assert "applicationLogLevel" not in function["loggingConfig"]
    # dev's stack file sets DEBUG; prod keeps the default; the runtime filters by it
    level = {"dev": "DEBUG", "prod": "INFO"}[stack]
    assert function["environment"]["variables"]["LOG_LEVEL"] == level


def test_every_function_setting_reaches_aws_when_not_the_default(tmp_path):
    # The shipped stacks use the defaults, which FunctionArgs shares: only values that
    # differ from them show that each key is handed on, not dropped.
    overrides = {
        "memorySize": 1024,
        "timeout": 60,
        "reservedConcurrency": 5,
        "logLevel": "WARNING",
        "maxRetryAttempts": 0,
        "maxEventAgeSeconds": 3600,
        "runtime": "python3.13",
        "architecture": "arm64",
        "symbols": ["MSFT", "NVDA"],
        "marketDataProvider": "fixture",
        "schedule": "cron(0 21 ? * MON-FRI *)",
    }
    manifest = make_artifact(tmp_path, runtime="python3.13", architecture="arm64").manifest_path
    make_image_layout(tmp_path / "image", architecture="arm64")
    run = run_program("dev", manifest, overrides=overrides, image_layout=tmp_path / "image")
    function = run.one("aws:lambda/function:Function").inputs
    assert (function["runtime"], function["architectures"]) == ("python3.13", ["arm64"])
    assert (function["memorySize"], function["timeout"]) == (1024, 60)
    assert function["reservedConcurrentExecutions"] == 5
    env = function["environment"]["variables"]
    assert (env["LOG_LEVEL"], env["SYMBOLS"], env["MARKET_DATA_PROVIDER"]) == (
        "WARNING",
        "MSFT,NVDA",
        "fixture",
    )
    invoke = run.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert (invoke["maximumRetryAttempts"], invoke["maximumEventAgeInSeconds"]) == (0, 3600)
    rule = run.under("fetcher").one("aws:cloudwatch/eventRule:EventRule").inputs
    assert rule["scheduleExpression"] == "cron(0 21 ? * MON-FRI *)"


def test_environment_follows_the_contract_and_holds_no_secret(run, stack):
    env = run.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert set(env) == CONTRACT_ENV
    assert env["ENVIRONMENT"] == stack
    assert env["BUCKET_NAME"] == BUCKET
    assert env["DATA_PREFIX"] == f"data/{stack}/"
    assert env["LOGS_PREFIX"] == f"logs/{stack}/"
    assert env["TABLE_NAME"] == f"cloud-trading-bot-{stack}-market-data"
    assert env["API_KEY_SECRET_ARN"] == run.outputs["secret_arn"]
    assert env["SYMBOLS"] == "SPY,QQQ,AAPL"
    assert env["MARKET_DATA_PROVIDER"] == "yfinance"


def test_alias_schedule_and_async_config_target_live(run, stack):
    alias = run.one("aws:lambda/alias:Alias").inputs
    assert alias["name"] == "live"
    assert alias["functionVersion"] == "1"  # the version `publish` created
    target = run.under("fetcher").one("aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["arn"] == run.outputs["alias_arn"]
    rule = run.under("fetcher").one("aws:cloudwatch/eventRule:EventRule").inputs
    assert rule["scheduleExpression"] == "cron(0 22 ? * MON-FRI *)"
    invoke_config = run.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert invoke_config.inputs["qualifier"] == "live"
    assert invoke_config.inputs["maximumRetryAttempts"] == 1
    assert invoke_config.inputs["maximumEventAgeInSeconds"] == 900


def test_alarms_on_errors_and_throttles(run, stack):
    alarms = {
        a.inputs["metricName"]: a.inputs
        for a in run.under("fetcher").of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    assert set(alarms) == {"Errors", "Throttles"}
    for alarm in alarms.values():
        assert alarm["namespace"] == "AWS/Lambda"
        assert alarm["dimensions"] == {"FunctionName": f"market_data_fetcher-{stack}"}
        assert alarm["threshold"] == 1


def test_table_is_on_demand_with_pitr_sse_ttl_and_prod_protection(run, stack):
    table = run.under("data").one("aws:dynamodb/table:Table").inputs
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert (table["hashKey"], table["rangeKey"]) == ("pk", "sk")
    assert {a["name"]: a["type"] for a in table["attributes"]} == {"pk": "S", "sk": "S"}
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
    assert table["pointInTimeRecovery"]["enabled"] is True
    assert table["serverSideEncryption"]["enabled"] is True
    assert table["deletionProtectionEnabled"] is (stack == "prod")


def test_secret_exists_without_a_version_when_no_key_is_configured(run, stack):
    secret = run.under("data").one("aws:secretsmanager/secret:Secret").inputs
    assert secret["name"] == f"cloud-trading-bot/{stack}/market-data-api-key"
    assert run.of_type("aws:secretsmanager/secretVersion:SecretVersion") == []


# ---- FSBP controls


def test_lambda_1_only_the_schedule_rule_may_invoke(run):
    (permission,) = run.of_type("aws:lambda/permission:Permission")
    rule_arn = "arn:aws:events:us-east-1:123456789012:rule/"
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["sourceArn"].startswith(rule_arn)
    assert permission.inputs["qualifier"] == "live"
    assert permission.inputs["action"] == "lambda:InvokeFunction"


def test_lambda_2_supported_runtime(run):
    assert run.one("aws:lambda/function:Function").inputs["runtime"] in RUNTIMES


def test_lambda_6_every_taggable_resource_is_tagged(run, stack):
    tagged = [r for r in run.resources if "tags" in r.inputs]
    assert {r.type for r in tagged} >= {
        "aws:lambda/function:Function",
        "aws:iam/role:Role",
        "aws:dynamodb/table:Table",
        "aws:cloudwatch/logGroup:LogGroup",
    }
    for resource in tagged:
        assert resource.inputs["tags"]["environment"] == stack, resource.name
        assert resource.inputs["tags"]["project"] == "cloud-trading-bot"


def test_lambda_7_active_tracing(run):
    assert run.one("aws:lambda/function:Function").inputs["tracingConfig"] == {"mode": "Active"}


def test_cloudwatch_16_log_group_retention_created_before_the_function(run, stack):
    log_group = run.under("fetcher").one("aws:cloudwatch/logGroup:LogGroup")
    expected = int(stack_config(stack)["cloud-trading-bot:logRetentionDays"])
    assert log_group.inputs["retentionInDays"] == expected > 0
    assert log_group.inputs["name"] == f"/aws/lambda/market_data_fetcher-{stack}"
    function = run.one("aws:lambda/function:Function")
    assert function.inputs["loggingConfig"]["logGroup"] == log_group.inputs["name"]
    assert run.depends_on(function, log_group)


def test_iam_1_and_21_execution_role_is_least_privilege(run, stack):
    fetcher = run.under("fetcher")
    role = fetcher.one("aws:iam/role:Role").inputs
    assert role["name"] == f"market_data_fetcher-{stack}-role"
    assert not role.get("managedPolicyArns")
    trust = json.loads(role["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    policy = json.loads(fetcher.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert_no_wildcards(policy, allowed_star_sids={"XRayWrite"})
    statements = by_sid(policy)
    account = "us-east-1:123456789012"
    assert statements["OwnTable"]["Resource"] == [
        f"arn:aws:dynamodb:{account}:table/cloud-trading-bot-{stack}-market-data"
    ]
    assert statements["ReadOwnSecret"]["Resource"] == [run.outputs["secret_arn"]]
    assert statements["OwnLogGroupStreams"]["Resource"] == [
        f"arn:aws:logs:{account}:log-group:/aws/lambda/market_data_fetcher-{stack}:log-stream:*"
    ]
    assert statements["WriteOwnPrefixes"]["Resource"] == [
        f"arn:aws:s3:::{BUCKET}/data/{stack}/*",
        f"arn:aws:s3:::{BUCKET}/logs/{stack}/*",
    ]
    function = run.one("aws:lambda/function:Function")
    assert run.depends_on(function, fetcher.one("aws:iam/rolePolicy:RolePolicy"))


def test_iam_1_and_21_exported_deployer_policy_is_least_privilege(run, stack):
    # The document CI roles carry, as the program exported it for this stack.
    policy = run.outputs["deployer_policy"]
    # "*" only where IAM has no resource-level permissions (the service's two statements).
    assert_no_wildcards(policy, allowed_star_sids={"EcrAuthorizationToken", "ReadTaskDefinitions"})
    assert parliament_findings(policy) == []
    function = f"arn:aws:lambda:us-east-1:123456789012:function:market_data_fetcher-{stack}"
    assert by_sid(policy)["UpdateFunction"]["Resource"] == [function, f"{function}:*"]
    assert by_sid(policy)["PassExecutionRole"]["Resource"] == [run.outputs["role_arn"]]


def test_s3_2_3_8_public_access_fully_blocked(owner_run):
    block = owner_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag


def test_s3_5_bucket_policy_denies_insecure_transport(owner_run):
    policy = json.loads(owner_run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    deny = by_sid(policy)["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


def test_s3_12_acls_disabled(owner_run):
    controls = owner_run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert controls["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_s3_13_lifecycle_rules_by_prefix(owner_run, stack):
    lifecycle = owner_run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {r["filter"].get("prefix", ""): r for r in lifecycle.inputs["rules"]}
    assert set(rules) == {"lambda/", "logs/", "data/", ""}
    assert all(r["status"] == "Enabled" for r in rules.values())
    keep = 10 if stack == "prod" else 5
    days = 60 if stack == "prod" else 30
    assert rules["lambda/"]["noncurrentVersionExpiration"] == {
        "newerNoncurrentVersions": keep,
        "noncurrentDays": days,
    }
    # Current package versions are never expired.
    assert "expiration" not in rules["lambda/"]
    assert rules["logs/"]["transitions"][0]["storageClass"] == "STANDARD_IA"
    assert rules["logs/"]["expiration"]["days"] > rules["logs/"]["transitions"][0]["days"]
    assert rules["data/"]["transitions"] and "expiration" not in rules["data/"]
    # Rewrites of the same data key leave noncurrent copies: they expire, history stays.
    assert rules["data/"]["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    everywhere = rules[""]
    assert everywhere["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert everywhere["expiration"] == {"expiredObjectDeleteMarker": True}
    versioning = owner_run.one("aws:s3/bucketVersioning:BucketVersioning")
    assert owner_run.depends_on(lifecycle, versioning)


def test_s3_14_versioning_enabled_before_the_upload(owner_run):
    versioning = owner_run.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    upload = owner_run.one("aws:s3/bucketObjectv2:BucketObjectv2")
    assert owner_run.depends_on(upload, versioning)


def test_every_bucket_setting_is_retained_when_the_owner_stack_is_destroyed(owner_run):
    # GIVEN the owner stack WHEN it is destroyed (after unprotecting the bucket)
    # THEN none of the bucket's settings is deleted under the other stacks
    settings = [r for r in owner_run.resources if r.type in BUCKET_SETTINGS]
    assert {r.type for r in settings} == BUCKET_SETTINGS
    for resource in settings:
        assert resource.retain_on_delete, resource.type
        # Only the bucket is protected: unprotecting it is the one step to delete it all.
        assert not resource.protect, resource.type


def test_owner_bucket_is_protected_retained_and_aes256_by_default(owner_run):
    bucket = owner_run.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == BUCKET
    assert bucket.protect and bucket.retain_on_delete
    assert not bucket.inputs.get("forceDestroy")
    sse = owner_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


# ---- bucket modes and options


def test_non_owner_adopts_the_bucket_and_manages_nothing_on_it(runs):
    dev = runs["dev"]
    assert [r.type for r in dev.resources if r.type.startswith("aws:s3/")] == [
        "aws:s3/bucketObjectv2:BucketObjectv2"
    ]
    assert ("aws:s3/getBucket:getBucket", {"bucket": BUCKET}) in dev.calls
    assert dev.outputs["bucket_name"] == BUCKET


def test_non_owner_preview_fails_when_the_bucket_does_not_exist(artifact):
    run = run_program("dev", artifact.manifest_path, existing_buckets=set(), raises=Exception)
    assert "couldn't find resource" in str(run.error)
    assert run.of_type("aws:s3/bucketObjectv2:BucketObjectv2") == []


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_lifecycle_settings_on_an_adopting_stack_are_reported_not_ignored(artifact, caplog):
    # GIVEN dev, which adopts prod's bucket, asking for its own noncurrent-version rules
    overrides = {"lambdaNoncurrentVersions": 3, "lambdaNoncurrentDays": 7}
    with caplog.at_level("WARNING"):
        run = run_program("dev", artifact.manifest_path, overrides=overrides)
    # THEN the preview says they change nothing and where they belong
    (message,) = _warnings(caplog)
    assert "lambdaNoncurrentVersions = 3, lambdaNoncurrentDays = 7 has no effect" in message
    assert "bucketOwner = false" in message and "owner's stack file" in message
    # AND the deploy still goes ahead, with no lifecycle resource of its own
    assert run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration") == []
    assert run.outputs["bucket_name"] == BUCKET


def test_an_environment_other_than_the_stack_name_is_reported(artifact, caplog):
    # GIVEN the dev stack set to deploy environment "prod"
    with caplog.at_level("WARNING"):
        run = run_program("dev", artifact.manifest_path, overrides={"environment": "prod"})
    # THEN the preview says whose resources this stack now manages
    (message,) = _warnings(caplog)
    assert "environment = 'prod' differs from the stack name 'dev'" in message
    assert "market_data_fetcher-prod" in message
    assert run.outputs["function_name"] == "market_data_fetcher-prod"


@pytest.mark.parametrize("stack_name", SHIPPED_STACKS)
def test_shipped_stacks_preview_without_warnings(artifact, caplog, stack_name):
    # prod owns the bucket (its rules apply); dev leaves the rules at their defaults
    with caplog.at_level("WARNING"):
        run_program(stack_name, artifact.manifest_path)
    assert _warnings(caplog) == []


def test_kms_key_switches_bucket_object_and_role_to_sse_kms(artifact):
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    run = run_program("prod", artifact.manifest_path, overrides={"kmsKeyArn": kms})
    sse = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": kms,
    }
    assert rule["bucketKeyEnabled"] is True
    obj = run.one("aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert (obj["serverSideEncryption"], obj["kmsKeyId"]) == ("aws:kms", kms)
    policy = json.loads(run.under("fetcher").one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    assert by_sid(policy)["BucketKmsKey"]["Resource"] == [kms]
    assert by_sid(run.outputs["deployer_policy"])["BucketKmsKey"]["Resource"] == [kms]


def test_dependency_layer_is_uploaded_published_and_attached(layered_artifact):
    run = run_program("dev", layered_artifact.manifest_path, overrides={"dependencyLayer": True})
    layer_zip = layered_artifact.layer
    objects = {o.inputs["key"]: o for o in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    key = layer_key("dev", layer_zip.sha256)
    assert set(objects) == {"lambda/dev/lambda_deployment.zip", key}
    assert objects[key].inputs["metadata"] == layer_zip.metadata()
    layer = run.one("aws:lambda/layerVersion:LayerVersion").inputs
    assert layer["layerName"] == "market_data_fetcher-dev-deps"
    assert layer["s3Key"] == key
    assert layer["s3ObjectVersion"].startswith("version-")
    assert layer["sourceCodeHash"] == layer_zip.sha256_b64
    # A new dependency set publishes a new version; the old one stays for rollbacks.
    assert layer["skipDestroy"] is True
    assert layer["compatibleRuntimes"] == ["python3.12"]
    function = run.one("aws:lambda/function:Function").inputs
    assert function["layers"] == [
        "arn:aws:lambda:us-east-1:123456789012:layer:market_data_fetcher-dev-deps:1"
    ]
    assert "PublishLayer" in by_sid(run.outputs["deployer_policy"])


def test_a_layer_published_from_other_bytes_is_never_attached(layered_artifact):
    # GIVEN Lambda reports a CodeSha256 for the published layer that is not the built zip's
    wrong = {"aws:lambda/layerVersion:LayerVersion": {"codeSha256": "A" * 43 + "="}}
    run = run_program(
        "dev",
        layered_artifact.manifest_path,
        overrides={"dependencyLayer": True},
        outputs=wrong,
        raises=LayerMismatch,
    )
    # THEN the update fails naming both hashes, and the function is never created
    assert "A" * 43 + "=" in str(run.error)
    assert layered_artifact.layer.sha256_b64 in str(run.error)
    assert run.of_type("aws:lambda/function:Function") == []


def test_api_key_becomes_a_secret_version_and_nothing_else(artifact):
    run = run_program("dev", artifact.manifest_path, secrets={"marketDataApiKey": "sk-test-9f8e7d"})
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion").inputs
    assert is_secret(version["secretString"])
    assert version["secretString"]["value"] == "sk-test-9f8e7d"
    others = [
        r for r in run.resources if r.type != "aws:secretsmanager/secretVersion:SecretVersion"
    ]
    assert "sk-test-9f8e7d" not in json.dumps([r.inputs for r in others], default=str)


def test_no_schedule_means_no_rule_target_or_permission(artifact):
    run = run_program("dev", artifact.manifest_path, overrides={"schedule": ""})
    for type_ in (
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:lambda/permission:Permission",
    ):
        assert run.under("fetcher").of_type(type_) == []
    assert run.of_type("aws:lambda/alias:Alias")


def test_alarm_topic_is_notified(artifact):
    topic = "arn:aws:sns:us-east-1:123456789012:trading-alerts"
    run = run_program("dev", artifact.manifest_path, overrides={"alarmTopicArn": topic})
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert {a.inputs["metricName"] for a in alarms} == {
        "Errors",
        "Throttles",
        "RunningTaskCount",
        "UnexpectedTaskStops",
    }
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topic]
        assert alarm.inputs["okActions"] == [topic]


# ---- failures happen before any resource exists


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memorySize", 64),
        ("runtime", "python2.7"),
        ("lambdaS3Key", "code/app.zip"),
        ("bucketName", "Bad_Bucket"),
        ("logRetentionDays", 10),
        ("schedule", "every day"),
        # issue 10's hostile values, through the engine's config as the CLI passes it
        ("environment", "dev\n"),
        ("memorySize", "9" * 5000),
        ("schedule", "cron(0 12 * * * *)"),
        ("lambdaS3Key", "lambda/prod/lambda_deployment.zip"),
        ("tags", {"environment": "spoofed"}),
        ("taskMemory", 4096),
    ],
)
def test_bad_config_fails_the_preview_before_any_resource(artifact, key, value):
    run = run_program("dev", artifact.manifest_path, overrides={key: value}, raises=ConfigError)
    assert f"cloud-trading-bot:{key} = " in str(run.error)
    # One problem, one line under the heading, naming the key the user set.
    assert str(run.error).count("\n") == 1
    assert run.resources == []


def test_trading_problems_fail_the_preview_with_the_others(artifact):
    # GIVEN live trading asked for on dev, and a memory size out of range
    overrides = {"liveTrading": True, "tradingMode": "alpaca-live", "memorySize": 64}
    run = run_program("dev", artifact.manifest_path, overrides=overrides, raises=ConfigError)
    # THEN one error names both keys, before any resource exists
    assert "cloud-trading-bot:liveTrading" in str(run.error)
    assert "cloud-trading-bot:memorySize = '64'" in str(run.error)
    assert run.resources == []


def test_a_misspelt_namespace_fails_the_preview(artifact):
    # GIVEN `cloud-trading-bots:memorySize` beside the real namespace's keys
    run = run_program(
        "dev",
        artifact.manifest_path,
        overrides={"cloud-trading-bots:memorySize": 1024},
        raises=ConfigError,
    )
    assert "cloud-trading-bots: unknown config namespace; did you mean cloud-trading-bot" in str(
        run.error
    )
    assert run.resources == []


def test_the_stack_region_checks_the_arns(artifact):
    # GIVEN a KMS key in another region than the stack's aws:region (us-east-1)
    kms = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    run = run_program(
        "prod", artifact.manifest_path, overrides={"kmsKeyArn": kms}, raises=ConfigError
    )
    assert "must be in the stack's region us-east-1" in str(run.error)
    assert run.resources == []


def test_bad_ci_config_fails_before_any_resource(artifact):
    # The CI role is created last; its inputs are still checked with the config.
    ci = {"ciRoleEnabled": True, "githubRepository": "acme/bot", "githubBranch": "refs/heads/main"}
    run = run_program("prod", artifact.manifest_path, overrides=ci, raises=ConfigError)
    assert "cloud-trading-bot:githubBranch = 'refs/heads/main'" in str(run.error)
    assert run.resources == []


def test_unknown_key_in_the_stack_file_is_reported(artifact):
    run = run_program(
        "dev", artifact.manifest_path, overrides={"memorysize": 1024}, raises=ConfigError
    )
    assert "did you mean memorySize" in str(run.error)
    assert run.resources == []


def test_plaintext_api_key_fails_the_preview(artifact):
    run = run_program(
        "dev", artifact.manifest_path, overrides={"marketDataApiKey": "sk-x"}, raises=ConfigError
    )
    assert "--secret" in str(run.error)
    assert run.resources == []


def test_package_built_for_another_architecture_is_refused(tmp_path):
    arm = make_artifact(tmp_path, architecture="arm64")
    run = run_program("dev", arm.manifest_path, raises=ConfigError)
    assert "architecture arm64" in str(run.error) and "x86_64" in str(run.error)
    assert run.resources == []


def test_missing_manifest_is_a_one_line_error(tmp_path):
    run = run_program("dev", tmp_path / "nope.json", raises=ConfigError)
    assert "no such manifest" in str(run.error)
    assert run.resources == []
