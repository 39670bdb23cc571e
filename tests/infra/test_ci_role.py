"""The CI roles under Pulumi mocks: who may assume them, and with what rights."""

from __future__ import annotations

import json

import pulumi
import pytest

from infra import ci_policies as cp
from infra.ci_role import CiRole, CiRoleArgs, PulumiDeploymentsTrust
from tests.infra.cicd_support import ACCOUNT, Run, run_components, sample_deployer_policy

REPO = "acme/cloud-trading-bot"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
GITHUB_SUB = "token.actions.githubusercontent.com:sub"
GITHUB_AUD = "token.actions.githubusercontent.com:aud"


def build(**overrides) -> Run:
    args = CiRoleArgs(
        environment=overrides.pop("environment", "prod"),
        repository=overrides.pop("repository", REPO),
        deployer_policy=overrides.pop("deployer_policy", sample_deployer_policy()),
        github_environments=overrides.pop("github_environments", ("production",)),
        **overrides,
    )

    def program():
        role = CiRole("ci", args)
        return {
            "deploy": role.deploy_role_arn,
            "preview": role.preview_role_arn,
            "github": role.github_oidc_provider_arn,
            "pulumi": role.pulumi_oidc_provider_arn or "",
        }

    return run_components(program)


def statement(role_inputs: dict, sid: str) -> dict:
    doc = json.loads(role_inputs["assumeRolePolicy"])
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


@pytest.fixture(scope="module")
def default_run() -> Run:
    return build()


class TestGithubOidcProvider:
    def test_created_for_github_with_the_sts_audience(self, default_run):
        (provider,) = default_run.of_type(OIDC)
        assert provider.name == "ci-github-oidc"
        assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
        assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
        # IAM trusts GitHub's CA itself; a pinned thumbprint would break on rotation.
        assert "thumbprintLists" not in provider.inputs

    def test_an_existing_provider_is_adopted_not_recreated(self):
        arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
        run = build(github_oidc_provider_arn=arn)
        assert run.of_type(OIDC) == []
        trust = statement(run.named("ci-deploy").inputs, "GitHubActions")
        assert trust["Principal"] == {"Federated": arn}
        assert run.outputs["github"] == arn


class TestDeployRole:
    def test_trusts_only_the_production_environment(self, default_run):
        role = default_run.named("ci-deploy")
        assert role.inputs["name"] == "cloud-trading-bot-prod-ci-deploy"
        doc = json.loads(role.inputs["assumeRolePolicy"])
        assert [s["Sid"] for s in doc["Statement"]] == ["GitHubActions"]
        cond = doc["Statement"][0]["Condition"]["StringEquals"]
        assert cond[GITHUB_AUD] == "sts.amazonaws.com"
        # Not the bare branch: a job on main without the environment (the dev deploy)
        # must not be able to assume prod's role and skip the required reviewers.
        assert cond[GITHUB_SUB] == f"repo:{REPO}:environment:production"
        assert doc["Statement"][0]["Principal"]["Federated"] == default_run.outputs["github"]

    def test_never_trusts_pull_requests(self, default_run):
        text = default_run.named("ci-deploy").inputs["assumeRolePolicy"]
        assert "pull_request" not in text
        assert "*" not in text

    def test_carries_the_deployer_policy_unchanged(self, default_run):
        attached = default_run.named("ci-deploy-policy")
        assert attached.type == ROLE_POLICY
        assert attached.inputs["role"] == "ci-deploy-id"
        assert json.loads(attached.inputs["policy"]) == cp.parse_policy(sample_deployer_policy())

    def test_sessions_last_one_hour(self, default_run):
        assert default_run.named("ci-deploy").inputs["maxSessionDuration"] == 3600.0

    def test_another_branch(self):
        run = build(branch="release", github_environments=())
        cond = statement(run.named("ci-deploy").inputs, "GitHubActions")["Condition"]
        assert cond["StringEquals"][GITHUB_SUB] == f"repo:{REPO}:ref:refs/heads/release"

    def test_outputs_are_the_roles_arns(self, default_run):
        assert default_run.outputs["deploy"] == (
            f"arn:aws:iam::{ACCOUNT}:role/cloud-trading-bot-prod-ci-deploy"
        )
        assert default_run.outputs["preview"] == (
            f"arn:aws:iam::{ACCOUNT}:role/cloud-trading-bot-prod-ci-preview"
        )


class TestPreviewRole:
    def test_trusts_only_pull_requests(self, default_run):
        role = default_run.named("ci-preview")
        assert role.inputs["name"] == "cloud-trading-bot-prod-ci-preview"
        doc = json.loads(role.inputs["assumeRolePolicy"])
        assert len(doc["Statement"]) == 1
        cond = doc["Statement"][0]["Condition"]["StringEquals"]
        assert cond[GITHUB_SUB] == f"repo:{REPO}:pull_request"
        assert cond[GITHUB_AUD] == "sts.amazonaws.com"

    def test_can_read_but_never_write(self, default_run):
        policy = json.loads(default_run.named("ci-preview-policy").inputs["policy"])
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert actions, "the preview role needs some reads"
        assert all(cp.is_read_action(a) for a in actions), sorted(actions)
        assert "secretsmanager:GetSecretValue" not in actions
        assert default_run.named("ci-preview-policy").inputs["role"] == "ci-preview-id"


