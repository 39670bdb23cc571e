"""Pure checks of the CI trust and permission documents (no Pulumi engine)."""

from __future__ import annotations

import json

import pytest

from infra import ci_policies as cp
from tests.infra.cicd_support import sample_deployer_policy

REPO = "acme/cloud-trading-bot"
GITHUB_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def actions_of(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in s["Action"]}


class TestDeploySubjects:
    def test_the_branch_when_no_environment_guards_the_stack(self):
        assert cp.deploy_subjects(REPO, "main") == [f"repo:{REPO}:ref:refs/heads/main"]

    def test_only_the_environments_when_they_guard_it(self):
        subjects = cp.deploy_subjects(REPO, "main", ["production", "prod-eu"])
        assert subjects == [
            f"repo:{REPO}:environment:prod-eu",
            f"repo:{REPO}:environment:production",
        ]

    def test_the_branch_is_still_checked(self):
        with pytest.raises(cp.PolicyInputError, match="githubBranch"):
            cp.deploy_subjects(REPO, "refs/heads/main", ["production"])


class TestPreviewSubjects:
    def test_only_pull_requests(self):
        assert cp.preview_subjects(REPO) == [f"repo:{REPO}:pull_request"]

    def test_bad_repository_names_the_key(self):
        with pytest.raises(cp.PolicyInputError, match="githubRepository"):
            cp.preview_subjects("acme/*")


class TestSubjectInputs:
    def test_subjects_are_exact(self):
        subjects = [
            *cp.deploy_subjects(REPO, "main", ["production", "production"]),
            *cp.preview_subjects(REPO),
        ]
        assert subjects == [f"repo:{REPO}:environment:production", f"repo:{REPO}:pull_request"]
        assert not any("*" in s for s in subjects)

    @pytest.mark.parametrize(
        "repo",
        [
            "cloud-trading-bot",
            "https://github.com/acme/bot",
            "acme/bot.git/x",
            "",
            "a/b/c",
            "acme/*",
        ],
    )
    def test_bad_repository_names_the_key(self, repo):
        with pytest.raises(cp.PolicyInputError, match="githubRepository") as err:
            cp.deploy_subjects(repo, "main")
        assert "owner/repo" in str(err.value)

    @pytest.mark.parametrize("branch", ["", "refs/heads/main", "feature/../x", "main/", "a b", "*"])
    def test_bad_branch_names_the_key(self, branch):
        with pytest.raises(cp.PolicyInputError, match="githubBranch"):
            cp.deploy_subjects(REPO, branch)

    def test_bad_environment_names_the_key(self):
        with pytest.raises(cp.PolicyInputError, match="githubEnvironment"):
            cp.deploy_subjects(REPO, "main", ["prod*"])


