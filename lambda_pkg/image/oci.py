"""The OCI image format: media types, descriptors, manifests, indexes, canonical JSON.

Every JSON document the builder writes is serialised one way (sorted keys, no
whitespace, UTF-8), so the same content always has the same digest. Documents read
from a registry or a layout are kept as the bytes that were read: their digest is
the digest of those bytes, whatever their key order.

Docker's schema 2 types are accepted on input (the official images still use them)
and written back as their OCI equivalents, which name the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# What a registry is asked for: any single manifest or index, OCI or Docker.
ACCEPT = ", ".join((MANIFEST, INDEX, DOCKER_MANIFEST, DOCKER_LIST))
TO_OCI = {
    DOCKER_MANIFEST: MANIFEST,
    DOCKER_LIST: INDEX,
    DOCKER_CONFIG: CONFIG,
    DOCKER_LAYER_GZIP: LAYER_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar": LAYER_TAR,
}
# Lambda's architecture names -> OCI platform fields (GOARCH spelling).
PLATFORM = {"x86_64": ("amd64", None), "arm64": ("arm64", "v8")}
# Base-image annotation (OCI image spec, pre-defined annotation keys).
BASE_DIGEST = "org.opencontainers.image.base.digest"


class FormatError(ValueError):
    """A manifest, index or config that is not what the OCI spec says it should be."""


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @staticmethod
    def from_json(data: Any, where: str) -> Descriptor:
        try:
            media = str(data["mediaType"])
            digest, size = str(data["digest"]), int(data["size"])
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{where}: a descriptor lacks mediaType, digest or size") from None
        return Descriptor(TO_OCI.get(media, media), digest, size)


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        data: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        return canonical_json(data)


@dataclass(frozen=True)
class PlatformEntry:
    """One manifest of a multi-platform index."""

    descriptor: Descriptor
    architecture: str
    os: str
    variant: str | None


def load_json(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{where}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FormatError(f"{where}: not a JSON object")
    return data


def media_type_of(raw: bytes, where: str, header: str | None = None) -> str:
    """The document's media type: its own mediaType field, else the HTTP header's."""
    data = load_json(raw, where)
    media = str(data.get("mediaType") or header or "")
    if not media and "manifests" in data:
        media = INDEX
    elif not media and "layers" in data:
        media = MANIFEST
    return TO_OCI.get(media, media)


def parse_manifest(raw: bytes, where: str) -> Manifest:
    data = load_json(raw, where)
    if data.get("schemaVersion") != 2 or "config" not in data or "layers" not in data:
        raise FormatError(f"{where}: not an image manifest (schema 2 with config and layers)")
    layers = tuple(Descriptor.from_json(d, where) for d in data["layers"])
    annotations = data.get("annotations") or {}
    return Manifest(Descriptor.from_json(data["config"], where), layers, dict(annotations))


def parse_index(raw: bytes, where: str) -> list[PlatformEntry]:
    data = load_json(raw, where)
    out = []
    for item in data.get("manifests") or []:
        platform = item.get("platform") or {}
        out.append(
            PlatformEntry(
                Descriptor.from_json(item, where),
                str(platform.get("architecture", "")),
                str(platform.get("os", "")),
                platform.get("variant"),
            )
        )
    return out


def pick_platform(entries: list[PlatformEntry], architecture: str, where: str) -> Descriptor:
    """The linux manifest for the Lambda-style architecture name (x86_64/arm64)."""
    arch, variant = PLATFORM[architecture]
    for entry in entries:
        variant_ok = variant is None or entry.variant in (None, variant)
        if entry.os == "linux" and entry.architecture == arch and variant_ok:
            return entry.descriptor
    found = ", ".join(f"{e.os}/{e.architecture}" for e in entries) or "none"
    raise FormatError(f"{where}: no linux/{arch} image in the index (it has {found})")


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config the builder reads from a base and writes back."""

    architecture: str
    os: str
    env: tuple[str, ...]
    diff_ids: tuple[str, ...]
    history: tuple[Mapping[str, Any], ...]

    @staticmethod
    def from_bytes(raw: bytes, where: str) -> ImageConfig:
        data = load_json(raw, where)
        config = data.get("config") or {}
        rootfs = data.get("rootfs") or {}
        if rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
            raise FormatError(f"{where}: the config has no rootfs.diff_ids")
        return ImageConfig(
            architecture=str(data.get("architecture", "")),
            os=str(data.get("os", "")),
            env=tuple(config.get("Env") or ()),
            diff_ids=tuple(rootfs["diff_ids"]),
            history=tuple(data.get("history") or ()),
        )


def merge_env(base: tuple[str, ...], ours: Mapping[str, str]) -> list[str]:
    """The base's environment with ours laid over it, in the base's order, then ours sorted."""
    names = [item.partition("=")[0] for item in base]
    merged = {item.partition("=")[0]: item.partition("=")[2] for item in base}
    merged.update(ours)
    order = names + sorted(k for k in ours if k not in names)
    return [f"{k}={merged[k]}" for k in order]
