"""Push an image to a registry and pull one into the blob store, over registry.py.

Push: every blob the manifest names is checked with HEAD first and skipped when
the repository has it; a blob another repository of the same registry holds (the
base, pulled from there) is mounted instead of uploaded; the manifest goes last, so
a tag never names an image whose blobs are not all there. A code-only change
therefore uploads only the code layer, the config and the manifest.

Pull: a pinned reference only. The bytes are checked against the digest before
anything is kept: the manifest (or index, then the platform's manifest) and each
blob.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.image import oci
from lambda_pkg.image.reference import Reference
from lambda_pkg.image.registry import Credentials, Registry, RegistryError
from lambda_pkg.image.store import BlobStore


@dataclass(frozen=True)
class PushResult:
    reference: str  # where the manifest was put: registry/repo:tag@digest
    digest: str
    uploaded: tuple[str, ...]  # blob digests sent
    mounted: tuple[str, ...]
    existing: tuple[str, ...]
    uploaded_bytes: int


def push(
    manifest_raw: bytes,
    blob_path: Callable[[str], Path],
    target: Reference,
    credentials: Credentials | None = None,
    mount_from: str | None = None,
) -> PushResult:
    """Push the image whose manifest is manifest_raw; blobs are read from blob_path(digest)."""
    digest = oci.sha256_digest(manifest_raw)
    manifest = oci.parse_manifest(manifest_raw, digest)
    registry = Registry(target, credentials)
    uploaded: list[str] = []
    mounted: list[str] = []
    existing: list[str] = []
    sent = 0
    # Layers before the config: a registry may check that a config's layers exist.
    for desc in (*manifest.layers, manifest.config):
        if desc.digest in uploaded + mounted + existing:
            continue
        if registry.has_blob(desc.digest):
            existing.append(desc.digest)
        elif mount_from and registry.mount_blob(desc.digest, mount_from):
            mounted.append(desc.digest)
        else:
            registry.upload_blob(desc.digest, blob_path(desc.digest))
            uploaded.append(desc.digest)
            sent += desc.size
    tag = target.tag or digest
    registry.put_manifest(tag, manifest_raw, oci.MANIFEST)
    return PushResult(
        reference=f"{target.name}:{tag}@{digest}" if target.tag else f"{target.name}@{digest}",
        digest=digest,
        uploaded=tuple(uploaded),
        mounted=tuple(mounted),
        existing=tuple(existing),
        uploaded_bytes=sent,
    )


def pull(
    ref: Reference,
    architecture: str,
    store: BlobStore,
    credentials: Credentials | None = None,
) -> str:
    """Pull a pinned image into the store; return the platform manifest's digest."""
    if not ref.digest:
        raise RegistryError(f"{ref}: only a reference pinned by digest can be pulled")
    registry = Registry(ref, credentials)
    raw, media = registry.get_manifest(ref.digest)
    _check(raw, ref.digest, str(ref))
    if media == oci.INDEX:
        store.put_bytes(raw)
        desc = oci.pick_platform(oci.parse_index(raw, str(ref)), architecture, str(ref))
        raw, media = registry.get_manifest(desc.digest)
        _check(raw, desc.digest, f"{ref.name}@{desc.digest}")
    manifest = oci.parse_manifest(raw, str(ref))
    for desc in (manifest.config, *manifest.layers):
        if store.has(desc.digest, desc.size):
            continue
        with store.staging() as (fh, tmp):
            registry.fetch_blob(desc.digest, fh)
            fh.flush()
            store.commit(tmp, desc.digest)
    return store.put_bytes(raw)


def _check(raw: bytes, digest: str, where: str) -> None:
    got = oci.sha256_digest(raw)
    if got != digest:
        raise RegistryError(f"{where}: the registry returned a manifest with digest {got}")
