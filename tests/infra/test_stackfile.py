"""infra.stackfile: a stack's config read from its YAML the way the Pulumi CLI passes it,
and infra.config.load_stack_file, which validates it as the program would."""

from __future__ import annotations

import shutil

import pytest

from infra.config import ConfigError, load_stack_file
from infra.stackfile import StackFileError, read_stack_file
from tests.infra.harness import ROOT

PROJECT = """\
name: demo
runtime: python
config:
  bucketName:
    type: string
    default: demo-bucket
  symbols:
    type: array
    default: [SPY, QQQ]
  owner:
    type: boolean
    default: false
  aws:region:
    value: eu-west-1
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    return tmp_path


def write_stack(project, text: str, stack: str = "st"):
    (project / f"Pulumi.{stack}.yaml").write_text(text)


def test_stack_values_overlay_project_defaults_as_cli_strings(project):
    # GIVEN defaults in Pulumi.yaml and a stack file that overrides some of them
    write_stack(
        project,
        "config:\n  demo:bucketName: from-stack\n  owner: true\n  memory: 512\n"
        "  aws:region: us-east-1\n",
    )
    # WHEN it is read
    sf = read_stack_file(project, "st")
    # THEN the stack wins, unqualified keys are the project's, and every value is a string
    assert sf.project == "demo"
    assert sf.values == {
        "demo:bucketName": "from-stack",
        "demo:symbols": '["SPY", "QQQ"]',
        "demo:owner": "true",
        "demo:memory": "512",
        "aws:region": "us-east-1",
    }
    assert sf.get("owner") == "true" == sf.get("demo:owner")
    assert sf.project_values()["symbols"] == '["SPY", "QQQ"]'


def test_secure_values_are_noted_not_passed(project):
    write_stack(project, "config:\n  demo:bucketName:\n    secure: AAABAJ5yQ2c=\n")
    sf = read_stack_file(project, "st")
    assert sf.secure_keys == ("demo:bucketName",)
    assert sf.get("bucketName") is None  # not even the Pulumi.yaml default
    assert sf.project_secure_keys() == {"bucketName"}


@pytest.mark.parametrize(
    ("stack_text", "message"),
    [
        ("config: [unclosed\n", r"Pulumi\.st\.yaml is not valid YAML at line 2"),
        ("- a\n- b\n", r"Pulumi\.st\.yaml: expected a YAML mapping"),
        ("config: [a, b]\n", r"Pulumi\.st\.yaml: `config:` must be a mapping"),
    ],
)
def test_bad_stack_files_are_one_line_naming_the_file(project, stack_text, message):
    write_stack(project, stack_text)
    with pytest.raises(StackFileError, match=message) as err:
        read_stack_file(project, "st")
    assert "\n" not in str(err.value)


def test_unknown_stack_lists_the_stacks_there_are(project):
    write_stack(project, "config: {}\n")
    with pytest.raises(StackFileError, match=r"no stack 'qa': no such stack file .*here: st\)"):
        read_stack_file(project, "qa")


def test_missing_project_file_is_named(tmp_path):
    with pytest.raises(StackFileError, match=r"Pulumi\.yaml does not exist"):
        read_stack_file(tmp_path, "dev")


# ---- validated, as the program would


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_every_stack_file_here_validates(stack):
    cfg, sf = load_stack_file(stack, ROOT)
    assert cfg.environment == stack
    assert sf.get("aws:region") == "us-east-1"


def test_a_bad_value_names_the_file_and_the_key(tmp_path):
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  runtime: python2.7\n", stack="qa")
    with pytest.raises(ConfigError) as err:
        load_stack_file("qa", tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'Pulumi.qa.yaml'}: invalid stack configuration")
    assert "cloud-trading-bot:runtime = 'python2.7': must be one of" in message


def test_an_encrypted_api_key_counts_as_a_secret(tmp_path):
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  cloud-trading-bot:marketDataApiKey:\n    secure: v1:x\n")
    cfg, _ = load_stack_file("st", tmp_path)
    assert cfg.market_data_api_key is not None


def test_another_project_is_refused(project):
    write_stack(project, "config: {}\n")
    with pytest.raises(ConfigError, match=r"project 'demo', but the program's config namespace"):
        load_stack_file("st", project)


def test_stackinfo_reads_the_validated_config(tmp_path, capsys):
    # scripts/deploy.sh asks stackinfo what to build before Pulumi runs.
    from infra.rehearsal.stackinfo import main as stackinfo

    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  architecture: arm64\n  dependencyLayer: true\n", "qa")
    assert stackinfo(["--stack", "qa", "--project-dir", str(tmp_path)]) == 0
    info = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert info == {
        "environment": "qa",
        "runtime": "python3.12",
        "architecture": "arm64",
        "layer": "true",
        "function": "market_data_fetcher-qa",
    }
    # AND a bad value is one error naming the key, not a traceback
    write_stack(tmp_path, "config:\n  dependencyLayer: maybe\n", "qa")
    assert stackinfo(["--stack", "qa", "--project-dir", str(tmp_path)]) == 2
    assert "cloud-trading-bot:dependencyLayer = 'maybe': must be" in capsys.readouterr().err
