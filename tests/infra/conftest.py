"""Fixtures for the infra tests; the harness itself is in harness.py."""

from __future__ import annotations

import pytest

from lambda_pkg.artifact import Artifact
from tests.infra.harness import SHIPPED_STACKS, ProgramRun, make_artifact, run_program


@pytest.fixture(scope="session")
def artifact(tmp_path_factory) -> Artifact:
    return make_artifact(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="session")
def layered_artifact(tmp_path_factory) -> Artifact:
    return make_artifact(tmp_path_factory.mktemp("layered"), layer=True)


@pytest.fixture(scope="session")
def runs(artifact) -> dict[str, ProgramRun]:
    """The whole program, run once per shipped stack YAML (shared by the checks)."""
    return {stack: run_program(stack, artifact.manifest_path) for stack in SHIPPED_STACKS}


@pytest.fixture(params=SHIPPED_STACKS)
def stack(request) -> str:
    """Each shipped stack in turn, for the tests that check every stack's run alike."""
    return request.param


@pytest.fixture
def run(runs, stack) -> ProgramRun:
    return runs[stack]
