"""`scripts/deploy.sh --local`, the README's main-job command: it sets itself up,
rehearses the stack against moto_server and exits 0 only when every step passed.

One run of the script itself (its own flags, DEBUG's trace, the JSON report); the
rehearsal's output, failures and bad config values are driven in process through the
commands the script runs (`python -m infra.rehearsal`, `python -m
infra.rehearsal.stackinfo`), each `main(argv)`, which is what the script execs."""

from __future__ import annotations

import json

import pytest

from infra.rehearsal.__main__ import main as rehearsal_main
from infra.rehearsal.stackinfo import main as stackinfo_main
from tests.unit.rehearsal.helpers import ROOT, code_only_artifact, run_deploy, script_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    # A prebuilt code-only package (no yfinance in it: the runs use the fixture provider).
    return code_only_artifact(tmp_path_factory.mktemp("pkg")).manifest_path


def test_deploy_local_takes_its_own_flags_traces_under_debug_and_reports_json(tmp_path, manifest):
    # GIVEN no Pulumi CLI and no AWS credentials, a prebuilt package, DEBUG=true, and
    # the flags a user types directly (no `--` needed)
    env = script_env(tmp_path, pulumi=False, credentials=False)
    env |= {"CTB_ARTIFACT_MANIFEST": str(manifest), "DEBUG": "true"}
    proc = run_deploy("--local", "--json", "--config", "marketDataProvider=fixture", env=env)
    # THEN the run passed and stdout is the JSON report alone
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]][-1] == "policy"
    assert report["objects"]["data"] and report["objects"]["logs"] and report["items"]
    # and DEBUG traced the script (set -x) and made the rehearsal verbose
    assert "+ STACK=dev" in proc.stderr
    assert "==> installing" not in proc.stderr  # the venv was current: no pip run
    assert "-m infra.rehearsal --stack dev --json --verbose" in proc.stderr
    assert "+ aws:lambda/function:Function 'fetcher-function' -> market_data_fetcher-dev" in (
        proc.stderr
    )


def test_rehearsal_prints_its_summary_and_verbose_shows_resources_and_logs(
    manifest, monkeypatch, capsys
):
    # What deploy.sh --local execs, with DEBUG's --verbose and a --config override
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(manifest))
    code = rehearsal_main(["--stack", "dev", "--verbose", "--config", "marketDataProvider=fixture"])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    # THEN the rehearsal passed and its summary is on stdout
    assert "Rehearsal of stack 'dev' against emulated AWS: PASSED" in out
    assert "Objects under data/" in out
    assert "DynamoDB items" in out
    # each resource as it is created, and the handler's own log lines
    assert "+ aws:lambda/function:Function 'fetcher-function' -> market_data_fetcher-dev" in err
    assert '"message":"fetch finished"' in err


def test_rehearsal_failure_exits_non_zero_and_names_the_step(manifest, monkeypatch, capsys):
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", str(manifest))
    # The stack's own provider (yfinance) is not in the code-only package.
    code = rehearsal_main(["--stack", "dev", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert (report["ok"], report["failed_step"]) == (False, "invoke test")
    assert "yfinance" in report["error"]
    assert "error: rehearsal step 'invoke test' failed" in err
    assert "nothing real was touched" in err


def test_bad_config_value_exits_2_naming_the_key_before_the_rehearsal(capsys):
    # deploy.sh --local asks stackinfo first and exits 2 when it does.
    argv = ["--stack", "dev", "--project-dir", str(ROOT), "--config", "memorySize=5"]
    assert stackinfo_main(argv) == 2
    err = capsys.readouterr().err
    assert "error: invalid stack configuration for stack 'dev'" in err
    assert "cloud-trading-bot:memorySize = '5'" in err
    assert "Traceback" not in err
