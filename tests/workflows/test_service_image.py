"""The service image in the pipeline (issue 13 section 4): built once per run as an OCI
layout, deployed by digest to dev and then prod, and previewed on pull requests; and the
workflows' `ci_artifact.py image` step that checks the build's report."""

from __future__ import annotations

import json

import pytest

from tests.infra.harness import make_image_layout
from tests.workflows.test_ci_artifact import ci
from tests.workflows.test_workflows import PULUMI, load, one_step, run_text, steps_using

BUILD_IMAGE = "lambda_pkg image --output dist/image --json > dist/image.json"
CHECK_IMAGE = "ci_artifact.py image --report dist/image.json"


def pulumi_jobs(wf):
    return {job_id: job for job_id, job in wf["jobs"].items() if steps_using(job, PULUMI)}


@pytest.mark.parametrize(("name", "builder"), [("deploy.yml", "build"), ("preview.yml", "package")])
def test_the_image_is_built_once_and_each_stack_gets_that_layout(name, builder):
    wf = load(name)
    # GIVEN the one job that builds
    assert BUILD_IMAGE in run_text(wf["jobs"][builder])
    assert CHECK_IMAGE in run_text(wf["jobs"][builder])
    jobs = pulumi_jobs(wf)
    assert jobs, name
    for job_id, job in jobs.items():
        # THEN no Pulumi job builds an image of its own
        assert "lambda_pkg image" not in run_text(job), job_id
        # AND each hands the program the layout it downloaded (built once, upstream)
        download = one_step(job, "actions/download-artifact")["with"]
        env = one_step(job, PULUMI)["env"]
        assert env["CTB_IMAGE_LAYOUT"] == f"{download['path']}/image", job_id
        assert builder in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])


def test_every_deploy_records_the_image_digest_it_deployed():
    wf = load("deploy.yml")
    assert wf["jobs"]["build"]["outputs"]["image"] == "${{ steps.image.outputs.digest }}"
    for job_id in ("deploy-dev", "deploy-prod"):
        message = one_step(wf["jobs"][job_id], PULUMI)["with"]["message"]
        assert "needs.build.outputs.image" in message, job_id


class TestImageReport:
    def report(self, tmp_path, **changes):
        digest = make_image_layout(tmp_path / "image")
        doc = {
            "digest": digest,
            "output": str(tmp_path / "image"),
            "runtime": "python3.12",
            "architecture": "x86_64",
            "size": 2048,
            "base": {"source": "python:3.12-slim@sha256:" + "a" * 64},
            "layers": [{"role": "code", "digest": digest, "size": 1024}],
            **changes,
        }
        path = tmp_path / "image.json"
        path.write_text(json.dumps(doc))
        return path, doc

    def test_outputs_the_digest_and_describes_the_layers(self, tmp_path, capsys):
        path, doc = self.report(tmp_path)
        out = tmp_path / "github_output"
        assert ci.main(["image", "--report", str(path)], env={"GITHUB_OUTPUT": str(out)}) == 0
        assert out.read_text() == f"digest={doc['digest']}\n"
        summary = capsys.readouterr().out
        assert doc["digest"] in summary and "| code |" in summary

    @pytest.mark.parametrize(
        ("changes", "says"),
        [
            ({"digest": "sha256:nope"}, "no image digest"),
            ({"output": None}, "does not hold image"),
            ({"digest": "sha256:" + "0" * 64}, "does not hold image"),
        ],
    )
    def test_a_report_that_does_not_match_its_layout_is_refused(
        self, tmp_path, capsys, changes, says
    ):
        path, _ = self.report(tmp_path, **changes)
        assert ci.main(["image", "--report", str(path)], env={}) == 2
        err = capsys.readouterr().err
        assert says in err and err.count("\n") == 1

    def test_a_missing_report_says_how_to_write_it(self, tmp_path, capsys):
        assert ci.main(["image", "--report", str(tmp_path / "none.json")], env={}) == 2
        assert "python -m lambda_pkg image --output dist/image --json" in capsys.readouterr().err


@pytest.mark.parametrize("job_id", ["deploy-dev", "deploy-prod"])
def test_a_deploy_that_ecs_rolled_back_fails(job_id):
    # `pulumi up` waits for a stable service, and a rolled-back service is stable too:
    # the step after it checks the revision the service actually runs.
    steps = load("deploy.yml")["jobs"][job_id]["steps"]
    up = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith(PULUMI + "@"))
    assert steps[up]["id"] == "up"
    check = steps[up + 1]
    assert "python -m infra.rollout" in check["run"]
    assert check["env"] == {
        "CLUSTER": "${{ steps.up.outputs.ecs_cluster }}",
        "SERVICE": "${{ steps.up.outputs.ecs_service }}",
        "TASK_DEFINITION": "${{ steps.up.outputs.task_definition_arn }}",
    }
