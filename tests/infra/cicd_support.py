"""Run the CI components (CiRole, Deployments) directly under Pulumi mocks.

`run_components(build)` sets fresh mocks, calls `build()` inside a
`@pulumi.runtime.test` function (so the engine waits for every registration and every
Output), and hands back what each resource received plus the resolved outputs that
`build` returned. Tests assert on that record in plain Python, never inside .apply().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.infra.harness import ACCOUNT, ORG, PROJECT, ProgramRun, run_under_mocks

__all__ = ["ACCOUNT", "ORG", "PROJECT", "Run", "run_components", "sample_deployer_policy"]

Run = ProgramRun


def run_components(
    build: Callable[[], dict[str, Any]],
    *,
    stack: str = "dev",
    record: list | None = None,
) -> Run:
    """`record`, when given, receives every registration even if `build` raises."""
    run = ProgramRun(record if record is not None else [], [])
    return run_under_mocks(build, stack=stack, run=run)


def sample_deployer_policy(bucket: str = "cloud-trading-bot-lambda-deployment-m6x4p8e"):
    """The shape infra.policies.deployer_policy() returns (kept local so these tests do
    not depend on that function's signature)."""
    s3 = f"arn:aws:s3:::{bucket}"
    fn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:market_data_fetcher-dev"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PackageObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                "Resource": [f"{s3}/lambda/dev/*"],
            },
            {
                "Sid": "ListPackagePrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": [s3],
                "Condition": {"StringLike": {"s3:prefix": ["lambda/dev/*"]}},
            },
            {
                "Sid": "UpdateFunction",
                "Effect": "Allow",
                "Action": [
                    "lambda:GetFunction",
                    "lambda:PublishVersion",
                    "lambda:UpdateFunctionCode",
                ],
                "Resource": [fn, f"{fn}:*"],
            },
            {
                "Sid": "PassExecutionRole",
                "Effect": "Allow",
                "Action": ["iam:PassRole"],
                "Resource": [f"arn:aws:iam::{ACCOUNT}:role/market_data_fetcher-dev-role"],
                "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
            },
            {
                "Sid": "ReadSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:x-AbCdEf"],
            },
        ],
    }
