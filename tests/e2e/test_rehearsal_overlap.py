"""The image builds beside the package (infra.rehearsal.prebuild): a failure of either
still fails its own step with its own message, and the image's build never outlives
the rehearsal's steps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.rehearsal.run import rehearse
from lambda_pkg import limits
from tests.unit.rehearsal.helpers import ROOT, code_only_artifact

pytestmark = pytest.mark.e2e

FIXTURE = {"marketDataProvider": "fixture"}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> str:
    return str(code_only_artifact(tmp_path_factory.mktemp("pkg")).manifest_path)


def image_builds() -> list[str]:
    """This process's children that are building an image."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        if ppid == os.getpid() and b"lambda_pkg" in argv and b"image" in argv:
            found.append(proc.name)
    return found


def test_an_image_that_cannot_be_built_fails_the_image_step_with_its_own_message(
    manifest, monkeypatch, tmp_path
):
    # GIVEN a package that is fine, and a base image that does not exist
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", manifest)
    monkeypatch.setenv("CTB_IMAGE_BASE", str(tmp_path / "no-such-layout"))
    # WHEN it is rehearsed (the image's build starts beside the package step)
    result = rehearse(ROOT, "dev", overrides=FIXTURE)
    # THEN the package step passed, and the image step failed with the program's message
    assert [(s.name, s.ok) for s in result.steps] == [
        ("config", True), ("package", True), ("emulator", True), ("image", False),
    ]  # fmt: skip
    assert (result.failed_step, result.user_error) == ("image", True)
    assert result.error.startswith("strategy service image: ")
    assert "no-such-layout" in result.error
    assert image_builds() == []


def test_a_package_that_fails_fails_the_package_step_and_stops_the_image_build(
    manifest, monkeypatch
):
    # GIVEN a package over Lambda's unzipped limit, and an image to build (the stack's)
    monkeypatch.setenv("CTB_ARTIFACT_MANIFEST", manifest)
    monkeypatch.setattr(limits, "UNZIPPED_MAX", 1000)
    running: list[list[str]] = []

    def progress(line: str) -> None:
        if line == "==> package":
            running.append(image_builds())

    # WHEN it is rehearsed
    result = rehearse(ROOT, "dev", overrides=FIXTURE, progress=progress)
    # THEN the image's build was running when the package step started
    assert len(running) == 1 and len(running[0]) == 1
    # AND the package step fails with the packager's message, nothing after it runs...
    assert (result.failed_step, result.user_error) == ("package", True)
    assert "package too large" in result.error
    assert [s.name for s in result.steps] == ["config", "package"]
    # ...and the image's build, started beside it, was stopped, not left running
    assert image_builds() == []
