"""IAM and bucket policy documents as pure functions returning dicts.

Pure so they are easy to test, diff and print, and so the program, the deployer
policy command and the CI role all build the same documents from the same names.
No function here talks to AWS or to the Pulumi engine.

Wildcards: no action is ever `service:*`, and no resource is `"*"` except for the
actions IAM offers no resource-level scoping for, each named where it is granted:
X-Ray's PutTraceSegments/PutTelemetryRecords, ECR's GetAuthorizationToken, and ECS's
DescribeTaskDefinition. A trailing `*` appears only below a scoped ARN (objects under a
prefix, the streams of one log group, the versions and aliases of one function, the
revisions of one task definition family).
"""

from __future__ import annotations

from typing import Any

from infra.names import ServiceNames

Policy = dict[str, Any]

VERSION = "2012-10-17"

# Exactly what the runtime calls on its table (docs/runtime.md, "Exactly what the
# runtime calls"): batch writes of bars, and DescribeTable in test mode. It never
# reads items back, so no GetItem/Query/PutItem.
DYNAMODB_ACTIONS = ("dynamodb:BatchWriteItem", "dynamodb:DescribeTable")
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")

# Exactly what the strategy service calls on its ledger (backend/trading/dynamo.py:
# get_item, query, put_item, delete_item, transact_write_items of Put and Delete). A
# TransactWriteItems call has no IAM action of its own: DynamoDB authorises each item in
# it as the PutItem or DeleteItem it is. No UpdateItem, no Scan, no DescribeTable.
LEDGER_ACTIONS = (
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
)
# backend/service/market.py reads every symbol's LATEST item with one BatchGetItem a
# step, and Queries the table only for a gap; nothing else.
MARKET_DATA_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:Query")
# What pulling an image from ECR takes (the task's execution role), and what pushing
# one takes (the deployer: HEAD a blob, upload it in parts, PUT the manifest; the
# BatchGetImage is the HEAD of a manifest that may already be there).
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
ECR_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
ECS_TASKS = "ecs-tasks.amazonaws.com"


def _statement(
    sid: str, actions: list[str] | tuple[str, ...], resources: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources,
        **extra,
    }


def parse_arn(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of an ARN such as a function's."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return parts[1], parts[3], parts[4]


def bucket_arn(bucket: str, partition: str = "aws") -> str:
    return f"arn:{partition}:s3:::{bucket}"


def lambda_trust_policy() -> Policy:
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "LambdaAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def execution_role_policy(
    *,
    bucket_arn: str,
    data_prefix: str,
    logs_prefix: str,
    table_arn: str,
    secret_arn: str,
    log_group_arn: str,
    kms_key_arn: str | None = None,
) -> Policy:
    """What the function may do: its own log group, its own prefixes, table and secret."""
    statements = [
        # The log group is created by the program, so no logs:CreateLogGroup.
        _statement(
            "OwnLogGroupStreams",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"{log_group_arn}:log-stream:*"],
        ),
        # Write-only: the function never reads or deletes other objects, so a bug
        # or a stolen token cannot touch packages under lambda/ or other envs' data.
        _statement(
            "WriteOwnPrefixes",
            ["s3:PutObject"],
            [f"{bucket_arn}/{data_prefix}*", f"{bucket_arn}/{logs_prefix}*"],
        ),
        # Read back its own data only: a run merges new bars into the objects it wrote
        # before and updates the index with conditional writes, which need the ETag.
        # No ListBucket: the index says what exists (docs/runtime.md).
        _statement("ReadOwnData", ["s3:GetObject"], [f"{bucket_arn}/{data_prefix}*"]),
        _statement("OwnTable", DYNAMODB_ACTIONS, [table_arn]),
        _statement("ReadOwnSecret", ["secretsmanager:GetSecretValue"], [secret_arn]),
        # X-Ray's write APIs have no resource-level permissions: "*" is the only form.
        _statement("XRayWrite", XRAY_ACTIONS, ["*"]),
    ]
    if kms_key_arn:
        # SSE-KMS bucket: a (single-part) PutObject needs a data key under it.
        statements.append(_statement("BucketKmsKey", ["kms:GenerateDataKey"], [kms_key_arn]))
    return {"Version": VERSION, "Statement": statements}