class TestTrustStatements:
    def test_github_statement_pins_audience_and_exact_subjects(self):
        subjects = cp.deploy_subjects(REPO, "main", ["production", "prod-eu"])
        stmt = cp.github_trust_statement(GITHUB_ARN, subjects)
        assert stmt["Principal"] == {"Federated": GITHUB_ARN}
        assert stmt["Action"] == "sts:AssumeRoleWithWebIdentity"
        # StringEquals only: StringLike would allow wildcards in the subject.
        assert list(stmt["Condition"]) == ["StringEquals"]
        cond = stmt["Condition"]["StringEquals"]
        assert cond["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        assert cond["token.actions.githubusercontent.com:sub"] == subjects

    def test_single_subject_is_a_plain_string(self):
        stmt = cp.github_trust_statement(GITHUB_ARN, cp.preview_subjects(REPO))
        sub = stmt["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert sub == f"repo:{REPO}:pull_request"

    def test_no_subject_is_refused(self):
        with pytest.raises(cp.PolicyInputError, match="subject"):
            cp.github_trust_statement(GITHUB_ARN, [])

    def test_pulumi_subjects_follow_pulumi_clouds_format(self):
        subjects = cp.pulumi_subjects("acme", "cloud-trading-bot", "prod", ["update", "refresh"])
        assert subjects == [
            "pulumi:deploy:org:acme:project:cloud-trading-bot:stack:prod:operation:refresh:scope:write",
            "pulumi:deploy:org:acme:project:cloud-trading-bot:stack:prod:operation:update:scope:write",
        ]

    def test_pulumi_statement_uses_the_organization_as_audience(self):
        subjects = cp.pulumi_subjects("acme", "p", "dev", ["update"])
        stmt = cp.pulumi_trust_statement(
            "arn:aws:iam::1:oidc-provider/api.pulumi.com/oidc", "acme", subjects
        )
        cond = stmt["Condition"]["StringEquals"]
        assert cond["api.pulumi.com/oidc:aud"] == "acme"
        assert cond["api.pulumi.com/oidc:sub"] == subjects[0]

    @pytest.mark.parametrize("org", [None, ""])
    def test_missing_pulumi_organization_says_where_it_comes_from(self, org):
        with pytest.raises(cp.PolicyInputError, match="pulumiOrganization: not set") as err:
            cp.pulumi_subjects(org, "p", "dev", ["update"])
        assert "Pulumi Cloud" in str(err.value)

    def test_bad_pulumi_organization_names_the_key(self):
        with pytest.raises(cp.PolicyInputError, match="pulumiOrganization"):
            cp.pulumi_subjects("acme org", "p", "dev", ["update"])

    def test_trust_policy_needs_a_statement(self):
        with pytest.raises(cp.PolicyInputError):
            cp.trust_policy([])


class TestParsePolicy:
    def test_accepts_json_text_and_dicts_alike(self):
        doc = sample_deployer_policy()
        assert cp.parse_policy(json.dumps(doc)) == cp.parse_policy(doc)

    @pytest.mark.parametrize(
        ("doc", "fragment"),
        [
            ("{not json", "not valid JSON"),
            ("[]", "not an IAM policy document"),
            ({"Statement": [{"Action": ["s3:GetObject"]}]}, "no Effect"),
            ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "x"}]}, "wildcard"),
            ({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "x"}]}, "wildcard"),
            (
                {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]},
                "NotAction",
            ),
            ({"Statement": ["s3:GetObject"]}, "Statement[0] is not an object"),
            (
                {"Statement": [{"Effect": "allow", "Action": "s3:GetObject", "Resource": "x"}]},
                "Statement[0].Effect: 'allow' must be 'Allow' or 'Deny'",
            ),
            ({"Statement": [{"Effect": "Allow", "Action": [1]}]}, "Statement[0].Action: [1]"),
            ({"Statement": [{"Effect": "Allow", "Resource": "x"}]}, "Statement[0].Action: None"),
            (
                {"Statement": [{"Effect": "Allow", "Action": {"s3": "Get"}, "Resource": "x"}]},
                "Statement[0].Action",
            ),
            (
                {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": [None]}]},
                "Statement[0].Resource",
            ),
            ({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}, "Resource: None"),
            (
                {
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x", "Sid": 7}
                    ]
                },
                "Statement[0].Sid",
            ),
            (
                {
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x"},
                        {
                            "Effect": "Deny",
                            "Action": "s3:DeleteObject",
                            "Resource": "x",
                            "Condition": [],
                        },
                    ]
                },
                "Statement[1].Condition",
            ),
            ({"Version": "2020-01-01", "Statement": []}, "Version '2020-01-01'"),
            ("[" * 100_000, "not valid JSON"),
        ],
    )
    def test_bad_documents_name_the_key(self, doc, fragment):
        with pytest.raises(cp.PolicyInputError, match="deployerPolicy") as err:
            cp.parse_policy(doc)
        assert fragment in str(err.value)


