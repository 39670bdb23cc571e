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
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_pulumiservice as svc

from infra import ci_policies as cp
from lambda_pkg import limits
from lambda_pkg.platforms import python_version

# AWS RoleSessionName: 2..64 of [\w+=,.@-].
_SESSION_NAME_RE = re.compile(r"[A-Za-z0-9_+=,.@-]{2,64}", re.ASCII)


def executor_image(runtime: str) -> str:
    """Pulumi's image whose Python is the Lambda runtime's, so the package ships .pyc
    files compiled for it (another Python builds without bytecode: slower cold starts)."""
    return f"pulumi/pulumi-python-{python_version(runtime)}"


# The deploy role's session, as a Go duration (Pulumi Cloud's format): one hour, the
# role's own maximum (infra/ci_role.py).
SESSION_DURATION = "1h0m0s"


@dataclass
class DeploymentsArgs:
    organization: str
    project: str
    stack: str
    repository: str
    # The role each deployment assumes (CiRole.deploy_role_arn, or config deployRoleArn).
    aws_role_arn: pulumi.Input[str]
    branch: str = "main"
    push_to_deploy: bool = True
    preview_pull_requests: bool = True
    # The package the pre-run command builds: the stack's own runtime and architecture,
    # so the program's ensure_artifact() finds it in the cache and builds nothing.
    runtime: str = limits.DEFAULT_RUNTIME
    architecture: str = limits.DEFAULT_ARCHITECTURE
    dependency_layer: bool = False
    # The strategy service's image too (strategyEnabled), on the stack's serviceBaseImage
    # (None: the builder's pinned official base): the program's ensure_image then finds
    # it in the cache.
    service_image: bool = False
    service_base_image: str | None = None


def _validate(args: DeploymentsArgs) -> None:
    cp.check_pulumi_name(args.organization, "pulumiOrganization")
    cp.check_pulumi_name(args.project, "project")
    cp.check_pulumi_name(args.stack, "stack")
    cp.check_repository(args.repository)
    cp.check_branch(args.branch)
    if isinstance(args.aws_role_arn, str) and not cp.ROLE_ARN_RE.fullmatch(args.aws_role_arn):
        raise cp.PolicyInputError(
            f"deployRoleArn: {args.aws_role_arn!r} is not an IAM role ARN; use "
            "arn:aws:iam::<12-digit account>:role/<name>, or set ciRoleEnabled: true so the "
            "program creates the role"
        )
    # The same lists as the stack's config (both from lambda_pkg.limits), for callers
    # other than the program: the pre-run command must build a package the stack accepts.
    if args.runtime not in limits.RUNTIMES:
        raise cp.PolicyInputError(
            f"runtime: {args.runtime!r} is not supported; use one of {', '.join(limits.RUNTIMES)}"
        )
    if args.architecture not in limits.ARCHITECTURES:
        raise cp.PolicyInputError(
            f"architecture: {args.architecture!r}; use one of {', '.join(limits.ARCHITECTURES)}"
        )
    if not _SESSION_NAME_RE.fullmatch(session_name(args.stack)):
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
    """Build the package (and the service's image) before the Pulumi operation: the
    size-budget reports land in the deployment log and a build over budget fails the
    deployment before anything is uploaded. The program then finds the same artifact and
    image in the cache (same input hash)."""
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
    commands = [" ".join(build)]
    if args.service_image:
        image = ["python3", "-m", "lambda_pkg", "image", "--runtime", args.runtime,
                 "--architecture", args.architecture]  # fmt: skip
        if args.service_base_image:
            image += ["--base", args.service_base_image]
        commands.append(shlex.join([*image, "--json"]))
    return commands


class Deployments(pulumi.ComponentResource):
    settings: svc.DeploymentSettings

    def __init__(
        self, name: str, args: DeploymentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Validate first: bad input fails before anything is registered.
        _validate(args)
        super().__init__("cloud-trading-bot:ci:Deployments", name, None, opts)

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
            ),
            source_context=svc.DeploymentSettingsSourceContextArgs(
                # Pulumi.yaml is at the repository root, so no repo_dir.
                git=svc.DeploymentSettingsGitSourceArgs(branch=f"refs/heads/{args.branch}")
            ),
            operation_context=svc.DeploymentSettingsOperationContextArgs(
                oidc=svc.OperationContextOIDCArgs(
                    aws=svc.AWSOIDCConfigurationArgs(
                        role_arn=args.aws_role_arn,
                        session_name=session_name(args.stack),
                        duration=SESSION_DURATION,
                    )
                ),
                pre_run_commands=pre_run_commands(args),
                options=svc.OperationContextOptionsArgs(
                    # Several pushes in a row deploy the newest commit once.
                    skip_intermediate_deployments=True,
                ),
            ),
            executor_context=svc.DeploymentSettingsExecutorContextArgs(
                executor_image=executor_image(args.runtime)
            ),
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
