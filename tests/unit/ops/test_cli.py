"""ops.cli: one-line failures (exit 1 for the unexpected, DEBUG=true adds the
traceback), help that lists every command, the forward from `python -m lambda_pkg`,
profile and config-file errors, and commands printed so that they work as printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops import debuglog
from ops.checksums import MULTIPART_THRESHOLD, PART_SIZE
from ops.cli import build_parser, main
from ops.commands import COMMAND_HELP
from ops.session import DEFAULT_MAX_ATTEMPTS

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ["upload", "rollback", "status", "invoke", "coldstarts", "backtest"]


@pytest.fixture
def broken_rollback(monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr("ops.rollback.rollback", boom)


def test_unexpected_error_is_one_line_and_exit_1(broken_rollback, monkeypatch, capsys):
    monkeypatch.delenv("DEBUG", raising=False)
    assert main(["rollback", "--function", "f"]) == 1
    err = capsys.readouterr().err
    # The same wording as build/verify (errors.report_failure).
    assert err.strip() == (
        "error: RuntimeError: something unexpected (run with DEBUG=true for details)"
    )


def test_both_command_lines_report_failures_the_same_way(monkeypatch, capsys):
    from lambda_pkg import cli

    # One parser class: a bad command line is one UserError line, exit 2, in both.
    assert type(cli._parser()) is type(build_parser())
    monkeypatch.setattr("lambda_pkg.verify.verify", lambda *a, **k: 1 / 0)
    monkeypatch.delenv("DEBUG", raising=False)
    assert cli.main(["verify", "x.zip"]) == 1
    assert capsys.readouterr().err == (
        "error: ZeroDivisionError: division by zero (run with DEBUG=true for details)\n"
    )


def test_debug_adds_the_traceback(broken_rollback, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "true")
    try:
        assert main(["rollback", "--function", "f"]) == 1
    finally:
        debuglog.disable()
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"python -m ops {command}" in out
    assert COMMAND_HELP[command] in out


def test_upload_defaults_are_the_uploaders_own_constants():
    args = build_parser().parse_args(["upload", "a.zip", "b", "lambda/dev/a.zip"])
    assert args.multipart_threshold_mib == MULTIPART_THRESHOLD
    assert args.part_size_mib == PART_SIZE
    assert args.max_attempts == DEFAULT_MAX_ATTEMPTS == 5


def _one_line_descriptions(text: str) -> dict[str, str]:
    """{command: description} from the 'commands:' lines of a --help text."""
    found = {}
    for line in text.splitlines():
        words = line.split(maxsplit=1)
        if line.startswith("  ") and len(words) == 2 and words[0] in COMMAND_HELP:
            found[words[0]] = words[1]
    return found


def test_ops_help_lists_each_command_with_its_description():
    run = subprocess.run(
        [sys.executable, "-m", "ops", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0
    assert _one_line_descriptions(run.stdout) == COMMAND_HELP


def test_lambda_pkg_help_lists_every_command_with_a_description(capsys):
    from lambda_pkg.__main__ import OPERATING, PACKAGING
    from lambda_pkg.__main__ import main as lambda_pkg_main

    assert lambda_pkg_main(["--help"]) == 0
    out = capsys.readouterr().out
    # The old names only: `backtest` was never a lambda_pkg command.
    assert _one_line_descriptions(out) == {name: COMMAND_HELP[name] for name in OPERATING}
    for name, text in PACKAGING.items():
        assert f"  {name:<12}{text}" in out
    assert "python -m ops" in out  # says where the operator commands live now


def test_every_packaging_command_is_listed_in_lambda_pkg_help(capsys):
    import re

    from lambda_pkg import cli
    from lambda_pkg.__main__ import PACKAGING

    # The packager's own parser names its commands in its usage: {build,verify,...}
    assert cli.main(["--help"]) == 0
    (choices,) = re.findall(r"\{([a-z,]+)\}", capsys.readouterr().out)[:1]
    assert set(choices.split(",")) == set(PACKAGING)


def test_the_old_command_forwards_with_a_note(capsys):
    from lambda_pkg.__main__ import main as lambda_pkg_main

    # WHEN an operator command is run by its old name
    code = lambda_pkg_main(["coldstarts", "--function", "f", "--since", "yesterday"])
    err = capsys.readouterr().err.splitlines()
    # THEN it ran as `python -m ops coldstarts` (its own one-line error), after a note
    assert code == 2
    assert err[0] == (
        "note: 'python -m lambda_pkg coldstarts' is now 'python -m ops coldstarts'; forwarding"
    )
    assert err[1].startswith("error: --since 'yesterday'")


def test_a_python_without_boto3_gets_one_line_naming_the_venv(tmp_path):
    # GIVEN an interpreter that cannot import boto3 (-S: no site-packages), as the
    # system Python on a machine without the project's virtual environment
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-S", "-m", "ops", "status", "--function", "f"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN one line, exit 2, that names the interpreter that works
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "has no boto3: run scripts/bootstrap.sh once, then use" in run.stderr
    assert ".venv/bin/python -m ops" in run.stderr


def test_an_unknown_profile_is_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert main(["status", "--function", "f"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: AWS_PROFILE 'no-such-profile': no such profile in ")
    assert "aws configure list-profiles" in err and "or unset AWS_PROFILE" in err


def test_an_unknown_profile_flag_names_the_flag(capsys):
    assert main(["status", "--function", "f", "--profile", "typo"]) == 2
    assert capsys.readouterr().err.startswith("error: --profile 'typo': no such profile in ")


@pytest.mark.parametrize("variable", ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"])
def test_a_malformed_aws_file_is_one_line_naming_it(variable, tmp_path, monkeypatch, capsys):
    # GIVEN a credentials (or config) file that is not an INI file, and no keys in
    # the environment, so botocore has to read it
    broken = tmp_path / "credentials"
    broken.write_text("[default\naws_access_key_id = AKIA...\n")
    monkeypatch.setenv(variable, str(broken))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    # WHEN any command needs credentials
    code = main(["status", "--function", "f"])
    err = capsys.readouterr().err
    # THEN one line, exit 2, naming the file and the fix
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {broken}: not a valid AWS config or credentials file (")
    assert "fix its syntax" in err


def test_an_invalid_region_from_the_environment_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "us east 1")
    assert main(["status", "--function", "f"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "region 'us east 1' is not a valid region name: pass --region" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["status", "--function", "a b"], "argument --function: 'a b' is not a Lambda function"),
        (["status", "--function", "f\n"], "is not a Lambda function name"),
        (["rollback", "--function", "f", "--alias", "12"], "'12' is not an alias name"),
        (["invoke", "--function", "f", "--qualifier", "a b"], "is not a version number"),
        (["coldstarts", "--function", "f", "--log-group", "a b"], "is not a log group name"),
        (["status", "--function", "f", "--region", "US_EAST"], "is not a region name"),
        (["status", "--function", "f", "--max-attempts", "21"], "--max-attempts 21: use 1 to 20"),
    ],
)
def test_malformed_names_are_refused_before_any_call(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_printed_commands_use_the_running_interpreter(monkeypatch, tmp_path):
    from ops.commands import ops_command

    monkeypatch.chdir(ROOT)
    python = Path(sys.executable)
    expected = python.relative_to(ROOT) if python.is_relative_to(ROOT) else python
    assert ops_command() == f"{expected} -m ops"
    # From elsewhere, `-m ops` only imports from the project root.
    monkeypatch.chdir(tmp_path)
    assert ops_command() == f"cd {ROOT} && {expected} -m ops"