class TestPulumiDeploymentsTrust:
    def pulumi_run(self, **trust) -> Run:
        return build(
            pulumi_deployments=PulumiDeploymentsTrust(
                organization="acme", project="cloud-trading-bot", stack="prod", **trust
            )
        )

    def test_creates_pulumis_provider_with_the_org_as_audience(self):
        run = self.pulumi_run()
        pulumi_provider = run.named("ci-pulumi-oidc")
        assert pulumi_provider.inputs["url"] == "https://api.pulumi.com/oidc"
        assert pulumi_provider.inputs["clientIdLists"] == ["acme"]
        stmt = statement(run.named("ci-deploy").inputs, "PulumiDeployments")
        assert stmt["Principal"]["Federated"] == run.outputs["pulumi"]
        cond = stmt["Condition"]["StringEquals"]
        assert cond["api.pulumi.com/oidc:aud"] == "acme"
        prefix = "pulumi:deploy:org:acme:project:cloud-trading-bot:stack:prod:operation:"
        assert cond["api.pulumi.com/oidc:sub"] == [
            f"{prefix}preview:scope:write",
            f"{prefix}refresh:scope:write",
            f"{prefix}update:scope:write",
        ]

    def test_without_pr_previews_the_preview_operation_is_not_trusted(self):
        run = self.pulumi_run(preview_pull_requests=False)
        subs = statement(run.named("ci-deploy").inputs, "PulumiDeployments")["Condition"][
            "StringEquals"
        ]["api.pulumi.com/oidc:sub"]
        assert not any(":operation:preview:" in s for s in subs)
        assert not any(":operation:destroy:" in s for s in subs)

    def test_an_existing_pulumi_provider_is_adopted(self):
        arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/api.pulumi.com/oidc"
        run = self.pulumi_run(oidc_provider_arn=arn)
        assert [r.name for r in run.of_type(OIDC)] == ["ci-github-oidc"]
        stmt = statement(run.named("ci-deploy").inputs, "PulumiDeployments")
        assert stmt["Principal"]["Federated"] == arn

    def test_preview_role_never_trusts_pulumi(self):
        run = self.pulumi_run()
        assert "api.pulumi.com" not in run.named("ci-preview").inputs["assumeRolePolicy"]


class TestComponentShape:
    def test_every_child_is_parented_and_named_after_the_component(self, default_run):
        children = [r for r in default_run.resources if r.type != "cloud-trading-bot:ci:CiRole"]
        assert {r.name for r in children} == {
            "ci-github-oidc",
            "ci-deploy",
            "ci-deploy-policy",
            "ci-preview",
            "ci-preview-policy",
        }
        for child in children:
            assert child.parent_type == "cloud-trading-bot:ci:CiRole", child.name

    def test_tags_mark_the_purpose(self, default_run):
        assert default_run.named("ci-deploy").inputs["tags"]["purpose"] == "ci"

    def test_deployer_policy_may_be_an_output_of_json(self):
        def program():
            role = CiRole(
                "ci",
                CiRoleArgs(
                    environment="dev",
                    repository=REPO,
                    deployer_policy=pulumi.Output.from_input(json.dumps(sample_deployer_policy())),
                ),
            )
            return {"arn": role.deploy_role_arn}

        run = run_components(program)
        policy = json.loads(run.named("ci-deploy-policy").inputs["policy"])
        assert policy == cp.parse_policy(sample_deployer_policy())
        preview = json.loads(run.named("ci-preview-policy").inputs["policy"])
        assert "s3:PutObject" not in {a for s in preview["Statement"] for a in s["Action"]}


class TestValidation:
    @pytest.mark.parametrize(
        ("overrides", "key"),
        [
            ({"repository": "not-a-repo"}, "githubRepository"),
            ({"branch": "refs/heads/main"}, "githubBranch"),
            ({"github_environments": ("prod*",)}, "githubEnvironment"),
            (
                {"deployer_policy": {"Statement": [{"Effect": "Allow", "Action": "*"}]}},
                "deployerPolicy",
            ),
            ({"deployer_policy": "{oops"}, "deployerPolicy"),
            ({"environment": "x" * 50}, "environment"),
        ],
    )
    def test_bad_input_fails_before_any_resource(self, overrides, key):
        registered: list = []

        def program():
            args = {
                "environment": "prod",
                "repository": REPO,
                "deployer_policy": sample_deployer_policy(),
                **overrides,
            }
            CiRole("ci", CiRoleArgs(**args))
            return {}

        with pytest.raises(cp.PolicyInputError, match=key):
            run_components(program, record=registered)
        # Not even the component itself was registered.
        assert registered == []
