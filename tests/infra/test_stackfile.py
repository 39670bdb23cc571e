"""infra.config.read_stack_file: a stack's config read from its YAML the way the Pulumi CLI
passes it, and infra.config.load_stack_file, which validates it as the program would."""

from __future__ import annotations

import shutil

import pytest

from infra.config import ConfigError, StackFileError, load_stack_file, read_stack_file
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
    assert sf.encrypted_keys == ("demo:bucketName",)
    assert sf.get("bucketName") is None  # not even the Pulumi.yaml default
    assert sf.project_encrypted_keys() == {"bucketName"}


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


# ---- YAML read as the CLI reads it (scalars verbatim, YAML 1.2 inside lists and maps)


def test_scalars_reach_the_program_as_written(project):
    # GIVEN YAML 1.1 words and number forms that PyYAML would turn into other values
    write_stack(
        project,
        "config:\n  a: yes\n  b: off\n  c: 0x10\n  d: 1e3\n  e: 010\n  f: 2024-01-01\n"
        "  g: 1_000\n  h: ~\n  i:\n  j: '42'\n  k: True\n",
    )
    values = read_stack_file(project, "st").project_values()
    # THEN each is the text the CLI hands the program, not a boolean, 16, 1000.0 or a date
    assert values == {
        "bucketName": "demo-bucket",
        "symbols": '["SPY", "QQQ"]',
        "owner": "false",
        "a": "yes",
        "b": "off",
        "c": "0x10",
        "d": "1e3",
        "e": "010",
        "f": "2024-01-01",
        "g": "1_000",
        "h": "",
        "i": "",
        "j": "42",
        "k": "True",
    }


def test_lists_and_maps_are_read_by_yaml_1_2(project):
    write_stack(project, "config:\n  l: [yes, no, 010, 0x10, 0o17, 1e3, 2024-01-01, true]\n")
    assert read_stack_file(project, "st").get("l") == (
        '["yes", "no", 10, 16, 15, 1000.0, "2024-01-01", true]'
    )


def test_a_yes_for_a_boolean_key_is_refused_as_the_cli_would_pass_it(tmp_path):
    # PyYAML would read `bucketOwner: yes` as true; the CLI passes "yes", which Pulumi
    # does not take for a boolean: the same stack file must fail here as under the CLI.
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  bucketOwner: yes\n  memorySize: 0x200\n", stack="qa")
    with pytest.raises(ConfigError) as err:
        load_stack_file("qa", tmp_path)
    message = str(err.value)
    assert "cloud-trading-bot:bucketOwner = 'yes': must be true or false" in message
    assert "cloud-trading-bot:memorySize = '0x200': must be an integer" in message


@pytest.mark.parametrize(
    ("stack_text", "message"),
    [
        ("config:\n  a: 1\n  a: 2\n", r"key 'a' is set twice \(lines 2 and 3\)"),
        ("config:\n  a: 1\n  demo:a: 2\n", r"a and demo:a are the same key demo:a"),
        ("config:\n  l: {x: 1, x: 2}\n", r"l: key 'x' is set twice"),
        ("config:\n  x: &a [1, 2]\n  y: *a\n", r"y \(line 3\) uses a YAML alias"),
        ("config:\n  x: &a [1, *a]\n", r"x \(line 2\) uses a YAML alias"),
        ("config:\n  ? [a, b]\n  : 1\n", r"the key at line 2 is not a plain name"),
        ("config:\n  l: [" + "9" * 200 + "]\n", r"l: a number with 200 digits"),
        ("config: {}\n---\nconfig: {}\n", r"is not valid YAML"),
    ],
)
def test_ambiguous_or_explosive_yaml_is_one_line_naming_the_file(project, stack_text, message):
    write_stack(project, stack_text)
    with pytest.raises(StackFileError, match=message) as err:
        read_stack_file(project, "st")
    assert "\n" not in str(err.value) and "Pulumi.st.yaml" in str(err.value)


def test_a_file_that_is_not_utf8_or_too_big_is_refused(project):
    (project / "Pulumi.st.yaml").write_bytes(b"config:\n  a: \xff\xfe\n")
    with pytest.raises(StackFileError, match=r"is not UTF-8 text \(byte 0xff at offset 13\)"):
        read_stack_file(project, "st")
    (project / "Pulumi.st.yaml").write_text("config:\n  a: " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(StackFileError, match=r"larger than 1024 KiB"):
        read_stack_file(project, "st")


def test_overrides_drop_the_file_path_but_keep_encrypted_keys(project):
    write_stack(project, "config:\n  demo:apiKey:\n    secure: v1:x\n")
    base = read_stack_file(project, "st")
    laid = base.with_values({"owner": True, "token": "t"}, secret=False)
    assert laid.get("owner") == "true" and laid.path is None
    assert laid.encrypted_keys == ("demo:apiKey",)
    assert base.with_values({}) is base


def test_an_encrypted_key_that_is_not_secret_config_is_refused(tmp_path):
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  cloud-trading-bot:bucketName:\n    secure: v1:x\n", "qa")
    with pytest.raises(ConfigError, match=r"bucketName is stored as a secret, but only"):
        load_stack_file("qa", tmp_path)


def test_a_misspelt_namespace_in_a_stack_file_is_reported(tmp_path):
    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  cloud-trading-bots:memorySize: 64\n", "qa")
    with pytest.raises(ConfigError, match=r"cloud-trading-bots: unknown config namespace"):
        load_stack_file("qa", tmp_path)


def test_a_huge_number_in_a_stack_file_is_exit_2_naming_the_key(tmp_path, capsys):
    # GIVEN a 5,000-digit memorySize in the stack file (int() alone would raise past 4,300)
    from infra.rehearsal.stackinfo import main as stackinfo

    shutil.copyfile(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    write_stack(tmp_path, "config:\n  memorySize: " + "9" * 5000 + "\n", "qa")
    # WHEN deploy.sh asks stackinfo THEN exit 2, and the problem is one short line
    assert stackinfo(["--stack", "qa", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "memorySize" in x]
    assert "cloud-trading-bot:memorySize = '9999" in line and "5,000-digit number" in line
    assert len(line) < 200
