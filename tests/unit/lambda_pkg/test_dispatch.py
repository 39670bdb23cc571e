from lambda_pkg.__main__ import main


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "unknown command 'frobnicate': use one of build, verify, coldstarts" in err


def test_no_command_prints_usage_on_stderr_and_fails(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage:" in err


def test_help_is_not_an_error(capsys):
    assert main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out
