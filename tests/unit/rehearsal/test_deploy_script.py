"""scripts/deploy.sh against real AWS, with a fake `pulumi` and dummy credentials:
the prerequisites, the commands it runs, the rollback hint on failure, DEBUG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.rehearsal.helpers import code_only_artifact, run_deploy, script_env


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> str:
    # A prebuilt package: the script then builds nothing (CI's build-once path).
    return str(code_only_artifact(tmp_path_factory.mktemp("pkg")).manifest_path)


def _calls(env: dict) -> list[str]:
    with open(env["FAKE_PULUMI_LOG"]) as fh:
        return fh.read().splitlines()


def test_preview_runs_pulumi_preview_with_the_package(tmp_path, manifest):
    env = script_env(tmp_path) | {"CTB_ARTIFACT_MANIFEST": manifest}
    proc = run_deploy("--stack", "dev", "--preview", env=env)
    assert proc.returncode == 0, proc.stderr
    assert _calls(env) == ["preview --stack dev --diff", f"manifest={manifest}"]


def test_up_with_yes_is_non_interactive(tmp_path, manifest):
    env = script_env(tmp_path) | {"CTB_ARTIFACT_MANIFEST": manifest}
    proc = run_deploy("--stack", "prod", "--yes", env=env)
    assert proc.returncode == 0, proc.stderr
    assert _calls(env)[0] == "up --stack prod --yes"
    assert "market_data_fetcher-prod" in proc.stderr  # how to check it afterwards


def test_failed_up_says_how_to_roll_back(tmp_path, manifest):
    env = script_env(tmp_path) | {"CTB_ARTIFACT_MANIFEST": manifest, "FAKE_PULUMI_EXIT": "3"}
    proc = run_deploy("--stack", "dev", "--yes", env=env)
    assert proc.returncode == 3
    assert "pulumi up failed for stack dev (exit 3)" in proc.stderr
    assert "-m ops rollback --function market_data_fetcher-dev" in proc.stderr


def test_missing_pulumi_cli_is_a_prerequisite_error_with_a_hint(tmp_path, manifest):
    env = script_env(tmp_path, pulumi=False) | {"CTB_ARTIFACT_MANIFEST": manifest}
    proc = run_deploy("--stack", "dev", env=env)
    assert proc.returncode == 2
    assert "the Pulumi CLI is not installed" in proc.stderr
    assert "https://get.pulumi.com" in proc.stderr
    assert "scripts/deploy.sh --local" in proc.stderr


def test_missing_credentials_is_a_prerequisite_error_with_a_hint(tmp_path, manifest):
    env = script_env(tmp_path, credentials=False) | {"CTB_ARTIFACT_MANIFEST": manifest}
    proc = run_deploy("--stack", "dev", env=env)
    assert proc.returncode == 2
    assert "no AWS credentials found" in proc.stderr
    assert "aws configure" in proc.stderr
    assert not (tmp_path / "pulumi.log").exists()


def test_debug_traces_the_script_and_makes_pulumi_verbose(tmp_path, manifest):
    env = script_env(tmp_path) | {"CTB_ARTIFACT_MANIFEST": manifest, "DEBUG": "true"}
    proc = run_deploy("--stack", "dev", "--preview", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "+ STACK=dev" in proc.stderr  # set -x
    assert _calls(env)[0] == "preview --stack dev --diff --debug --verbose=3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "staging"], "no stack 'staging'"),
        (["--bogus"], "unknown argument: --bogus (see scripts/deploy.sh --help)"),
        (["--local", "--preview"], "--preview and --local do not combine"),
        (["--stack"], "--stack needs a name"),
        (["--stack", "../dev"], "--stack '../dev' is not a stack name"),
        (["--local", "--config"], "--config needs KEY=VALUE"),
        (["--json"], "--json is for the rehearsal (--local)"),
        (["--config", "memorySize=512"], "pulumi config set --stack dev KEY VALUE"),
    ],
)
def test_bad_arguments_are_one_clear_error(tmp_path, args, message):
    env = script_env(tmp_path)
    proc = run_deploy(*args, env=env)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1  # the error line alone, no usage dump
    assert not (tmp_path / "pulumi.log").exists()


def test_unknown_stack_lists_the_stacks_there(tmp_path):
    proc = run_deploy("--stack", "staging", env=script_env(tmp_path))
    assert proc.returncode == 2
    assert "(stacks: dev, local, prod)" in proc.stderr


def test_a_missing_prebuilt_manifest_is_an_error(tmp_path):
    env = script_env(tmp_path) | {"CTB_ARTIFACT_MANIFEST": str(tmp_path / "nope.json")}
    proc = run_deploy("--preview", env=env)
    assert proc.returncode == 2
    assert "nope.json does not exist" in proc.stderr


def test_help_is_the_usage_text_only(tmp_path):
    proc = run_deploy("--help", env=script_env(tmp_path))
    assert proc.returncode == 0
    assert proc.stdout.startswith("Deploys the cloud trading bot")
    assert "--local" in proc.stdout
    assert "set -euo" not in proc.stdout


def _recording_builds(tmp_path, env: dict) -> Path:
    """Make the venv's python record a `-m lambda_pkg build` call (and fail it) instead
    of building, and a rehearsal's arguments (and pass it) instead of rehearsing; every
    other call runs as before."""
    log = tmp_path / "build.log"
    python = Path(env["VENV"]) / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2 $3" = "-m lambda_pkg build" ]; then\n'
        f'  printf "%s\\n" "$*" > "{log}"; exit 1\n'
        "fi\n"
        'if [ "$1 $2" = "-m infra.rehearsal" ]; then\n'
        '  printf "%s\\nmanifest=%s\\n" "$*" "$CTB_ARTIFACT_MANIFEST"'
        f' > "{log.parent}/rehearsal.log"\n'
        "  exit 0\n"
        "fi\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    return log


@pytest.mark.parametrize(
    "args",
    [
        ["--config", "runtime=python3.11", "--config", "dependencyLayer=True"],
        ["--config=runtime=python3.11", "--", "--config", "dependencyLayer=True"],
    ],
)
def test_local_leaves_the_package_to_the_rehearsal_with_the_config_overrides(tmp_path, args):
    # GIVEN no prebuilt package, and overrides of what the package is built for
    env = script_env(tmp_path, pulumi=False, credentials=False)
    log = _recording_builds(tmp_path, env)
    # WHEN the local deploy runs
    proc = run_deploy("--local", *args, env=env)
    # THEN the script builds nothing itself: the rehearsal gets every override (its
    # package step builds for them, beside the image), and no prebuilt manifest
    assert proc.returncode == 0, proc.stderr
    assert not log.exists()
    rehearsal = (tmp_path / "rehearsal.log").read_text().splitlines()
    assert rehearsal == [
        "-m infra.rehearsal --stack dev --config runtime=python3.11 --config dependencyLayer=True",
        "manifest=",
    ]


def test_local_bad_config_value_fails_before_the_build_naming_the_key(tmp_path):
    env = script_env(tmp_path, pulumi=False, credentials=False)
    log = _recording_builds(tmp_path, env)
    proc = run_deploy("--local", "--config", "memorySize=abc", env=env)
    assert proc.returncode == 2
    assert "cloud-trading-bot:memorySize = 'abc': must be an integer" in proc.stderr
    assert not log.exists()
