"""`python -m localcloud` without a running cloud: one-line errors and exit codes, and
a stale state file (the process is gone) handled without touching any process."""

from __future__ import annotations

import os

import pytest

from localcloud.cli import main
from localcloud.control import export_lines
from localcloud.state import CloudState, read_state, write_state


def _stale(tmp_path) -> CloudState:
    pid = os.getpid()  # this test process: alive, but not `localcloud serve`
    state = CloudState(
        pid=pid,
        port=1,
        moto_port=2,
        token="t",
        region="us-east-1",
        started_at=0.0,
        state_dir=str(tmp_path),
    )
    write_state(state)
    return state


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["up", "--port", "70000"], "not a TCP port"),
        (["up", "--tick-seconds", "0"], "must be above 0"),
        (["up", "--idle-seconds", "soon"], "not a number"),
        (["launch"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_command_lines_are_one_line_errors(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and err.startswith("error: ")


def test_nothing_running(tmp_path, capsys):
    state_dir = ["--state-dir", str(tmp_path)]
    assert main(["status", *state_dir]) == 3
    assert "not running" in capsys.readouterr().err
    assert main(["down", *state_dir]) == 0
    assert "not running" in capsys.readouterr().err
    for command in (["env"], ["fire", "some-rule"]):
        assert main([*command, *state_dir]) == 2
        assert "start one: python -m localcloud up" in capsys.readouterr().err


def test_a_stale_state_file_is_removed_and_its_pid_left_alone(tmp_path, capsys):
    # GIVEN a state file whose pid is some other process (this one)
    _stale(tmp_path)
    # WHEN `down` runs, THEN it does not signal that process, and clears the record
    assert main(["down", "--state-dir", str(tmp_path)]) == 0
    assert "stale state file" in capsys.readouterr().err
    assert read_state(tmp_path) is None


def test_a_damaged_state_file_is_a_user_error(tmp_path, capsys):
    (tmp_path / "state.json").write_text("garbage")
    assert main(["status", "--state-dir", str(tmp_path)]) == 2
    assert "state.json: unreadable" in capsys.readouterr().err


def test_the_export_lines_point_a_shell_at_the_cloud(tmp_path):
    state = CloudState(
        pid=1,
        port=4566,
        moto_port=2,
        token="t",
        region="eu-west-1",
        started_at=0.0,
        state_dir=str(tmp_path),
    )
    lines = export_lines(state)
    assert lines[0] == "export AWS_ENDPOINT_URL=http://127.0.0.1:4566"
    assert "export AWS_REGION=eu-west-1" in lines and "export AWS_DEFAULT_REGION=eu-west-1" in lines
    assert "export AWS_ACCESS_KEY_ID=testing" in lines
    assert lines[-1] == "unset AWS_PROFILE AWS_DEFAULT_PROFILE"
