from lambda_pkg.__main__ import main


def test_unknown_command_is_a_user_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_no_command_prints_usage_and_fails(capsys):
    assert main([]) == 2
    assert "usage:" in capsys.readouterr().out
