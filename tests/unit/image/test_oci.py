"""The OCI documents: platform choice, environment merge, layouts with an index inside."""

from __future__ import annotations

import json

import pytest

from lambda_pkg.image import Image, ensure_image, oci
from lambda_pkg.image.layout import LayoutError, read_layout
from tests.unit.image.helpers import make_base_layout


def _entry(arch, variant=None, os_="linux"):
    desc = oci.Descriptor(oci.MANIFEST, "sha256:" + arch[0] * 64, 1)
    return oci.PlatformEntry(desc, arch, os_, variant)


def test_the_linux_manifest_of_the_architecture_is_picked():
    entries = [_entry("amd64", os_="windows"), _entry("arm64", "v8"), _entry("amd64")]
    assert oci.pick_platform(entries, "x86_64", "idx") is entries[2].descriptor
    assert oci.pick_platform(entries, "arm64", "idx") is entries[1].descriptor
    with pytest.raises(oci.FormatError, match=r"no linux/arm64 image in the index"):
        oci.pick_platform(entries[:1], "arm64", "idx")


def test_our_environment_overrides_the_bases_and_keeps_its_order():
    base = ("PATH=/usr/bin", "LANG=C.UTF-8", "PYTHONPATH=/old")
    assert oci.merge_env(base, {"PYTHONPATH": "/new", "HOME": "/tmp"}) == [
        "PATH=/usr/bin", "LANG=C.UTF-8", "PYTHONPATH=/new", "HOME=/tmp",
    ]  # fmt: skip


def test_canonical_json_is_one_spelling():
    assert oci.canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


def test_a_layout_whose_index_points_at_an_index(tmp_path):
    digest = make_base_layout(tmp_path)
    manifest = (tmp_path / "blobs/sha256" / digest[7:]).read_bytes()
    inner = oci.canonical_json({
        "schemaVersion": 2, "mediaType": oci.INDEX,
        "manifests": [{"mediaType": oci.MANIFEST, "digest": digest, "size": len(manifest),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    })  # fmt: skip
    inner_digest = oci.sha256_digest(inner)
    (tmp_path / "blobs/sha256" / inner_digest[7:]).write_bytes(inner)
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": oci.INDEX, "digest": inner_digest, "size": len(inner)}]}))  # fmt: skip
    assert read_layout(tmp_path, "x86_64").digest == digest
    with pytest.raises(LayoutError, match="no linux/arm64"):
        read_layout(tmp_path, "arm64")


def test_the_package_exports_the_api():
    assert ensure_image.__module__ == "lambda_pkg.image.build"
    assert Image.__name__ == "Image"