def ecs_tasks_trust_policy(
    *, source_account: str | None = None, source_arn: str | None = None
) -> Policy:
    """ECS tasks may assume the role. With a source account and ARN pattern (the task
    role), only ECS acting for this account's tasks can: AWS's guard against the
    confused deputy for task roles."""
    statement: dict[str, Any] = {
        "Sid": "EcsTasksAssumeRole",
        "Effect": "Allow",
        "Principal": {"Service": ECS_TASKS},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if source_account:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if condition:
        statement["Condition"] = condition
    return {"Version": VERSION, "Statement": [statement]}


def task_role_policy(
    *,
    bucket_arn: str,
    data_prefix: str,
    decisions_prefix: str,
    market_table_arn: str,
    ledger_table_arn: str,
    broker_secret_arn: str | None = None,
    kms_key_arn: str | None = None,
) -> Policy:
    """What the strategy service may do (docs/CONTRACTS.md §10): read its environment's
    data, write its decision records, query the market data, keep its own ledger, read
    the broker secret by ARN. Nothing it does not call."""
    statements = [
        # The backtester's history; the index says what exists, so no ListBucket.
        _statement("ReadOwnData", ["s3:GetObject"], [f"{bucket_arn}/{data_prefix}*"]),
        # Decision records only, never the fetcher's logs or data: write-only.
        _statement("WriteDecisionRecords", ["s3:PutObject"], [f"{bucket_arn}/{decisions_prefix}*"]),
        _statement("ReadMarketData", MARKET_DATA_ACTIONS, [market_table_arn]),
        _statement("OwnLedger", LEDGER_ACTIONS, [ledger_table_arn]),
    ]
    if broker_secret_arn:
        statements.append(
            _statement("ReadBrokerSecret", ["secretsmanager:GetSecretValue"], [broker_secret_arn])
        )
    if kms_key_arn:
        # SSE-KMS bucket: reading the fetcher's objects decrypts, a PutObject needs a data key.
        statements.append(
            _statement("BucketKmsKey", ["kms:Decrypt", "kms:GenerateDataKey"], [kms_key_arn])
        )
    return {"Version": VERSION, "Statement": statements}


def task_execution_policy(*, repository_arn: str, log_group_arn: str) -> Policy:
    """What ECS does for the task before and around it: pull the image from the service's
    own repository and write the container's output to its own log group."""
    return {
        "Version": VERSION,
        "Statement": [
            _statement("PullOwnImage", ECR_PULL_ACTIONS, [repository_arn]),
            # GetAuthorizationToken has no resource-level permissions: "*" is the only
            # form. The token grants nothing by itself; the pull is still checked above.
            _statement("EcrAuthorizationToken", ["ecr:GetAuthorizationToken"], ["*"]),
            # The log group is created by the program, so no logs:CreateLogGroup.
            _statement(
                "OwnLogGroupStreams",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [f"{log_group_arn}:log-stream:*"],
            ),
        ],
    }


def events_to_logs_policy(*, log_group_arn: str, rule_arn: str) -> Policy:
    """The log group's resource policy that lets one EventBridge rule write to it (an
    EventBridge target in CloudWatch Logs needs one; the console makes it silently)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "StopEventsFromOneRule",
                "Effect": "Allow",
                "Principal": {"Service": ["delivery.logs.amazonaws.com", "events.amazonaws.com"]},
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group_arn}:*"],
                # Only this rule: no other rule, in any account, may write here.
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


def tls_only_bucket_policy(bucket_arn: str) -> Policy:
    """Deny every request that is not over TLS 1.2+ (FSBP S3.5)."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ],
    }


