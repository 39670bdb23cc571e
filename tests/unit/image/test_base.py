"""The base: pinned references only, local layouts, clear one-line errors, no network."""

from __future__ import annotations

import json
import socket

import pytest

from lambda_pkg.errors import UserError
from lambda_pkg.image import oci
from lambda_pkg.image.base import OFFICIAL_BASES
from tests.unit.image.helpers import make_base_layout

PINNED = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "base",
    ["python:3.12-slim", "docker.io/library/python:3.12-slim", "127.0.0.1:5000/ctb/base:latest"],
)
def test_a_mutable_tag_is_refused_before_anything_is_built(build, service_project, base):
    with pytest.raises(UserError) as err:
        build(service_project, base=base)
    message = str(err.value)
    assert message.startswith(f"--base {base}: a tag can move")
    assert "@sha256:" in message and "\n" not in message
    assert not (service_project / ".build" / "image" / "blobs").exists()


def test_an_unreachable_registry_says_to_pass_a_local_base(build, service_project):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError) as err:
        build(service_project, base=f"127.0.0.1:{port}/python@{PINNED}")
    message = str(err.value)
    assert message.startswith(f"cannot pull --base 127.0.0.1:{port}/library/python@") or (
        message.startswith(f"cannot pull --base 127.0.0.1:{port}/python@")
    )
    assert "--base local" in message and "--base DIR" in message and "\n" not in message


def test_a_runtime_without_a_pinned_official_base_names_base(build, service_project):
    assert "python3.13" not in OFFICIAL_BASES
    with pytest.raises(UserError, match=r"no pinned official base for python3.13: pass --base"):
        build(service_project, base=None, runtime="python3.13")


def test_a_directory_that_is_not_a_layout_is_refused(build, service_project, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"--base .*empty is not an OCI image layout"):
        build(service_project, base=tmp_path / "empty")


def test_a_base_for_another_architecture_is_refused(build, service_project, tmp_path):
    make_base_layout(tmp_path / "arm", architecture="arm64")
    with pytest.raises(UserError, match=r"linux/arm64 image, but --architecture x86_64"):
        build(service_project, base=tmp_path / "arm")


def test_a_tampered_base_manifest_is_refused(build, service_project, tmp_path):
    digest = make_base_layout(tmp_path / "bad")
    blob = tmp_path / "bad" / "blobs" / "sha256" / digest.split(":")[1]
    blob.write_bytes(blob.read_bytes() + b" ")
    with pytest.raises(UserError, match=r"does not match its content"):
        build(service_project, base=tmp_path / "bad")


def test_docker_media_types_of_a_base_are_written_as_oci(build, service_project, tmp_path):
    make_base_layout(tmp_path / "docker", docker_types=True)
    image = build(service_project, base=tmp_path / "docker")
    manifest = json.loads(image.manifest_path.read_bytes())
    assert manifest["layers"][0]["mediaType"] == oci.LAYER_GZIP


def test_the_official_bases_are_pinned_references():
    for runtime, ref in OFFICIAL_BASES.items():
        assert ref.startswith(f"python:{runtime.removeprefix('python')}-slim@sha256:")
        assert len(ref.split("@sha256:")[1]) == 64
