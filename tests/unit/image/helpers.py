"""Helpers for the image builder's tests: a small service project, a wheelhouse served
to pip offline, and a tiny base image written with the standard library alone (so
reading a base is checked against bytes the builder did not write)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from tests.unit.lambda_pkg.conftest import make_elf, make_project, make_wheel, write

__all__ = [
    "lock_offline",
    "make_base_layout",
    "make_elf",
    "make_service_project",
    "make_wheel",
    "write",
]

SERVICE_MAIN = '''\
"""A stand-in for the strategy service: `health` prints one JSON object, as the
real service's health check does (docs/CONTRACTS.md section 10)."""
import json, os, sys

import tinydep


def main(argv):
    if argv[:1] == ["health"]:
        print(json.dumps({"healthy": True, "uid": os.getuid(), "dep": tinydep.VALUE,
                          "cwd": os.getcwd(), "cached": __cached__}))
        return 0
    print("step")
    return 0


sys.exit(main(sys.argv[1:]))
'''


def make_service_project(root: Path, requirements: str | None = "tinydep\n") -> Path:
    make_project(root, requirements)
    write(root / "backend" / "service" / "__init__.py", "")
    write(root / "backend" / "service" / "__main__.py", SERVICE_MAIN)
    return root


def lock_offline(
    project: Path,
    wheelhouse: Path,
    *,
    runtime: str = "python3.12",
    architecture: str = "x86_64",
    requirements: Path | None = None,
) -> None:
    """Lock the project's requirements for one target from the test wheelhouse (uv), as
    `python -m lambda_pkg lock` would: a build installs only what a lock pins."""
    from lambda_pkg.lock import lock_project
    from lambda_pkg.reqfile import DEFAULT_NAMES

    inputs = ("requirements-service.txt", *DEFAULT_NAMES)
    if requirements is None and not any((project / name).is_file() for name in inputs):
        return
    lock_project(
        project,
        requirements=[requirements] if requirements is not None else (),
        targets=[(runtime, architecture)],
        index_args=["--no-index", "--find-links", str(wheelhouse)],
    )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_base_layout(
    directory: Path, *, architecture: str = "amd64", docker_types: bool = False
) -> str:
    """An OCI layout with a one-layer base image; returns its manifest digest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"base\n"
        info = tarfile.TarInfo("etc/base-release")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw_tar = buf.getvalue()
    layer = gzip.compress(raw_tar, mtime=0)
    config: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]},
        "rootfs": {"type": "layers", "diff_ids": [_digest(raw_tar)]},
        "history": [{"created_by": "test base"}],
    }
    config_raw = json.dumps(config).encode()
    layer_type = (
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
        if docker_types
        else "application/vnd.oci.image.layer.v1.tar+gzip"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json"
        if docker_types
        else "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_raw),
            "size": len(config_raw),
        },
        "layers": [{"mediaType": layer_type, "digest": _digest(layer), "size": len(layer)}],
    }
    manifest_raw = json.dumps(manifest, indent=1).encode()
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in (layer, config_raw, manifest_raw):
        (blobs / _digest(data).split(":")[1]).write_bytes(data)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": _digest(manifest_raw),
                "size": len(manifest_raw),
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    return _digest(manifest_raw)


def read_blob_json(store_or_layout: Path, digest: str) -> Any:
    return json.loads((store_or_layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def layer_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def layer_file(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()
