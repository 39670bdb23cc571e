"""The rehearsal's steps before the emulator starts (infra.rehearsal.run): config and
package. Each failure here is the user's to fix, so the CLI exits 2 for it."""

from __future__ import annotations

import pytest

from infra.rehearsal.run import rehearse
from lambda_pkg import limits
from lambda_pkg.artifact import load_manifest
from tests.unit.rehearsal.helpers import ROOT, code_only_artifact


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> str:
    return str(code_only_artifact(tmp_path_factory.mktemp("pkg")).manifest_path)


def test_an_oversize_package_fails_the_package_step_as_a_user_error(manifest, monkeypatch):
    # GIVEN a package over Lambda's unzipped limit (the limit lowered below its size)
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", manifest)
    monkeypatch.setattr(limits, "UNZIPPED_MAX", 1000)
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides={"marketDataProvider": "fixture"})
    # THEN the package step fails with the packager's message, as the user's to fix (exit 2)
    assert (result.failed_step, result.user_error) == ("package", True)
    assert "package too large" in result.error
    assert "over Lambda's 1,000-byte limit" in result.error
    assert [s.name for s in result.steps] == ["config", "package"]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"memorySize": "abc"}, "cloud-trading-bot:memorySize = 'abc': must be an integer"),
        ({"memorysize": "512"}, "cloud-trading-bot:memorysize: unknown config key"),
        ({"dependencyLayer": "maybe"}, "cloud-trading-bot:dependencyLayer = 'maybe': must be"),
    ],
)
def test_a_bad_config_value_fails_the_config_step_naming_the_key(
    manifest, monkeypatch, override, named
):
    # GIVEN a prebuilt package and an invalid override
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", manifest)
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides=override)
    # THEN the config step fails, as the user's to fix, before anything is built or started
    assert (result.failed_step, result.user_error) == ("config", True)
    assert named in result.error
    assert [s.name for s in result.steps] == ["config"]


def test_the_package_step_reads_booleans_as_the_program_does(manifest, monkeypatch):
    # GIVEN no prebuilt package, and the layer asked for with a capitalised boolean
    monkeypatch.delenv("CTB_ARTIFACT_MANIFEST", raising=False)
    asked: list[dict] = []

    def ensure_artifact(**kwargs):
        asked.append(kwargs)
        return load_manifest(manifest)

    monkeypatch.setattr("lambda_pkg.api.ensure_artifact", ensure_artifact)
    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides={"dependencyLayer": "True", "runtime": "python3.11"})
    # THEN the build is asked for the layer and the runtime the program will check for
    assert asked == [
        {"project_dir": ROOT, "runtime": "python3.11", "architecture": "x86_64", "layer": True}
    ]
    # AND the code-only package (no layer, python3.12) is refused at the package step,
    # naming the differences, as the user's to fix
    assert (result.failed_step, result.user_error) == ("package", True)
    assert "no dependency layer but the stack sets dependencyLayer: true" in result.error
    assert "runtime python3.12 but the stack's runtime is python3.11" in result.error
