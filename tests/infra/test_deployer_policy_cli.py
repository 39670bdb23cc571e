"""`python -m infra.deployer_policy`: the deployer policy from a stack YAML, no CLI, no AWS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from infra.deployer_policy import main, partition_of
from tests.infra.harness import ROOT, run_program
from tests.infra.test_policies import by_sid

ACCOUNT = "123456789012"


def test_writes_the_same_policy_the_program_exports(tmp_path, artifact):
    # GIVEN the shipped dev stack WHEN the command writes its policy
    out = tmp_path / "policy.json"
    assert main(["--stack", "dev", "--account-id", ACCOUNT, "--output", str(out)]) == 0
    # THEN it equals the `deployer_policy` stack output (same names, same function)
    exported = run_program("dev", artifact.manifest_path).outputs["deployer_policy"]
    assert json.loads(out.read_text()) == exported
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file + os.replace


def test_prints_to_stdout_scoped_to_the_stack(capsys):
    assert main(["--stack", "prod", "--account-id", ACCOUNT, "--region", "eu-west-1"]) == 0
    policy = json.loads(capsys.readouterr().out)
    function = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:market_data_fetcher-prod"
    assert by_sid(policy)["UpdateFunction"]["Resource"] == [function, f"{function}:*"]
    assert by_sid(policy)["PackageObjects"]["Resource"][0].endswith("/lambda/prod/*")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "nosuch", "--account-id", ACCOUNT], "no such stack file"),
        (["--stack", "dev", "--account-id", "12345"], "--account-id '12345': must be 12 digits"),
        (["--stack", "dev", "--account-id", ACCOUNT, "--region", "moon"], "region 'moon'"),
    ],
)
def test_errors_are_one_line_with_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture
def project(tmp_path):
    """A copy of the project file, beside which a test writes its own stack file."""
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    return tmp_path


def test_bad_stack_config_names_the_file_and_the_key(project, capsys):
    (project / "Pulumi.qa.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  cloud-trading-bot:memorySize: 64\n"
    )
    assert main(["--stack", "qa", "--account-id", ACCOUNT, "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"{project / 'Pulumi.qa.yaml'}: invalid stack configuration" in err
    assert "cloud-trading-bot:memorySize = '64': must be" in err


def test_a_key_without_namespace_belongs_to_the_project(project, capsys):
    # As in the CLI: `memorySize` in a stack file is cloud-trading-bot:memorySize.
    (project / "Pulumi.qa.yaml").write_text("config:\n  aws:region: us-east-1\n  timeout: 0\n")
    assert main(["--stack", "qa", "--account-id", ACCOUNT, "--project-dir", str(project)]) == 2
    assert "cloud-trading-bot:timeout = '0': must be" in capsys.readouterr().err


def test_broken_yaml_is_one_line_naming_the_file(project, capsys):
    (project / "Pulumi.qa.yaml").write_text("config: [unclosed\n")
    assert main(["--stack", "qa", "--account-id", ACCOUNT, "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.qa.yaml is not valid YAML at line" in err
    assert err.count("\n") == 1


def test_unwritable_output_is_one_line(tmp_path, capsys):
    argv = ["--stack", "dev", "--account-id", ACCOUNT, "--output", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --output {tmp_path}:") and err.count("\n") == 1


def test_encrypted_api_key_is_accepted_without_decrypting(project, capsys):
    (project / "Pulumi.qa.yaml").write_text(
        "config:\n  aws:region: us-east-1\n"
        "  cloud-trading-bot:marketDataApiKey:\n    secure: v1:abc:def\n"
    )
    assert main(["--stack", "qa", "--account-id", ACCOUNT, "--project-dir", str(project)]) == 0


def test_partitions():
    assert partition_of("us-east-1") == "aws"
    assert partition_of("cn-north-1") == "aws-cn"
    assert partition_of("us-gov-west-1") == "aws-us-gov"


def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "infra.deployer_policy", "--stack", "dev", "--account-id", ACCOUNT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Version"] == "2012-10-17"
