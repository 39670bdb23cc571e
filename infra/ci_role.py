"""The CI roles: what GitHub Actions (and optionally Pulumi Deployments) assume, by OIDC.

Two roles per stack, because the two jobs need very different rights:
- `cloud-trading-bot-<env>-ci-deploy` carries the deployer policy
  (infra.policies.deployer_policy, passed in, never computed here) and trusts only the
  deploy branch or, when GitHub environments guard the stack (prod: `production`, with
  required reviewers), only those environments; and, when enabled, this stack's Pulumi
  Deployments.
- `cloud-trading-bot-<env>-ci-preview` carries a read-only view of that same policy and
  trusts pull requests. A pull request runs code nobody has reviewed yet, so it must
  never hold credentials that can change anything.

No access key exists anywhere: every credential is a short-lived STS session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import ci_policies as cp
from infra.names import PROJECT

# IAM's limit on a role name.
_ROLE_NAME_MAX = 64
# A CI job needs minutes, so the shortest maximum session IAM allows (3600..43200).
MAX_SESSION_SECONDS = 3600


def role_name(environment: str, suffix: str) -> str:
    return f"{PROJECT}-{environment}-{suffix}"


@dataclass
class PulumiDeploymentsTrust:
    """Lets this stack's Pulumi Deployments assume the deploy role."""

    organization: str
    project: str
    stack: str
    # Pulumi Deployments assumes ONE role for every operation of a stack, so PR previews
    # run with the deploy role. False keeps pull requests away from it (docs/cicd.md).
    preview_pull_requests: bool = True
    # There is one OIDC provider per URL per account: the second stack adopts the first's.
    oidc_provider_arn: pulumi.Input[str] | None = None


@dataclass
class CiRoleArgs:
    environment: str
    repository: str
    # The deployer policy document (dict, JSON text, or an Output of either).
    deployer_policy: pulumi.Input[str] | Mapping[str, Any]
    branch: str = "main"
    # GitHub environments whose jobs may deploy (their subject carries no branch). When
    # given, they are the only GitHub subjects the deploy role trusts.
    github_environments: Sequence[str] = ()
    # Adopt an existing GitHub OIDC provider (one per account) instead of creating it.
    github_oidc_provider_arn: pulumi.Input[str] | None = None
    pulumi_deployments: PulumiDeploymentsTrust | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def _validated(args: CiRoleArgs) -> tuple[list[str], list[str], list[str] | None]:
    """Checks every plain input before any resource exists; returns the subjects."""
    cp.check_pulumi_name(args.environment, "environment")
    deploy_subjects = cp.deploy_subjects(args.repository, args.branch, args.github_environments)
    preview_subjects = cp.preview_subjects(args.repository)
    # Config caps the environment at 16 characters; this component's own check
    # (a Pulumi name) allows 100, which IAM would refuse only at `pulumi up`.
    role = role_name(args.environment, "ci-preview")  # the longer of the two
    if len(role) > _ROLE_NAME_MAX:
        raise cp.PolicyInputError(
            f"environment: role name {role!r} is longer than {_ROLE_NAME_MAX} "
            "characters; use a shorter environment name"
        )
    policy = args.deployer_policy
    if isinstance(policy, str | Mapping) and _is_plain(policy):
        cp.read_only_policy(policy)  # raises, naming the key, on bad input
    pulumi_subjects = None
    pd = args.pulumi_deployments
    if pd is not None:
        ops = list(cp.PULUMI_WRITE_OPERATIONS)
        if pd.preview_pull_requests:
            ops.append(cp.PULUMI_PREVIEW_OPERATION)
        pulumi_subjects = cp.pulumi_subjects(pd.organization, pd.project, pd.stack, ops)
    return deploy_subjects, preview_subjects, pulumi_subjects


