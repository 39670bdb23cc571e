"""Wires the optional CI/CD resources (infra/ci_role.py, infra/deployments.py) from config.

Kept out of __main__.py so the program stays a thin list of components; both parts
are off unless `ciRoleEnabled` / `deploymentsEnabled` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from infra.ci_role import CiRole, CiRoleArgs, PulumiDeploymentsTrust
from infra.config import NAMESPACE, ConfigError, StackConfig

if TYPE_CHECKING:
    from infra.deployments import Deployments


@dataclass(frozen=True)
class CiCd:
    ci_role: CiRole | None
    deployments: Deployments | None


def _required(value: str | None, key: str) -> str:
    # infra.config already refuses a config without it; checked again so that no role
    # or setting is ever made with "None" in it.
    if value is None:
        raise ConfigError(f"{NAMESPACE}:{key}: must be set for the CI/CD resources")
    return value


def wire_cicd(cfg: StackConfig, *, deployer: Any, tags: dict[str, str]) -> CiCd:
    org, project, stack = pulumi.get_organization(), pulumi.get_project(), pulumi.get_stack()
    ci_role = None
    if cfg.ci_role_enabled:
        trust = None
        if cfg.deployments_enabled:
            trust = PulumiDeploymentsTrust(
                organization=org,
                project=project,
                stack=stack,
                preview_pull_requests=cfg.deployments_preview_pull_requests,
                oidc_provider_arn=cfg.pulumi_oidc_provider_arn,
            )
        ci_role = CiRole(
            "ci",
            CiRoleArgs(
                environment=cfg.environment,
                repository=_required(cfg.github_repository, "githubRepository"),
                branch=cfg.github_branch,
                deployer_policy=deployer,
                github_environments=[cfg.github_environment] if cfg.github_environment else [],
                github_oidc_provider_arn=cfg.github_oidc_provider_arn,
                pulumi_deployments=trust,
                tags=tags,
            ),
        )
        pulumi.export("ci_deploy_role_arn", ci_role.deploy_role_arn)
        pulumi.export("ci_preview_role_arn", ci_role.preview_role_arn)
    deployments = None
    if cfg.deployments_enabled:
        # Imported here: pulumi_pulumiservice costs every preview tens of milliseconds,
        # and the shipped stacks leave deployments off.
        from infra.deployments import Deployments, DeploymentsArgs

        deployments = Deployments(
            "deployments",
            DeploymentsArgs(
                organization=org,
                project=project,
                stack=stack,
                repository=_required(cfg.github_repository, "githubRepository"),
                branch=cfg.github_branch,
                aws_role_arn=(
                    ci_role.deploy_role_arn
                    if ci_role
                    else _required(cfg.deploy_role_arn, "deployRoleArn")
                ),
                push_to_deploy=cfg.deployments_push_to_deploy,
                preview_pull_requests=cfg.deployments_preview_pull_requests,
                runtime=cfg.runtime,
                architecture=cfg.architecture,
                dependency_layer=cfg.dependency_layer,
                service_image=cfg.strategy_enabled,
                service_base_image=cfg.service_base_image,
            ),
        )
    return CiCd(ci_role=ci_role, deployments=deployments)
