from lambda_pkg.__main__ import main


def test_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    # Every command is named, the packager's first, then the operator names that forward
    from lambda_pkg.__main__ import OPERATING, PACKAGING

    listed = err.split("use one of ", 1)[1].split(" (", 1)[0].split(", ")
    assert "unknown command 'frobnicate'" in err
    assert listed == [*PACKAGING, *sorted(OPERATING)]


def test_no_command_prints_usage_on_stderr_and_fails(capsys):
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage:" in err


def test_help_is_not_an_error(capsys):
    assert main(["--help"]) == 0
    assert "usage:" in capsys.readouterr().out
