"""The program's dependencies: pinned to what the tests run, and used by their public API."""

from __future__ import annotations

import importlib.metadata
import re

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.infra.harness import ROOT


def _requirements() -> dict[str, Requirement]:
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            found[requirement.name] = requirement
    return found


@pytest.mark.parametrize("name", ["pulumi", "pulumi-aws", "pulumi-pulumiservice"])
def test_pulumi_and_its_providers_are_pinned_to_the_minor_the_tests_run(name):
    # GIVEN the version these tests run against
    installed = Version(importlib.metadata.version(name))
    specifier = _requirements()[name].specifier
    # THEN requirements.txt allows it and its patch releases, and no other minor
    assert installed in specifier
    assert Version(f"{installed.major}.{installed.minor}.{installed.micro + 1}") in specifier
    assert Version(f"{installed.major}.{installed.minor + 1}.0") not in specifier
    if installed.minor:
        assert Version(f"{installed.major}.{installed.minor - 1}.0") not in specifier


# Pulumi's internals with a public equivalent: pulumi.runtime.test / reset_options /
# get_root_resource / get_config do the same through the API pulumi supports.
_PRIVATE = re.compile(
    r"_sync_await|run_pulumi_func|pulumi\.runtime\.(?:settings|stack|sync_await|rpc)\b"
    r"|from pulumi\.runtime\.(?:settings|stack|sync_await|rpc) import"
    r"|pulumi\.runtime\.config\.CONFIG|from pulumi[\w.]* import _"
)


def _sources() -> list:
    files = [ROOT / "__main__.py", *sorted((ROOT / "infra").rglob("*.py"))]
    files += sorted((ROOT / "tests" / "infra").glob("*.py"))
    return [f for f in files if f.name != "test_dependencies.py"]


def test_no_private_pulumi_internal_is_read_where_a_public_api_exists():
    unexplained = []
    for path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not _PRIVATE.search(line.split("#", 1)[0]):
                continue
            # Allowed only where no public API exists, and the code says so beside it.
            context = " ".join(lines[max(0, number - 4) : number + 1]).lower()
            if "no public api" not in context:
                unexplained.append(f"{path.relative_to(ROOT)}:{number + 1}: {line.strip()}")
    assert unexplained == []
