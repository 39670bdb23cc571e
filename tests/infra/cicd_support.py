"""Run the CI components (CiRole, Deployments) directly under Pulumi mocks.

`run_components(build)` sets fresh mocks, calls `build()` inside a
`@pulumi.runtime.test` function (so the engine waits for every registration and every
Output), and hands back what each resource received plus the resolved outputs that
`build` returned. Tests assert on that record in plain Python, never inside .apply().
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

ACCOUNT = "123456789012"
PROJECT = "cloud-trading-bot"
ORG = "acme"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""

    @property
    def parent_type(self) -> str | None:
        chain = self.urn.split("::")[2].split("$")
        return chain[-2] if len(chain) > 1 else None

    def policy(self, key: str) -> dict[str, Any]:
        """A JSON policy input, parsed."""
        return json.loads(self.inputs[key])


@dataclass
class Run:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Recorded:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource {name}, found {len(found)}"
        return found[0]


class CicdMocks(pulumi.runtime.Mocks):
    def __init__(self, resources: list[Recorded]) -> None:
        self.resources = resources

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs)))
        out = dict(args.inputs)
        if args.typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.inputs['name']}"
        elif args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = args.inputs["url"].removeprefix("https://")
            out["arn"] = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{host}"
        return f"{args.name}-id", out

    def call(self, args: pulumi_mocks.MockCallArgs):
        raise NotImplementedError(f"the CI components are not expected to call {args.token}")


def run_components(
    build: Callable[[], dict[str, Any]],
    *,
    stack: str = "dev",
    record: list[Recorded] | None = None,
) -> Run:
    """`record`, when given, receives every registration even if `build` raises."""
    mocks = CicdMocks(record if record is not None else [])
    monitor = pulumi_mocks.MockMonitor(mocks)
    # Runtime state is process-global: a fresh root stack for every run.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor, organization=ORG
    )
    run = Run(mocks.resources)

    @pulumi.runtime.test
    def program():
        outputs = build()
        return pulumi.Output.all(**outputs).apply(run.outputs.update)

    program()
    urns = {urn.rsplit("::", 1)[1]: urn for urn in monitor.get_registered_resources()}
    for recorded in run.resources:
        recorded.urn = urns[recorded.name]
    return run


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
