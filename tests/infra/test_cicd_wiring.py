"""The program's CI/CD wiring (infra/cicd.py), run through the real __main__.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.infra.harness import ROOT, SHIPPED_STACKS, run_program
from tests.infra.test_program import assert_every_resource_sits_under_a_named_component

CI_TYPES = {
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
    "pulumiservice:index:DeploymentSettings",
}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_create_no_ci_resources(stack, artifact):
    run = run_program(stack, artifact.manifest_path)
    assert not [r for r in run.resources if r.type in CI_TYPES]
    assert "ci_deploy_role_arn" not in run.outputs


def test_ci_role_and_deployments_are_wired_from_config(artifact):
    # GIVEN prod with both CI switches on
    run = run_program(
        "prod",
        artifact.manifest_path,
        overrides={
            "ciRoleEnabled": True,
            "deploymentsEnabled": True,
            "githubRepository": "acme/trading-bot",
        },
    )
    # THEN the deploy role carries exactly the stack's exported deployer policy
    (deploy_policy,) = [
        r
        for r in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("ci-") and "deploy" in r.name
    ]
    assert json.loads(deploy_policy.inputs["policy"]) == run.outputs["deployer_policy"]
    # AND prod's deploy role trusts the gated `production` environment, not pull requests
    roles = {r.name: r for r in run.of_type("aws:iam/role:Role") if r.name.startswith("ci-")}
    deploy_trust = json.dumps(
        next(json.loads(r.inputs["assumeRolePolicy"]) for n, r in roles.items() if "deploy" in n)
    )
    assert "repo:acme/trading-bot:environment:production" in deploy_trust
    assert "pull_request" not in deploy_trust
    # AND not the bare branch, which a job on main without the environment would present
    assert "ref:refs/heads/main" not in deploy_trust
    # AND Pulumi Deployments assumes that role, and does not deploy prod on push
    settings = run.one("pulumiservice:index:DeploymentSettings")
    assert settings.inputs["stack"] == "prod"
    aws_oidc = settings.inputs["operationContext"]["oidc"]["aws"]
    assert aws_oidc["roleARN"] == run.outputs["ci_deploy_role_arn"]
    assert settings.inputs["vcs"]["deployCommits"] is False  # Pulumi.prod.yaml
    assert settings.inputs["vcs"]["repository"] == "acme/trading-bot"
    # AND it builds the service's image before the operation, as it builds the package
    pre_run = settings.inputs["operationContext"]["preRunCommands"]
    assert [c.split()[3] for c in pre_run] == ["build", "image"]
    # AND the role ARNs are exported
    assert {"ci_deploy_role_arn", "ci_preview_role_arn"} <= set(run.outputs)
    # AND the CI resources, like every other, sit under their named components
    assert {
        "cloud-trading-bot:ci:CiRole",
        "cloud-trading-bot:ci:Deployments",
    } <= assert_every_resource_sits_under_a_named_component(run)


def test_a_stack_without_deployments_does_not_import_the_pulumi_service_provider(artifact):
    # In a fresh interpreter: other tests import infra.deployments into this one.
    script = (
        "import sys\n"
        "from tests.infra.harness import run_program\n"
        f"run = run_program('dev', {str(artifact.manifest_path)!r})\n"
        "assert run.outputs['function_name'], run.outputs\n"
        "print('pulumi_pulumiservice' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
