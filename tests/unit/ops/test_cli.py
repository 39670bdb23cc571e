"""ops_cli error handling: unexpected errors exit 1 in one line; DEBUG=true adds the traceback."""

from __future__ import annotations

import pytest

from ops import session as awsclient
from ops.cli import main


@pytest.fixture
def broken_rollback(monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr("ops.rollback.rollback", boom)
    monkeypatch.setattr("ops.session.Aws.client", lambda self, _s: object())


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
    from ops import cli as ops_cli

    # One parser class: a bad command line is one UserError line, exit 2, in both.
    assert type(cli._parser()) is type(ops_cli.build_parser())
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
        awsclient.disable_debug_logging()
    assert "Traceback (most recent call last)" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["upload", "rollback", "status", "invoke", "coldstarts"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"python -m lambda_pkg {command}" in capsys.readouterr().out


def test_upload_defaults_are_the_uploaders_own_constants():
    from ops.cli import build_parser
    from ops.upload import MULTIPART_THRESHOLD, PART_SIZE

    args = build_parser().parse_args(["upload", "a.zip", "b", "lambda/dev/a.zip"])
    assert args.multipart_threshold_mib == MULTIPART_THRESHOLD
    assert args.part_size_mib == PART_SIZE
    assert args.max_attempts == awsclient.DEFAULT_MAX_ATTEMPTS
