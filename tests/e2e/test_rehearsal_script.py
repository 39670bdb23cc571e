"""`scripts/deploy.sh --local`, the README's main-job command: it sets itself up,
rehearses the stack against moto_server and exits 0 only when every step passed."""

from __future__ import annotations

import json

import pytest

from tests.unit.rehearsal.helpers import code_only_artifact, run_deploy, script_env

pytestmark = pytest.mark.e2e


def test_deploy_local_rehearses_without_pulumi_or_aws(tmp_path):
    # GIVEN no Pulumi CLI and no AWS credentials, and a prebuilt code-only package
    manifest = code_only_artifact(tmp_path / "pkg").manifest_path
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    # WHEN the local deploy runs (the code-only package has no yfinance: use the fixture)
    proc = run_deploy("--local", "--", "--config", "marketDataProvider=fixture", env=env)
    # THEN the rehearsal passed and its summary is on stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Rehearsal of stack 'dev' against emulated AWS: PASSED" in proc.stdout
    assert "Objects under data/" in proc.stdout
    assert "DynamoDB items" in proc.stdout


def test_deploy_local_failure_exits_non_zero_and_names_the_step(tmp_path):
    manifest = code_only_artifact(tmp_path / "pkg").manifest_path
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    # The stack's own provider (yfinance) is not in the code-only package.
    proc = run_deploy("--local", "--", "--json", env=env)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert (report["ok"], report["failed_step"]) == (False, "invoke test")
    assert "yfinance" in report["error"]
    assert "error: rehearsal step 'invoke test' failed" in proc.stderr
    assert "nothing real was touched" in proc.stderr


def test_deploy_local_takes_json_and_config_as_its_own_flags(tmp_path):
    # GIVEN the flags a user types directly (no `--` needed)
    manifest = code_only_artifact(tmp_path / "pkg").manifest_path
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    proc = run_deploy("--local", "--json", "--config", "marketDataProvider=fixture", env=env)
    # THEN stdout is the JSON report alone, and the run passed
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]][-1] == "policy"
    assert report["objects"]["data"] and report["objects"]["logs"] and report["items"]


def test_deploy_local_bad_config_value_exits_2_naming_the_key(tmp_path):
    manifest = code_only_artifact(tmp_path / "pkg").manifest_path
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env["CTB_ARTIFACT_MANIFEST"] = str(manifest)
    proc = run_deploy("--local", "--config", "memorySize=5", env=env)
    assert proc.returncode == 2
    # Checked with the stack's settings before the package is chosen, so before the rehearsal
    assert "error: invalid stack configuration for stack 'dev'" in proc.stderr
    assert "cloud-trading-bot:memorySize = '5'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_deploy_local_debug_traces_and_is_verbose(tmp_path):
    manifest = code_only_artifact(tmp_path / "pkg").manifest_path
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env |= {"CTB_ARTIFACT_MANIFEST": str(manifest), "DEBUG": "true"}
    proc = run_deploy("--local", "--config", "marketDataProvider=fixture", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "+ STACK=dev" in proc.stderr  # set -x
    assert "-m infra.rehearsal --stack dev --verbose" in proc.stderr
    # each resource as it is created, and the handler's own log lines
    assert "+ aws:lambda/function:Function 'fetcher-function' -> market_data_fetcher-dev" in (
        proc.stderr
    )
    assert '"message":"fetch finished"' in proc.stderr
