"""The wheel store (lambda_pkg.wheelstore): a locked wheel is downloaded once, and only a
stored wheel whose bytes still match its lock hash is used."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from lambda_pkg.errors import UserError
from lambda_pkg.wheelstore import STORE_ENV
from tests.unit.lambda_pkg.conftest import HOST_RUNTIME, lock, make_project, offline


def names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist())


@pytest.fixture(autouse=True)
def _store_in_the_build_cache(monkeypatch):
    # The store's default place, <cache>/wheels, not the session's shared one.
    monkeypatch.delenv(STORE_ENV, raising=False)


@pytest.fixture
def index(tmp_path, wheelhouse) -> Path:
    """A copy of the test wheelhouse that a test can take wheels out of."""
    return Path(shutil.copytree(wheelhouse, tmp_path / "index"))


@pytest.fixture
def usesboto(tmp_path, index) -> Path:
    project = make_project(tmp_path / "p", requirements="usesboto\n")
    lock(project, index)
    return project


def stored(cache: Path, name: str) -> list[Path]:
    return sorted((cache / "wheels" / "sha256").glob(f"*/{name}-*.whl"))


def build(project: Path, index: Path, **kwargs):
    from lambda_pkg.api import ensure_artifact

    return ensure_artifact(
        project_dir=project, runtime=HOST_RUNTIME, pip_args=offline(index), **kwargs
    )


def test_another_build_of_the_same_target_takes_the_wheels_from_the_store(usesboto, index):
    # GIVEN the package built once (usesboto downloaded; boto3 & co. left out)
    build(usesboto, index)
    assert [p.parent.name for p in stored(usesboto / ".build", "usesboto")] == [
        hashlib.sha256((index / "usesboto-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    ]
    # AND the index no longer serves usesboto
    (index / "usesboto-1.0-py3-none-any.whl").unlink()
    # WHEN another build of the same target needs it too (with boto3, as the image's does)
    art = build(usesboto, index, bundle_boto3=True)
    # THEN it came from the store, and only boto3 and botocore were downloaded
    assert {"usesboto/__init__.py", "boto3/__init__.py", "botocore/__init__.py"} <= names(art.path)
    assert stored(usesboto / ".build", "boto3") and stored(usesboto / ".build", "botocore")


def test_a_stored_wheel_that_does_not_match_its_lock_hash_is_refused_and_downloaded_again(
    usesboto, index
):
    # GIVEN the package built once, and then the stored usesboto wheel's bytes changed
    build(usesboto, index)
    [blob] = stored(usesboto / ".build", "usesboto")
    good = blob.read_bytes()
    blob.write_bytes(good + b"\0")  # a zip reader would not notice: only the hash does
    # WHEN another build of the same target needs it
    art = build(usesboto, index, bundle_boto3=True)
    # THEN the changed file was not used: the wheel was downloaded again, and stored whole
    with zipfile.ZipFile(art.path) as zf:
        assert zf.read("usesboto/__init__.py") == b"VERSION = '1.0'\n"
    assert blob.read_bytes() == good


def test_a_refused_wheel_is_fetched_from_the_index_not_used(usesboto, index):
    # GIVEN a stored wheel whose bytes changed, and an index that no longer serves it
    build(usesboto, index)
    [blob] = stored(usesboto / ".build", "usesboto")
    blob.write_bytes(b"not the wheel the lock pins")
    (index / "usesboto-1.0-py3-none-any.whl").unlink()
    # WHEN another build needs it
    # THEN the build fails asking pip for it (the store's copy is never packaged)
    with pytest.raises(UserError, match="no wheel of usesboto"):
        build(usesboto, index, bundle_boto3=True)
    assert not blob.exists()


def test_checkouts_share_one_store_when_asked(tmp_path, index, monkeypatch):
    # GIVEN two checkouts with their own build caches, and one store for both
    monkeypatch.setenv("LAMBDA_PKG_WHEEL_STORE", str(tmp_path / "store"))
    first = make_project(tmp_path / "a", requirements="usesboto\n")
    second = make_project(tmp_path / "b", requirements="usesboto\n")
    lock(first, index)
    lock(second, index)
    build(first, index)
    # WHEN the index loses the wheel and the second checkout builds
    (index / "usesboto-1.0-py3-none-any.whl").unlink()
    art = build(second, index)
    # THEN the second build took the first one's download
    assert "usesboto/__init__.py" in names(art.path)
    assert not (second / ".build" / "wheels").exists()
