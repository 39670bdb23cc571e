"""Pulumi Deployments for one stack: push-to-deploy and pull-request previews, run by
Pulumi Cloud from the GitHub repository, with AWS credentials by OIDC.

This is the alternative to the GitHub Actions deploy workflow (docs/cicd.md): use one or
the other for a stack, never both, or every push deploys twice. The GitHub workflows
skip themselves when the repository variable PULUMI_DEPLOYMENTS is "true".

Each stack's own program creates its settings (stack = pulumi.get_stack()), so the first
`pulumi up` of a stack with `deploymentsEnabled: true` is run by hand; every later push
is deployed by Pulumi Cloud, and a change to these settings deploys itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_pulumiservice as svc

from infra import ci_policies as cp
from lambda_pkg import limits

# AWS RoleSessionName: 2..64 of [\w+=,.@-].
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
# Go duration as Pulumi Cloud expects it ("1h0m0s"); STS allows 15 minutes to 12 hours.
_DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DEFAULT_EXECUTOR_IMAGE = "pulumi/pulumi-python-3.12"


@dataclass
class DeploymentsArgs:
    organization: str
    project: str
    stack: str
    repository: str
    # The role each deployment assumes (CiRole.deploy_role_arn, or config deployRoleArn).
    aws_role_arn: pulumi.Input[str]
    branch: str = "main"
    # Folder holding Pulumi.yaml, relative to the repository root; None: the root.
    repo_dir: str | None = None
    push_to_deploy: bool = True
    preview_pull_requests: bool = True
    # The package the pre-run command builds: the stack's own runtime and architecture,
    # so the program's ensure_artifact() finds it in the cache and builds nothing.
    runtime: str = limits.DEFAULT_RUNTIME
    architecture: str = limits.DEFAULT_ARCHITECTURE
    dependency_layer: bool = False
    # An image whose python3.12 matches the Lambda runtime, so the package ships .pyc
    # files compiled for it. None: Pulumi Cloud's default image.
    executor_image: str | None = DEFAULT_EXECUTOR_IMAGE
    session_duration: str = "1h0m0s"
    # Deploy only when these paths change (globs); empty: any change.
    paths: Sequence[str] = field(default_factory=tuple)


def _seconds(duration: str) -> int:
    m = _DURATION_RE.match(duration or "")
    if not duration or not m:
        raise cp.PolicyInputError(
            f"session_duration: {duration!r} is not a duration like '1h0m0s' or '45m'"
        )
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def _validate(args: DeploymentsArgs) -> None:
    cp.check_pulumi_name(args.organization, "pulumiOrganization")
    cp.check_pulumi_name(args.project, "project")
    cp.check_pulumi_name(args.stack, "stack")
    cp.check_repository(args.repository)
    cp.check_branch(args.branch)
    if isinstance(args.aws_role_arn, str) and not cp.ROLE_ARN_RE.match(args.aws_role_arn):
        raise cp.PolicyInputError(
            f"deployRoleArn: {args.aws_role_arn!r} is not an IAM role ARN; use "
            "arn:aws:iam::<12-digit account>:role/<name>, or set ciRoleEnabled: true so the "
            "program creates the role"
        )
    if args.repo_dir is not None and (
        not args.repo_dir or args.repo_dir.startswith("/") or ".." in args.repo_dir.split("/")
    ):
        raise cp.PolicyInputError(
            f"repo_dir: {args.repo_dir!r} must be a folder inside the repository, "
            "e.g. 'infra' (None for the root)"
        )
    if args.runtime not in limits.RUNTIME_GLIBC:
        raise cp.PolicyInputError(
            f"runtime: {args.runtime!r} is not supported; use one of "
            f"{', '.join(sorted(limits.RUNTIME_GLIBC))}"
        )
    if args.architecture not in limits.ARCHITECTURES:
        raise cp.PolicyInputError(
            f"architecture: {args.architecture!r}; use one of {', '.join(limits.ARCHITECTURES)}"
        )
    if not 900 <= _seconds(args.session_duration) <= 43200:
        raise cp.PolicyInputError(
            f"session_duration: {args.session_duration!r} must be between 15m0s and 12h0m0s"
        )
    if not _SESSION_NAME_RE.match(session_name(args.stack)):
        raise cp.PolicyInputError(f"stack: {args.stack!r} makes an invalid AWS session name")
    if not (args.push_to_deploy or args.preview_pull_requests):
        raise cp.PolicyInputError(
            "deploymentsEnabled: with neither push-to-deploy nor pull-request previews "
            "the settings would never trigger; set deploymentsEnabled: false instead"
        )


def session_name(stack: str) -> str:
    # Shows in CloudTrail as the assumed-role session: who did what, from which stack.
    return f"pulumi-deployments-{stack}"[:64]


def pre_run_commands(args: DeploymentsArgs) -> list[str]:
    """Build the package before the Pulumi operation: the size-budget report lands in the
    deployment log and a package over budget fails the deployment before anything is
    uploaded. The program then finds the same artifact in the cache (same input hash)."""
    build = [
        "python3",
        "-m",
        "lambda_pkg",
        "build",
        "--runtime",
        args.runtime,
        "--architecture",
        args.architecture,
    ]
    if args.dependency_layer:
        build.append("--layer")
    build.append("--json")
    return [" ".join(build)]


class Deployments(pulumi.ComponentResource):
    settings: svc.DeploymentSettings

    def __init__(
        self, name: str, args: DeploymentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Validate first: bad input fails before anything is registered.
        _validate(args)
        super().__init__("cloud-trading-bot:ci:Deployments", name, None, opts)

        executor = (
            svc.DeploymentSettingsExecutorContextArgs(executor_image=args.executor_image)
            if args.executor_image
            else None
        )
        self.settings = svc.DeploymentSettings(
            f"{name}-settings",
            organization=args.organization,
            project=args.project,
            stack=args.stack,
            vcs=svc.DeploymentSettingsVcsArgs(
                provider="github",
                repository=args.repository,
                deploy_commits=args.push_to_deploy,
                preview_pull_requests=args.preview_pull_requests,
                # Review stacks would create whole new stacks per PR: not for this bot.
                pull_request_template=False,
                paths=list(args.paths) or None,
            ),
            source_context=svc.DeploymentSettingsSourceContextArgs(
                git=svc.DeploymentSettingsGitSourceArgs(
                    branch=f"refs/heads/{args.branch}",
                    repo_dir=args.repo_dir,
                )
            ),
            operation_context=svc.DeploymentSettingsOperationContextArgs(
                oidc=svc.OperationContextOIDCArgs(
                    aws=svc.AWSOIDCConfigurationArgs(
                        role_arn=args.aws_role_arn,
                        session_name=session_name(args.stack),
                        duration=args.session_duration,
                    )
                ),
                pre_run_commands=pre_run_commands(args),
                options=svc.OperationContextOptionsArgs(
                    # Several pushes in a row deploy the newest commit once.
                    skip_intermediate_deployments=True,
                ),
            ),
            executor_context=executor,
            cache_options=svc.DeploymentSettingsCacheOptionsArgs(enable=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "stack": args.stack,
                "repository": args.repository,
                "branch": args.branch,
                "push_to_deploy": args.push_to_deploy,
                "preview_pull_requests": args.preview_pull_requests,
            }
        )
