"""Pulumi Deployments settings under Pulumi mocks: what Pulumi Cloud is told to run."""

from __future__ import annotations

import shlex

import pulumi
import pytest

from infra import ci_policies as cp
from infra.ci_role import CiRole, CiRoleArgs, PulumiDeploymentsTrust
from infra.deployments import Deployments, DeploymentsArgs, pre_run_commands
from tests.infra.cicd_support import ACCOUNT, Run, run_components, sample_deployer_policy

REPO = "acme/cloud-trading-bot"
SETTINGS = "pulumiservice:index:DeploymentSettings"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/cloud-trading-bot-dev-ci-deploy"


def args(**overrides) -> DeploymentsArgs:
    base = {
        "organization": "acme",
        "project": "cloud-trading-bot",
        "stack": "dev",
        "repository": REPO,
        "aws_role_arn": ROLE_ARN,
    }
    return DeploymentsArgs(**{**base, **overrides})


def build(**overrides) -> Run:
    def program():
        Deployments("deploy", args(**overrides))
        return {}

    return run_components(program)


def settings_of(run: Run) -> dict:
    (settings,) = run.of_type(SETTINGS)
    return settings.inputs


@pytest.fixture(scope="module")
def default_settings() -> dict:
    return settings_of(build())


class TestSettings:
    def test_targets_this_stack(self, default_settings):
        assert default_settings["organization"] == "acme"
        assert default_settings["project"] == "cloud-trading-bot"
        assert default_settings["stack"] == "dev"

    def test_git_source_is_the_branch_at_the_repository_root(self, default_settings):
        git = default_settings["sourceContext"]["git"]
        assert git["branch"] == "refs/heads/main"
        assert "repoDir" not in git
        # The GitHub app authenticates the clone: no git credentials in the settings.
        assert "gitAuth" not in git

    def test_push_to_deploy_and_pull_request_previews_from_github(self, default_settings):
        vcs = default_settings["vcs"]
        assert vcs["provider"] == "github"
        assert vcs["repository"] == REPO
        assert vcs["deployCommits"] is True
        assert vcs["previewPullRequests"] is True
        assert vcs["pullRequestTemplate"] is False
        # The deprecated `github` block is not used.
        assert "github" not in default_settings

    def test_aws_credentials_come_from_oidc_with_the_role(self, default_settings):
        ctx = default_settings["operationContext"]
        aws = ctx["oidc"]["aws"]
        assert aws["roleARN"] == ROLE_ARN
        assert aws["sessionName"] == "pulumi-deployments-dev"
        assert aws["duration"] == "1h0m0s"
        # No static credential anywhere in the settings.
        env = ctx.get("environmentVariables", {})
        assert not any("AWS_" in k for k in env)

    def test_pre_run_command_builds_the_stacks_package(self, default_settings):
        (command,) = default_settings["operationContext"]["preRunCommands"]
        argv = shlex.split(command)
        assert argv[:4] == ["python3", "-m", "lambda_pkg", "build"]
        assert argv[argv.index("--runtime") + 1] == "python3.12"
        assert argv[argv.index("--architecture") + 1] == "x86_64"
        assert "--json" in argv
        assert "--layer" not in argv

    def test_intermediate_pushes_are_consolidated(self, default_settings):
        assert default_settings["operationContext"]["options"] == {
            "skipIntermediateDeployments": True
        }

    def test_executor_image_matches_the_lambda_python(self, default_settings):
        assert default_settings["executorContext"] == {"executorImage": "pulumi/pulumi-python-3.12"}
        assert default_settings["cacheOptions"] == {"enable": True}

    def test_settings_are_a_child_of_the_component(self):
        run = build()
        (settings,) = run.of_type(SETTINGS)
        assert settings.name == "deploy-settings"
        assert settings.parent_type == "cloud-trading-bot:ci:Deployments"