class TestReadOnlyPolicy:
    def test_keeps_only_reads_of_the_deployers_resources(self):
        policy = cp.read_only_policy(sample_deployer_policy())
        actions = actions_of(policy)
        for write in (
            "s3:PutObject",
            "lambda:UpdateFunctionCode",
            "lambda:PublishVersion",
            "iam:PassRole",
        ):
            assert write not in actions
        assert {"s3:GetObject", "lambda:GetFunction", "s3:ListBucket"} <= actions
        assert all(cp.is_read_action(a) for a in actions)

    def test_drops_sensitive_reads(self):
        actions = actions_of(cp.read_only_policy(sample_deployer_policy()))
        assert "secretsmanager:GetSecretValue" not in actions
        assert "secretsmanager:DescribeSecret" in actions

    def test_keeps_resources_and_conditions(self):
        deployer = sample_deployer_policy()
        policy = cp.read_only_policy(deployer)
        listing = next(s for s in policy["Statement"] if s["Sid"] == "ReadListPackagePrefix")
        original = next(s for s in deployer["Statement"] if s["Sid"] == "ListPackagePrefix")
        assert listing["Resource"] == original["Resource"]
        assert listing["Condition"] == original["Condition"]

    def test_bucket_configuration_reads_only_on_bucket_arns(self):
        policy = cp.read_only_policy(sample_deployer_policy("my-bucket"))
        config = next(s for s in policy["Statement"] if s["Sid"] == "ReadBucketConfiguration")
        assert config["Resource"] == ["arn:aws:s3:::my-bucket"]
        assert "s3:GetBucketPolicy" in config["Action"]
        assert not any(a.endswith("*") for a in config["Action"])

    def test_deny_statements_are_kept(self):
        doc = sample_deployer_policy()
        deny = {
            "Sid": "NoDelete",
            "Effect": "Deny",
            "Action": ["s3:DeleteObject"],
            "Resource": ["x"],
        }
        doc["Statement"].append(deny)
        assert deny in cp.read_only_policy(doc)["Statement"]

    def test_a_policy_without_reads_is_refused(self):
        doc = {"Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["x"]}]}
        with pytest.raises(cp.PolicyInputError, match="no read action"):
            cp.read_only_policy(doc)

    @pytest.mark.parametrize(
        ("action", "is_read"),
        [
            ("s3:GetObject", True),
            ("lambda:ListVersionsByFunction", True),
            ("logs:DescribeLogGroups", True),
            ("s3:PutObject", False),
            ("iam:PassRole", False),
            ("secretsmanager:GetSecretValue", False),
            ("ecr:GetAuthorizationToken", False),
            ("ecs:DescribeServices", True),
            ("kms:Decrypt", False),
            ("nonsense", False),
        ],
    )
    def test_is_read_action(self, action, is_read):
        assert cp.is_read_action(action) is is_read


class TestArnPatterns:
    """The patterns infra/config.py uses for the CI keys."""

    @pytest.mark.parametrize(
        ("pattern", "good", "bad"),
        [
            (
                cp.ROLE_ARN_RE,
                "arn:aws:iam::123456789012:role/ci/cloud-trading-bot-dev-ci-deploy",
                "arn:aws:iam::123:role/x",
            ),
            (
                cp.GITHUB_OIDC_PROVIDER_ARN_RE,
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
                "arn:aws:iam::123456789012:oidc-provider/api.pulumi.com/oidc",
            ),
            (
                cp.PULUMI_OIDC_PROVIDER_ARN_RE,
                "arn:aws-us-gov:iam::123456789012:oidc-provider/api.pulumi.com/oidc",
                "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
            ),
        ],
    )
    def test_accepts_the_right_arn_only(self, pattern, good, bad):
        assert pattern.match(good)
        assert not pattern.match(bad)
        assert not pattern.match("")


class TestCommand:
    def test_prints_the_deploy_trust_policy(self, capsys):
        argv = ["trust", "deploy", "--repository", REPO, "--account", "123456789012"]
        assert cp.main([*argv, "--environment", "production"]) == 0
        doc = json.loads(capsys.readouterr().out)
        (stmt,) = doc["Statement"]
        assert stmt["Principal"]["Federated"] == GITHUB_ARN
        sub = stmt["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert sub == f"repo:{REPO}:environment:production"

    def test_prints_the_preview_trust_policy(self, capsys):
        argv = ["trust", "preview", "--repository", REPO, "--account", "123456789012"]
        assert cp.main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        sub = doc["Statement"][0]["Condition"]["StringEquals"][
            "token.actions.githubusercontent.com:sub"
        ]
        assert sub == f"repo:{REPO}:pull_request"

    def test_prints_the_read_only_policy_of_a_deployer_policy_file(self, tmp_path, capsys):
        path = tmp_path / "deployer.json"
        path.write_text(json.dumps(sample_deployer_policy()))
        assert cp.main(["read-only", "--policy", str(path)]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc == cp.read_only_policy(sample_deployer_policy())

    @pytest.mark.parametrize(
        ("argv", "fragment"),
        [
            (
                ["trust", "deploy", "--repository", "nope", "--account", "123456789012"],
                "githubRepository",
            ),
            (["trust", "deploy", "--repository", REPO, "--account", "42"], "--account"),
            (
                ["trust", "preview", "--repository", "a/b/c", "--account", "123456789012"],
                "githubRepository",
            ),
            (["read-only", "--policy", "/nonexistent/deployer.json"], "infra.deployer_policy"),
        ],
    )
    def test_bad_arguments_exit_2_with_one_line(self, capsys, argv, fragment):
        assert cp.main(argv) == 2
        err = capsys.readouterr().err
        assert fragment in err
        assert err.count("\n") == 1

    @pytest.mark.parametrize(
        ("content", "fragment"),
        [
            ('{"Statement":[{"Effect":"Allow","Action":[1]}]}', "Statement[0].Action: [1]"),
            ('{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":[2]}]}', "[2]"),
            ('{"Statement":[7]}', "Statement[0] is not an object"),
            (b"\xff\xfe{}", "not UTF-8 text"),
        ],
    )
    def test_a_malformed_policy_file_is_one_line_not_a_traceback(
        self, tmp_path, capsys, content, fragment
    ):
        path = tmp_path / "deployer.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        assert cp.main(["read-only", "--policy", str(path)]) == 2
        err = capsys.readouterr().err
        assert fragment in err
        assert err.startswith("error: ") and err.count("\n") == 1

    @pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
    def test_trust_for_another_partition(self, capsys, partition):
        argv = ["trust", "preview", "--repository", REPO, "--account", "123456789012"]
        assert cp.main([*argv, "--partition", partition]) == 0
        stmt = json.loads(capsys.readouterr().out)["Statement"][0]
        assert stmt["Principal"]["Federated"].startswith(f"arn:{partition}:iam::")

    def test_an_unknown_partition_is_refused(self, capsys):
        argv = ["trust", "preview", "--repository", REPO, "--account", "123456789012"]
        with pytest.raises(SystemExit) as exit_:
            cp.main([*argv, "--partition", "aws:evil"])
        assert exit_.value.code == 2
        assert "invalid choice: 'aws:evil'" in capsys.readouterr().err
