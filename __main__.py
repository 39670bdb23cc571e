"""Cloud Trading Bot: the market-data Lambda, its package in S3 and what it uses, and the
strategy service on ECS Fargate (its image in ECR, its ledger, its network).

Config keys (namespace `cloud-trading-bot`; rules and defaults in infra/config/,
declared in Pulumi.yaml, documented in docs/infra.md):
  environment, bucketName, bucketOwner, lambdaS3Key, runtime, architecture,
  memorySize, timeout, schedule, symbols, logRetentionDays, reservedConcurrency,
  dependencyLayer, marketDataApiKey (secret), marketDataProvider, logLevel, kmsKeyArn,
  lambdaNoncurrentVersions, lambdaNoncurrentDays, deletionProtection, maxRetryAttempts,
  maxEventAgeSeconds, alarmTopicArn, tags, deploymentsEnabled, ciRoleEnabled,
  githubRepository, githubBranch, githubEnvironment, githubOidcProviderArn,
  pulumiOidcProviderArn, deployRoleArn, deploymentsPushToDeploy,
  deploymentsPreviewPullRequests; the strategy service's: strategyEnabled, strategy,
  strategyParams, barInterval, riskLimits, tradingMode, liveTrading, paperCash,
  paperSlippageBps, paperFeeRate, taskCpu, taskMemory, serviceBaseImage, serviceNetwork,
  serviceSubnetIds, brokerCredentials (secret).
Env: CTB_ARTIFACT_MANIFEST deploys a prebuilt package instead of the cached build;
CTB_IMAGE_LAYOUT a prebuilt image (an OCI layout); CTB_IMAGE_BASE the base of a cached
image build (e.g. `local`).
"""

import pulumi

from infra.artifact import get_artifact, get_image, image_warnings
from infra.bucket import BucketArgs, DeploymentBucket
from infra.cicd import wire_cicd
from infra.config import load_config
from infra.data import BotData, DataArgs
from infra.deployer_policy import policy_for_function_arn
from infra.function import FunctionArgs, MarketDataFunction
from infra.names import layer_key
from infra.package import LambdaPackage, PackageArgs
from infra.strategy import wire_service

# All three run before any resource exists: bad config or a mismatched package or image
# fails the preview, and nothing is built or pushed for a config that is refused.
cfg = load_config()
artifact = get_artifact(cfg)
image = get_image(cfg)  # None unless strategyEnabled
for warning in image_warnings(image):
    pulumi.log.warn(warning)
names, tags = cfg.names, cfg.all_tags

bucket = DeploymentBucket("deployment", BucketArgs(
    bucket_name=cfg.bucket_name, owner=cfg.bucket_owner, kms_key_arn=cfg.kms_key_arn,
    lambda_noncurrent_versions=cfg.lambda_noncurrent_versions,
    lambda_noncurrent_days=cfg.lambda_noncurrent_days, tags=tags,
))  # fmt: skip
package = LambdaPackage("package", PackageArgs(
    bucket_name=bucket.bucket_name, key=cfg.lambda_s3_key, artifact=artifact,
    layer_key=layer_key(cfg.environment, artifact.layer.sha256) if artifact.layer else None,
    layer_name=names.layer, kms_key_arn=cfg.kms_key_arn, depends_on=bucket.ready,
))  # fmt: skip
data = BotData("data", DataArgs(
    table_name=names.table, secret_name=names.secret, api_key=cfg.market_data_api_key,
    deletion_protection=cfg.deletion_protection, tags=tags,
))  # fmt: skip
fn = MarketDataFunction("fetcher", FunctionArgs(
    names=names, bucket_name=bucket.bucket_name, bucket_arn=bucket.bucket_arn,
    package_key=package.key, package_version=package.version_id,
    code_sha256_b64=artifact.sha256_b64, table_name=data.table_name, table_arn=data.table_arn,
    secret_arn=data.secret_arn, symbols=cfg.symbols, market_data_provider=cfg.market_data_provider,
    runtime=cfg.runtime, architecture=cfg.architecture, memory_size=cfg.memory_size,
    timeout=cfg.timeout, reserved_concurrency=cfg.reserved_concurrency,
    log_retention_days=cfg.log_retention_days, log_level=cfg.log_level, schedule=cfg.schedule,
    max_retry_attempts=cfg.max_retry_attempts, max_event_age_seconds=cfg.max_event_age_seconds,
    layer_arns=[package.layer_arn] if package.layer_arn else [], kms_key_arn=cfg.kms_key_arn,
    alarm_topic_arn=cfg.alarm_topic_arn, tags=tags,
))  # fmt: skip

# The strategy service (docs/service.md): network, image push, ECS, ledger, alarms.
strategy = wire_service(
    cfg, image, bucket_name=bucket.bucket_name, bucket_arn=bucket.bucket_arn,
    market_table_name=data.table_name, market_table_arn=data.table_arn, tags=tags,
)  # fmt: skip

deployer = fn.function_arn.apply(lambda arn: policy_for_function_arn(cfg, arn))

# CI/CD (docs/cicd.md): GitHub OIDC roles and Pulumi Deployments, both off by default.
ci = wire_cicd(cfg, deployer=deployer, tags=tags)

pulumi.export("bucket_name", bucket.bucket_name)
pulumi.export("lambda_s3_key", package.key)
pulumi.export("function_name", fn.function_name)
pulumi.export("function_arn", fn.function_arn)
pulumi.export("alias_arn", fn.alias_arn)
pulumi.export("role_arn", fn.role_arn)
pulumi.export("package_sha256", package.sha256)
pulumi.export("package_version", package.version_id)
pulumi.export("table_name", data.table_name)
pulumi.export("secret_arn", data.secret_arn)
pulumi.export("deployer_policy", deployer)
