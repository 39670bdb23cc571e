"""ensure_image: determinism, the per-layer cache, the image config, the checks."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from lambda_pkg.errors import UserError
from lambda_pkg.image import oci
from lambda_pkg.image.build import APP_DIR, DEPS_DIR
from tests.unit.image.helpers import (
    layer_file,
    layer_members,
    make_service_project,
    write,
)


def _copy_with_umask(src: Path, dst: Path, umask: int) -> None:
    """Recreate every file of src under dst as a fresh checkout would, with this umask."""
    old = os.umask(umask)
    try:
        for path in sorted(src.rglob("*")):
            target = dst / path.relative_to(src)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as fh:  # new file: the umask decides its mode
                    fh.write(path.read_bytes())
    finally:
        os.umask(old)


def test_same_inputs_give_the_same_digest_from_another_checkout(build, service_project, tmp_path):
    # GIVEN a second checkout elsewhere, made under another umask, with every file touched
    other = tmp_path / "elsewhere" / "deeper" / "checkout"
    _copy_with_umask(service_project, other, 0o077)
    assert (other / "backend" / "core.py").stat().st_mode & 0o777 == 0o600
    later = time.time() + 3600
    for path in other.rglob("*"):
        os.utime(path, (later, later))
    # WHEN each is built with its own, empty cache
    first = build(service_project)
    second = build(other)
    # THEN the images are the same, byte for byte
    assert first.digest == second.digest
    assert first.store != second.store
    assert [x.digest for x in first.layers] == [x.digest for x in second.layers]
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()


def test_the_image_has_a_base_a_dependency_and_a_code_layer(build, service_project, base_layout):
    image = build(service_project)
    manifest = json.loads(image.manifest_path.read_bytes())
    base_manifest = oci.parse_manifest(
        (base_layout / "blobs/sha256" / _index_digest(base_layout).split(":")[1]).read_bytes(), ""
    )
    assert [x.role for x in image.layers] == ["base", "dependencies", "code"]
    assert manifest["mediaType"] == oci.MANIFEST
    assert manifest["layers"][0]["digest"] == base_manifest.layers[0].digest
    assert all(x["mediaType"] == oci.LAYER_GZIP for x in manifest["layers"])
    assert manifest["annotations"] == {oci.BASE_DIGEST: image.base_digest}
    deps = layer_members(image.blob_path(image.layers[1].digest))
    code = layer_members(image.blob_path(image.layers[2].digest))
    assert f"{DEPS_DIR}/tinydep/__init__.py" in deps
    assert not any("/tests/" in name for name in deps)  # stripped as for the Lambda
    assert f"{DEPS_DIR}/tinydep/__pycache__/__init__.cpython-312.pyc" in deps
    assert f"{APP_DIR}/backend/service/__main__.py" in code
    assert f"{APP_DIR}/backend/service/__pycache__/__main__.cpython-312.pyc" in code
    assert not any(name.startswith(DEPS_DIR) for name in code)


def _index_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def test_layer_entries_are_normalised(build, service_project):
    write(service_project / "backend" / "tool.sh", "#!/bin/sh\n", mode=0o775)
    image = build(service_project)
    members = layer_members(image.blob_path(image.layers[2].digest))
    assert list(members) == sorted(members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {
        (0, 0, "", "", 1)
    }
    assert members[f"{APP_DIR}/backend/tool.sh"].mode == 0o755
    assert members[f"{APP_DIR}/backend/core.py"].mode == 0o644
    assert members["opt/ctb"].isdir() and members["opt/ctb"].mode == 0o755
    gz = image.blob_path(image.layers[2].digest).read_bytes()
    assert gz[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0


def test_the_config_runs_the_service_as_a_non_root_user(build, service_project):
    image = build(service_project)
    config = json.loads(image.blob_path(image.config_digest).read_bytes())
    c = config["config"]
    assert c["User"] == "65532:65532"
    assert c["Entrypoint"] == ["python", "-m", "backend.service"]
    assert c["WorkingDir"] == f"/{APP_DIR}"
    # Fargate mounts the task's writable volume at /tmp: declared, it keeps mode 1777
    assert c["Volumes"] == {"/tmp": {}}
    env = dict(item.split("=", 1) for item in c["Env"])
    assert env["PYTHONPATH"] == f"/{APP_DIR}:/{DEPS_DIR}"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"  # the base's, kept
    assert not any(k for k in env if "SECRET" in k or "KEY" in k or "TOKEN" in k)
    assert config["architecture"] == "amd64" and config["os"] == "linux"
    assert len(config["rootfs"]["diff_ids"]) == 3
    assert "created" not in config  # a timestamp would change the digest on every build
    assert config["rootfs"]["diff_ids"][2] == image.layers[2].diff_id


def test_a_no_change_rebuild_builds_nothing(build, service_project):
    first = build(service_project)
    blobs = sorted(p.name for p in (first.store / "blobs" / "sha256").iterdir())
    started = time.perf_counter()
    again = build(service_project, lock_first=False)  # the lock is there: time the build
    elapsed = time.perf_counter() - started
    assert again == first
    assert sorted(p.name for p in (first.store / "blobs" / "sha256").iterdir()) == blobs
    assert elapsed < 2.0  # generous for a loaded CI machine; the bench measures the real figure


def test_a_code_only_change_rebuilds_only_the_code_layer(
    build, service_project, image_wheelhouse, tmp_path
):
    wheels = tmp_path / "wheels"
    shutil.copytree(image_wheelhouse, wheels)
    pip_args = ["--no-index", "--find-links", str(wheels)]
    first = build(service_project, pip_args=pip_args)
    # The wheelhouse is gone: if the dependencies were resolved again, pip would fail.
    shutil.rmtree(wheels)
    write(service_project / "backend" / "core.py", "def run():\n    return 2\n")
    second = build(service_project, pip_args=pip_args)
    assert second.digest != first.digest
    assert second.layers[:2] == first.layers[:2]  # base and dependencies: the same blobs
    assert second.layers[2].digest != first.layers[2].digest
    assert second.layers[2].size < 64 * 1024  # kilobytes
    code = layer_file(second.blob_path(second.layers[2].digest), f"{APP_DIR}/backend/core.py")
    assert code == b"def run():\n    return 2\n"


def test_a_requirements_change_rebuilds_the_dependency_layer(
    build, service_project, image_wheelhouse
):
    first = build(service_project)
    write(service_project / "requirements_Version9.txt", "tinydep\nfastext\n")
    second = build(service_project)
    assert second.layers[1].digest != first.layers[1].digest
    assert second.layers[2] == first.layers[2]
    assert f"{DEPS_DIR}/fastext/_speed.so" in layer_members(
        second.blob_path(second.layers[1].digest)
    )


def test_the_service_requirements_file_comes_first(build, service_project):
    write(service_project / "requirements-service.txt", "-r requirements_Version9.txt\nfastext\n")
    image = build(service_project)
    assert f"{DEPS_DIR}/fastext/_speed.so" in layer_members(image.blob_path(image.layers[1].digest))
    assert not any("no requirements-service.txt" in note for note in image.notes)


def test_without_a_service_file_the_lambda_requirements_are_used_and_said(build, service_project):
    image = build(service_project)
    assert any("no requirements-service.txt" in note for note in image.notes)


def test_a_secret_in_the_code_is_refused(build, service_project):
    write(service_project / "backend" / "keys.py", 'KEY = "AKIAABCDEFGHIJKLMNOP"\n')
    with pytest.raises(UserError, match=r"secret scan: backend/keys.py:1"):
        build(service_project)


def test_code_that_does_not_compile_is_refused_by_its_path_in_the_project(build, service_project):
    # GIVEN a module of the service that is not Python
    write(service_project / "backend" / "broken.py", "def (:\n")
    # WHEN the image is built THEN the error names the file as the project has it
    # (not as /opt/ctb/app/..., the path it is compiled under)
    with pytest.raises(UserError, match=r"^backend/broken.py does not compile for Python 3\.12"):
        build(service_project)


def test_a_dependency_for_another_machine_is_refused(build, service_project):
    write(service_project / "requirements_Version9.txt", "armext\n")
    with pytest.raises(UserError, match=r"armext/_speed.so: built for aarch64"):
        build(service_project)


def test_a_project_without_requirements_has_only_a_code_layer(build, tmp_path):
    project = make_service_project(tmp_path / "p", requirements=None)
    image = build(project)
    assert [x.role for x in image.layers] == ["base", "code"]


def test_write_layout_gives_a_layout_a_reader_accepts(build, service_project, tmp_path):
    image = build(service_project)
    out = image.write_layout(tmp_path / "out")
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert _index_digest(out) == image.digest
    for digest in [image.digest, *image.blobs()]:
        blob = out / "blobs" / "sha256" / digest.split(":")[1]
        assert oci.sha256_digest(blob.read_bytes()) == digest


def test_the_same_image_from_an_unchanged_tree_after_the_cache_is_deleted(build, service_project):
    first = build(service_project)
    shutil.rmtree(service_project / ".build")
    assert build(service_project).digest == first.digest