def deployer_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    bucket: str,
    key_prefix: str,
    function_name: str,
    role_name: str,
    layer_name: str | None = None,
    layer_key_prefix: str | None = None,
    kms_key_arn: str | None = None,
    service: ServiceNames | None = None,
) -> Policy:
    """The seed's "Minimum Permissions for Deployment", generated from the stack's names.

    Enough to upload a new package under `key_prefix` and point the function (and
    its `live` alias) at it, with `pulumi up` or `python -m ops upload`; with `service`,
    also to push the strategy service's image and roll its service onto a new task
    definition revision. Not enough to create the stack's other resources: the first
    `pulumi up` of a stack is run by an administrator (see docs/infra.md).
    """
    for prefix in (key_prefix, layer_key_prefix or "/"):
        if not prefix.endswith("/"):
            raise ValueError(f"key prefixes must end in '/': {prefix!r}")
    s3_bucket = bucket_arn(bucket, partition)
    objects = [f"{s3_bucket}/{key_prefix}*"]
    if layer_key_prefix and not layer_key_prefix.startswith(key_prefix):
        # The layer's folder is fixed (names.layer_key): a lambdaS3Key in another folder
        # would leave the deploy unable to upload it. Versions are listed (by
        # `python -m ops status`) for the package key alone, so only the objects need it.
        objects.append(f"{s3_bucket}/{layer_key_prefix}*")
    function_arn = f"arn:{partition}:lambda:{region}:{account_id}:function:{function_name}"
    role_arn = f"arn:{partition}:iam::{account_id}:role/{role_name}"
    statements = [
        # Upload (single or multipart), read back, verify the checksum. No delete of
        # a version: the rollback window is the lifecycle rule's job alone.
        _statement(
            "PackageObjects",
            [
                "s3:AbortMultipartUpload",
                "s3:GetObject",
                "s3:GetObjectTagging",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:PutObjectTagging",
            ],
            objects,
        ),
        # ListBucket cannot be narrowed by prefix here: HeadBucket needs it, and
        # without it S3 answers 403 instead of 404 for a package not uploaded yet.
        _statement(
            "FindBucketAndObjects",
            ["s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:ListBucket"],
            [s3_bucket],
        ),
        _statement(
            "ListPackageVersions",
            ["s3:ListBucketVersions"],
            [s3_bucket],
            Condition={"StringLike": {"s3:prefix": [f"{key_prefix}*"]}},
        ),
        _statement(
            "UpdateFunction",
            [
                "lambda:GetAlias",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionConfiguration",
                "lambda:ListTags",
                "lambda:ListVersionsByFunction",
                "lambda:PublishVersion",
                "lambda:UpdateAlias",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
            ],
            # The function itself, and its versions and aliases (":live", ":7").
            [function_arn, f"{function_arn}:*"],
        ),
        # The seed's deployment test after an update: `python -m ops invoke` ({"test": true}).
        _statement("TestInvoke", ["lambda:InvokeFunction"], [function_arn, f"{function_arn}:*"]),
        _statement(
            "PassExecutionRole",
            ["iam:PassRole"],
            [role_arn],
            Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        ),
    ]
    if layer_name:
        layer_arn = f"arn:{partition}:lambda:{region}:{account_id}:layer:{layer_name}"
        statements.append(
            _statement(
                "PublishLayer",
                ["lambda:GetLayerVersion", "lambda:PublishLayerVersion"],
                [layer_arn, f"{layer_arn}:*"],
            )
        )
    if kms_key_arn:
        # A multipart upload to an SSE-KMS bucket needs Decrypt as well as a data key.
        statements.append(
            _statement("BucketKmsKey", ["kms:Decrypt", "kms:GenerateDataKey"], [kms_key_arn])
        )
    if service is not None:
        statements += service_deployer_statements(
            partition=partition, region=region, account_id=account_id, names=service
        )
    return {"Version": VERSION, "Statement": statements}


def service_deployer_statements(
    *, partition: str, region: str, account_id: str, names: ServiceNames
) -> list[dict[str, Any]]:
    """A deploy of a new image or new settings: push the image to the service's own
    repository, register a task definition revision of its own family, point its own
    service at it. Creating or deleting any of them stays an administrator's job."""
    ecs = f"arn:{partition}:ecs:{region}:{account_id}"
    repository = f"arn:{partition}:ecr:{region}:{account_id}:repository/{names.repository}"
    revisions = f"{ecs}:task-definition/{names.task_family}:*"
    service = f"{ecs}:service/{names.cluster}/{names.service}"
    roles = [
        f"arn:{partition}:iam::{account_id}:role/{names.task_role}",
        f"arn:{partition}:iam::{account_id}:role/{names.execution_role}",
    ]
    return [
        _statement("PushServiceImage", ECR_PUSH_ACTIONS, [repository]),
        # No resource-level permissions for GetAuthorizationToken: "*" is the only form.
        # The token only authenticates; each push is still checked against the statement above.
        _statement("EcrAuthorizationToken", ["ecr:GetAuthorizationToken"], ["*"]),
        _statement("RegisterTaskDefinitionRevision", ["ecs:RegisterTaskDefinition"], [revisions]),
        # ECS authorises the tags given with RegisterTaskDefinition as a TagResource.
        _statement(
            "TagNewTaskDefinitionRevision",
            ["ecs:TagResource"],
            [revisions],
            Condition={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        ),
        # DescribeTaskDefinition has no resource-level permissions: "*" is the only form.
        # It reads a revision's settings, which hold no secret (only the broker secret's ARN).
        _statement("ReadTaskDefinitions", ["ecs:DescribeTaskDefinition"], ["*"]),
        _statement("UpdateOwnService", ["ecs:DescribeServices", "ecs:UpdateService"], [service]),
        _statement(
            "PassServiceRoles",
            ["iam:PassRole"],
            roles,
            Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS}},
        ),
    ]
