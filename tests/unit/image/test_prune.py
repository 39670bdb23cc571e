"""The image cache keeps the newest images and the blobs they reach, nothing else."""

from __future__ import annotations

import os
import time

from lambda_pkg.image.prune import MIN_AGE, prune
from lambda_pkg.image.store import BlobStore
from tests.unit.image.helpers import make_base_layout, write


def _age_everything(root, seconds):
    past = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def test_old_images_and_their_blobs_go_the_newest_stay(build, service_project, tmp_path):
    # A base of this test's own: its blobs are hard-linked into the store, so aging
    # the store ages them too.
    make_base_layout(tmp_path / "base")
    images = []
    for i in range(3):
        write(service_project / "backend" / "core.py", f"def run():\n    return {i}\n")
        images.append(build(service_project, base=tmp_path / "base"))
    store = BlobStore(images[0].store)
    _age_everything(store.root, 2 * MIN_AGE)
    for image in images[1:]:  # used later than the first
        os.utime(store.record_path("image", image.input_hash))
    deleted = prune(store, keep=2)
    assert deleted >= 3  # the first image's code layer, config and manifest
    for image in images[1:]:
        assert all(store.has(d) for d in [image.digest, *image.blobs()])
    assert not store.has(images[0].digest)
    assert not store.has(images[0].layers[-1].digest)
    assert store.has(images[0].layers[1].digest)  # the dependency layer is shared
    # The first image is simply built again (from its cached dependency layer).
    write(service_project / "backend" / "core.py", "def run():\n    return 0\n")
    assert build(service_project, base=tmp_path / "base").digest == images[0].digest


def test_young_blobs_are_never_deleted(build, service_project):
    image = build(service_project)
    store = BlobStore(image.store)
    store.record_path("image", image.input_hash).unlink()
    assert prune(store, keep=5) == 0
    assert all(store.has(d) for d in [image.digest, *image.blobs()])


def test_bytecode_files_of_the_old_naming_go_the_current_ones_stay(tmp_path):
    # GIVEN an image cache whose pyc/ holds a file named by the bare key (how builders
    # before bytecode.compile_cached named them), a current .pyc and a build's temp file
    store = BlobStore(tmp_path / "image")
    pyc = store.root / "pyc"
    old = write(pyc / ("a" * 64), b"old")
    current = write(pyc / f"{'b' * 64}.pyc", b"new")
    in_flight = write(pyc / f".{'c' * 64}.123.tmp", b"tmp")
    # WHEN the cache is pruned
    prune(store)
    # THEN only the old-named file is gone
    assert not old.exists()
    assert current.exists() and in_flight.exists()
