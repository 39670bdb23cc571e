"""Fixtures for the image builder's tests: a service project, an offline wheelhouse,
a tiny base image as an OCI layout, and `build` (ensure_image with those)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_pkg.image.build import ensure_image
from tests.unit.image.helpers import (
    lock_offline,
    make_base_layout,
    make_elf,
    make_service_project,
    make_wheel,
)


@pytest.fixture(scope="session")
def image_wheelhouse(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("image-wheelhouse")
    make_wheel(
        d,
        "tinydep",
        "1.0",
        {
            "tinydep/__init__.py": "VALUE = 42\n",
            "tinydep/tests/__init__.py": "",
            "tinydep/tests/test_x.py": "def test(): pass\n",
        },
    )
    tag = "cp312-cp312-manylinux_2_17_x86_64"
    make_wheel(d, "armext", "1.0", {"armext/_speed.so": make_elf(183, ("GLIBC_2.17",))}, tag=tag)
    make_wheel(d, "fastext", "1.0", {"fastext/_speed.so": make_elf(62, ("GLIBC_2.17",))}, tag=tag)
    return d


@pytest.fixture(scope="session")
def base_layout(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("base-layout")
    make_base_layout(d)
    return d


@pytest.fixture
def service_project(tmp_path) -> Path:
    return make_service_project(tmp_path / "proj")


@pytest.fixture
def build(image_wheelhouse, base_layout):
    """ensure_image on the tiny base, offline, with a cache of the caller's choice."""

    def _build(project_dir: Path, *, lock_first: bool = True, **kwargs):
        if lock_first and kwargs.get("base", base_layout) is not None:
            lock_offline(
                project_dir,
                image_wheelhouse,
                runtime=kwargs.get("runtime", "python3.12"),
                architecture=kwargs.get("architecture", "x86_64"),
                requirements=kwargs.get("requirements"),
            )
        kwargs.setdefault("base", base_layout)
        kwargs.setdefault("pip_args", ["--no-index", "--find-links", str(image_wheelhouse)])
        kwargs.setdefault("cache_dir", project_dir / ".build")
        return ensure_image(project_dir=project_dir, **kwargs)

    return _build