def _is_plain(value: Any) -> bool:
    """True when a nested dict/list holds no Output, so it can be checked right now."""
    if isinstance(value, pulumi.Output):
        return False
    if isinstance(value, Mapping):
        return all(_is_plain(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return True


def _policy_json(document: Any, transform: Callable[[Any], Any]) -> pulumi.Output[str]:
    # Output.from_input resolves Outputs nested inside a dict (ARNs, names).
    return pulumi.Output.from_input(document).apply(lambda d: json.dumps(transform(d)))


class CiRole(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]
    github_oidc_provider_arn: pulumi.Output[str]
    pulumi_oidc_provider_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: CiRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Validate first: bad input fails before anything is registered.
        deploy_subjects, preview_subjects, pulumi_subjects = _validated(args)
        super().__init__("cloud-trading-bot:ci:CiRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The provider is account-wide and other stacks' roles may trust it: keep it
        # when this stack is destroyed (the next stack adopts it by ARN).
        shared = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        tags = {**args.tags, "purpose": "ci"}

        if args.github_oidc_provider_arn is None:
            github = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=cp.GITHUB_OIDC_URL,
                client_id_lists=[cp.GITHUB_AUDIENCE],
                # No thumbprint: IAM verifies GitHub's certificate against its own
                # trusted CAs, so a pinned thumbprint would only break on rotation.
                tags=tags,
                opts=shared,
            )
            github_arn: pulumi.Output[str] = github.arn
        else:
            github_arn = pulumi.Output.from_input(args.github_oidc_provider_arn)

        pulumi_arn: pulumi.Output[str] | None = None
        pd = args.pulumi_deployments
        if pd is not None:
            if pd.oidc_provider_arn is None:
                pulumi_provider = aws.iam.OpenIdConnectProvider(
                    f"{name}-pulumi-oidc",
                    url=cp.PULUMI_OIDC_URL,
                    # Pulumi Cloud's token audience is the organization name.
                    client_id_lists=[pd.organization],
                    tags=tags,
                    opts=shared,
                )
                pulumi_arn = pulumi_provider.arn
            else:
                pulumi_arn = pulumi.Output.from_input(pd.oidc_provider_arn)

        def deploy_trust(arns: list[str]) -> str:
            statements = [cp.github_trust_statement(arns[0], deploy_subjects)]
            if pd is not None and pulumi_subjects:
                statements.append(
                    cp.pulumi_trust_statement(arns[1], pd.organization, pulumi_subjects)
                )
            return json.dumps(cp.trust_policy(statements))

        trust_inputs = [github_arn] + ([pulumi_arn] if pulumi_arn is not None else [])
        deploy = aws.iam.Role(
            f"{name}-deploy",
            name=role_name(args.environment, "ci-deploy"),
            description=f"CI deploy of the {args.environment} stack from "
            f"{args.repository}@{args.branch} (OIDC only)",
            assume_role_policy=pulumi.Output.all(*trust_inputs).apply(deploy_trust),
            max_session_duration=MAX_SESSION_SECONDS,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-policy",
            name="deployer",
            role=deploy.id,
            policy=_policy_json(args.deployer_policy, cp.parse_policy),
            opts=child,
        )

        preview = aws.iam.Role(
            f"{name}-preview",
            name=role_name(args.environment, "ci-preview"),
            description=f"Read-only pulumi preview of the {args.environment} stack for "
            f"pull requests of {args.repository} (OIDC only)",
            assume_role_policy=github_arn.apply(
                lambda arn: json.dumps(
                    cp.trust_policy([cp.github_trust_statement(arn, preview_subjects)])
                )
            ),
            max_session_duration=MAX_SESSION_SECONDS,
            tags=tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-preview-policy",
            name="read-only",
            role=preview.id,
            policy=_policy_json(args.deployer_policy, cp.read_only_policy),
            opts=child,
        )

        self.deploy_role_arn = deploy.arn
        self.preview_role_arn = preview.arn
        self.github_oidc_provider_arn = github_arn
        self.pulumi_oidc_provider_arn = pulumi_arn
        self.register_outputs(
            {
                "deploy_role_arn": deploy.arn,
                "preview_role_arn": preview.arn,
                "github_oidc_provider_arn": github_arn,
                "pulumi_oidc_provider_arn": pulumi_arn,
            }
        )