class TestOptions:
    def test_prod_without_push_to_deploy(self):
        vcs = settings_of(build(stack="prod", push_to_deploy=False))["vcs"]
        assert vcs["deployCommits"] is False
        assert vcs["previewPullRequests"] is True

    def test_arm64_layered_package(self):
        a = args(architecture="arm64", dependency_layer=True, runtime="python3.11")
        argv = shlex.split(pre_run_commands(a)[0])
        assert argv[argv.index("--architecture") + 1] == "arm64"
        assert argv[argv.index("--runtime") + 1] == "python3.11"
        assert "--layer" in argv

    def test_the_service_image_is_built_before_the_operation_too(self):
        base = "python:3.12-slim@sha256:" + "d" * 64
        build_zip, build_image = pre_run_commands(args(service_image=True, service_base_image=base))
        assert shlex.split(build_zip)[:4] == ["python3", "-m", "lambda_pkg", "build"]
        argv = shlex.split(build_image)
        assert argv[:4] == ["python3", "-m", "lambda_pkg", "image"]
        assert argv[argv.index("--base") + 1] == base
        assert argv[argv.index("--architecture") + 1] == "x86_64"
        # Without a base of its own, the builder's pinned official one.
        assert "--base" not in shlex.split(pre_run_commands(args(service_image=True))[1])

    @pytest.mark.parametrize("runtime", ["python3.11", "python3.13"])
    def test_executor_python_follows_the_runtime(self, runtime):
        # The build compiles bytecode with the image's python; another version would
        # ship a package without it.
        s = settings_of(build(runtime=runtime))
        version = runtime.removeprefix("python")
        assert s["executorContext"] == {"executorImage": f"pulumi/pulumi-python-{version}"}

    def test_another_branch(self):
        s = settings_of(build(branch="release"))
        assert s["sourceContext"]["git"] == {"branch": "refs/heads/release"}
        # Any change deploys: no path filter.
        assert "paths" not in s["vcs"]

    def test_role_arn_from_the_ci_role_component(self):
        def program():
            role = CiRole(
                "ci",
                CiRoleArgs(
                    environment="dev",
                    repository=REPO,
                    deployer_policy=sample_deployer_policy(),
                    pulumi_deployments=PulumiDeploymentsTrust(
                        organization="acme", project="cloud-trading-bot", stack="dev"
                    ),
                ),
            )
            Deployments("deploy", args(aws_role_arn=role.deploy_role_arn))
            return {"arn": role.deploy_role_arn}

        run = run_components(program)
        aws = settings_of(run)["operationContext"]["oidc"]["aws"]
        assert aws["roleARN"] == run.outputs["arn"] == ROLE_ARN

    def test_unknown_role_arn_output_is_accepted(self):
        def program():
            Deployments("deploy", args(aws_role_arn=pulumi.Output.from_input(ROLE_ARN)))
            return {}

        assert (
            settings_of(run_components(program))["operationContext"]["oidc"]["aws"]["roleARN"]
            == ROLE_ARN
        )


class TestValidation:
    @pytest.mark.parametrize(
        ("overrides", "key"),
        [
            ({"repository": "https://github.com/acme/bot"}, "githubRepository"),
            ({"branch": ""}, "githubBranch"),
            ({"organization": "acme org"}, "pulumiOrganization"),
            ({"aws_role_arn": "my-role"}, "deployRoleArn"),
            ({"aws_role_arn": "arn:aws:iam::123:role/x"}, "deployRoleArn"),
            ({"runtime": "python2.7"}, "runtime"),
            # The packager knows python3.9, but the stack's config refuses it.
            ({"runtime": "python3.9"}, "runtime"),
            ({"architecture": "sparc"}, "architecture"),
            ({"push_to_deploy": False, "preview_pull_requests": False}, "deploymentsEnabled"),
        ],
    )
    def test_bad_input_fails_before_any_resource(self, overrides, key):
        registered: list = []

        def program():
            Deployments("deploy", args(**overrides))
            return {}

        with pytest.raises(cp.PolicyInputError, match=key):
            run_components(program, record=registered)
        assert registered == []

    def test_role_arn_message_says_how_to_fix(self):
        with pytest.raises(cp.PolicyInputError, match="ciRoleEnabled"):
            run_components(lambda: (Deployments("d", args(aws_role_arn="nope")), {})[1])
