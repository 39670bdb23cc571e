"""The rehearsal's steps before the emulator starts (infra.rehearsal.run): config and
package. Each failure here is the user's to fix, so the CLI exits 2 for it."""

from __future__ import annotations

import pytest

from infra.rehearsal.run import rehearse
from lambda_pkg import limits
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
