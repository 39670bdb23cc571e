"""The image runs: podman (runc) on the project's own local base, no Docker daemon.

The strategy service itself (backend/service) lands with the trading work; until
then the container runs a stand-in service module of this test's own project and an
import check of the real project. SERVICE_COMMAND is the hook the lead points at
`python -m backend.service --once` after the merge.
"""

from __future__ import annotations

import json

import pytest

from lambda_pkg.image.build import ensure_image
from lambda_pkg.image.localbase import build_local_base
from lambda_pkg.image.store import BlobStore
from lambda_pkg.progress import Progress
from tests.e2e.image_support import ROOT, podman_load, podman_remove, podman_run, require_tool
from tests.unit.image.helpers import lock_offline, make_service_project, make_wheel
from tests.wheelhouse import offline_args

pytestmark = pytest.mark.e2e

# HOOK(lead): after the merge, set to ("--once",): the image's own entry point then
# runs `python -m backend.service --once` (and drop IMPORT_CHECK's entry point override).
SERVICE_COMMAND: tuple[str, ...] | None = None
IMPORT_CHECK = ("-c", "import backend, aws.market_data_fetcher, yfinance; print('imports ok')")


@pytest.fixture(scope="module")
def base_cache(tmp_path_factory):
    """One cache per test module holding the local base (built once, about 10 s)."""
    require_tool("podman", "podman")
    require_tool("runc", "runc")
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    d = tmp_path_factory.mktemp("wheels")
    make_wheel(d, "tinydep", "1.0", {"tinydep/__init__.py": "VALUE = 42\n"})
    return d


@pytest.fixture
def loaded():
    ids: list[str] = []

    def _load(image, tmp_path):
        image_id = podman_load(image.write_layout(tmp_path / "layout"))
        ids.append(image_id)
        return image_id

    yield _load
    for image_id in ids:
        podman_remove(image_id)


def test_the_service_runs_read_only_as_non_root_from_its_own_bytecode(
    base_cache, wheelhouse, loaded, tmp_path
):
    project = make_service_project(tmp_path / "p")
    lock_offline(project, wheelhouse)
    image = ensure_image(
        project_dir=project, base="local", cache_dir=base_cache,
        pip_args=["--no-index", "--find-links", str(wheelhouse)],
    )  # fmt: skip
    image_id = loaded(image, tmp_path)
    # As on Fargate: a read-only root file system with a writable /tmp (podman's default).
    proc = podman_run(image_id, "health", options=("--read-only",))
    assert proc.returncode == 0, proc.stderr
    health = json.loads(proc.stdout)
    assert health == {
        "healthy": True,
        "uid": 65532,
        "dep": 42,
        "cwd": "/opt/ctb/app",
        "cached": "/opt/ctb/app/backend/service/__pycache__/__main__.cpython-312.pyc",
    }
    # The interpreter finds its standard library, ssl and the time zones in the base.
    check = "import ssl, sqlite3, zoneinfo; print(zoneinfo.ZoneInfo('America/New_York'))"
    proc = podman_run(image_id, "-c", check, options=("--entrypoint", "python"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "America/New_York"


def test_the_local_base_is_deterministic(base_cache, tmp_path):
    first = build_local_base(
        "python3.12", "x86_64", BlobStore(base_cache / "image"), Progress(False)
    )
    second = build_local_base("python3.12", "x86_64", BlobStore(tmp_path / "s"), Progress(False))
    assert first == second


@pytest.mark.network
def test_the_projects_own_image_imports_its_code_and_dependencies(
    base_cache, loaded, locked_wheels, tmp_path
):
    # The real requirements' locked wheels, from the package registry (hence `network`),
    # fetched once per session and installed by the builder with its own hash checks.
    image = ensure_image(
        project_dir=ROOT, base="local", cache_dir=base_cache, pip_args=offline_args(locked_wheels)
    )
    image_id = loaded(image, tmp_path)
    proc = podman_run(image_id, *IMPORT_CHECK, options=("--entrypoint", "python", "--read-only"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "imports ok"
    if SERVICE_COMMAND is not None:
        proc = podman_run(image_id, *SERVICE_COMMAND, options=("--read-only",))
        assert proc.returncode == 0, proc.stderr
