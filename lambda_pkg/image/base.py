"""The base image: an official image pinned by digest, a local OCI layout, or `local`.

  --base python:3.12-slim@sha256:<digest>   pulled over the registry API once, then cached
  --base DIR                                 an OCI image layout on disk
  --base local                               the project's own base (localbase.py)
  (none)                                     the official image for the runtime, pinned here

A tag alone is refused: it can be moved to other bytes, and then the same inputs
would no longer give the same image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambda_pkg.errors import UserError
from lambda_pkg.image import oci
from lambda_pkg.image.layout import LayoutError, read_layout
from lambda_pkg.image.localbase import build_local_base
from lambda_pkg.image.reference import BadReference, Reference, parse_reference
from lambda_pkg.image.store import BlobStore, link_or_copy
from lambda_pkg.progress import Progress

if TYPE_CHECKING:  # the registry client loads only to pull (a cached base never does)
    from lambda_pkg.image.registry import Credentials

LOCAL = "local"
# The official images, pinned by the digest of their multi-platform index (bump
# deliberately, e.g. `skopeo inspect --raw docker://python:3.12-slim | sha256sum`).
OFFICIAL_BASES = {
    "python3.12": (
        "python:3.12-slim@sha256:78387bc3881b8273120a12ebe6c1ab22b018ccc2c9adf565ae1ac9b536e184ea"
    ),
}


@dataclass(frozen=True)
class Base:
    digest: str  # the platform manifest's digest
    manifest: oci.Manifest
    config: oci.ImageConfig
    source: str  # what --base said (or the default it took)


def default_base(runtime: str) -> str:
    if runtime not in OFFICIAL_BASES:
        raise UserError(
            f"no pinned official base for {runtime}: pass --base python:"
            f"{runtime.removeprefix('python')}-slim@sha256:<digest>, --base DIR or --base local"
        )
    return OFFICIAL_BASES[runtime]


def resolve_base(
    spec: str | None,
    *,
    runtime: str,
    architecture: str,
    store: BlobStore,
    progress: Progress,
    credentials: Credentials | None = None,
) -> Base:
    source = spec or default_base(runtime)
    if source == LOCAL:
        digest = build_local_base(runtime, architecture, store, progress)
    elif "@" not in source and Path(source).is_dir():
        digest = _import_layout(Path(source), architecture, store)
    else:
        digest = _pulled(_pinned(source), architecture, store, progress, credentials)
    return _load(digest, source, architecture, store)


def _pinned(source: str) -> Reference:
    try:
        ref = parse_reference(source)
    except BadReference as exc:
        raise UserError(
            f"--base {exc}; give an image pinned by digest, a directory or 'local'"
        ) from None
    if not ref.pinned:
        raise UserError(
            f"--base {source}: a tag can move to other bytes; pin it by digest "
            f"({source}@sha256:<digest>), or pass an OCI layout directory or 'local'"
        )
    return ref


def _pulled(
    ref: Reference,
    architecture: str,
    store: BlobStore,
    progress: Progress,
    credentials: Credentials | None,
) -> str:
    key = f"{ref.digest}-{architecture}"
    record = store.load_record("base-pulled", key)
    if record and store.has(str(record["digest"])):
        return str(record["digest"])
    from lambda_pkg.image.registry import RegistryError
    from lambda_pkg.image.transfer import pull

    progress.step(f"pulling {ref}")
    try:
        digest = pull(ref, architecture, store, credentials)
    except RegistryError as exc:
        raise UserError(
            f"cannot pull --base {ref}: {exc}; with no network, pass --base local (the project's "
            "own base) or --base DIR (an OCI image layout)"
        ) from None
    except oci.FormatError as exc:
        raise UserError(f"--base {ref}: {exc}") from None
    store.save_record("base-pulled", key, {"digest": digest, "reference": str(ref)})
    return digest


def _import_layout(directory: Path, architecture: str, store: BlobStore) -> str:
    try:
        image = read_layout(directory, architecture)
        manifest = oci.parse_manifest(image.manifest_raw, image.digest)
        for desc in (manifest.config, *manifest.layers):
            if not store.has(desc.digest, desc.size):
                link_or_copy(image.blob(desc.digest), store.path(desc.digest))
    except (LayoutError, oci.FormatError) as exc:
        raise UserError(f"--base {exc}") from None
    except OSError as exc:
        raise UserError(f"--base {directory}: cannot read {exc.filename}: {exc.strerror}") from None
    return store.put_bytes(image.manifest_raw)


def _load(digest: str, source: str, architecture: str, store: BlobStore) -> Base:
    try:
        manifest = oci.parse_manifest(store.read(digest), digest)
        config = oci.ImageConfig.from_bytes(store.read(manifest.config.digest), source)
    except (OSError, oci.FormatError) as exc:
        raise UserError(f"--base {source}: {exc}") from None
    want = oci.PLATFORM[architecture][0]
    if config.architecture != want or config.os != "linux":
        raise UserError(
            f"--base {source} is a {config.os}/{config.architecture} image, but --architecture "
            f"{architecture} needs linux/{want}"
        )
    if len(config.diff_ids) != len(manifest.layers):
        raise UserError(f"--base {source}: its config lists {len(config.diff_ids)} layers, "
                        f"its manifest {len(manifest.layers)}")  # fmt: skip
    return Base(digest, manifest, config, source)
