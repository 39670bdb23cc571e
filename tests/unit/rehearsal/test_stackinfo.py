"""`python -m infra.rehearsal.stackinfo --config K=V`: the overrides deploy.sh --local
builds the package with, read as the rehearsal reads its own --config."""

from __future__ import annotations

from infra.rehearsal.stackinfo import main as stackinfo
from tests.unit.rehearsal.helpers import ROOT


def _info(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines())


def test_config_overrides_what_the_package_is_built_for(capsys):
    argv = ["--stack", "dev", "--project-dir", str(ROOT)]
    argv += ["--config", "runtime=python3.11", "--config", "dependencyLayer=True"]
    argv += ["--config", "cloud-trading-bot:architecture=arm64"]
    assert stackinfo(argv) == 0
    info = _info(capsys.readouterr().out)
    assert (info["runtime"], info["architecture"], info["layer"]) == ("python3.11", "arm64", "true")


def test_a_bad_override_is_exit_2_naming_it(capsys):
    base = ["--stack", "dev", "--project-dir", str(ROOT)]
    assert stackinfo([*base, "--config", "memorySize=abc"]) == 2
    assert "cloud-trading-bot:memorySize = 'abc': must be" in capsys.readouterr().err
    assert stackinfo([*base, "--config", "memorySize"]) == 2
    assert "--config 'memorySize': expected KEY=VALUE" in capsys.readouterr().err
