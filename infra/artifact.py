"""Get what the stack deploys: the Lambda package (docs/CONTRACTS.md §2) and the
strategy service's image (§11).

`CTB_ARTIFACT_MANIFEST` names a manifest from an earlier build: deploy exactly
those bytes and build nothing (CI builds once, deploys to every stack). Otherwise
the packager's cached two-phase build runs: with nothing changed it only hashes
the inputs, so a preview never rebuilds. `CTB_IMAGE_LAYOUT` does the same for the
image (an OCI image layout, as `python -m lambda_pkg image --output DIR` writes);
otherwise `lambda_pkg.image.ensure_image` builds it, cached, on the stack's
`serviceBaseImage` (or `CTB_IMAGE_BASE`: `local`, a layout, a pinned reference).

Either way what is deployed must match the stack's runtime, architecture and layer
setting; a mismatch is a config error at preview, not a broken function or task at run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import ConfigError, StackConfig
from lambda_pkg.artifact import Artifact, load_manifest
from lambda_pkg.errors import UserError

MANIFEST_ENV = "CTB_ARTIFACT_MANIFEST"
IMAGE_LAYOUT_ENV = "CTB_IMAGE_LAYOUT"
IMAGE_BASE_ENV = "CTB_IMAGE_BASE"
PROJECT_DIR = Path(__file__).resolve().parent.parent
# The task's writable volume (infra/service.py); the image must declare it a VOLUME.
TMP_VOLUME = "/tmp"  # noqa: S108  a path inside the container, not on this machine
# OCI platform names -> the stack's architecture names.
_ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}


def get_artifact(cfg: StackConfig, *, project_dir: Path = PROJECT_DIR) -> Artifact:
    manifest = os.environ.get(MANIFEST_ENV)
    try:
        if manifest:
            artifact = load_manifest(manifest)
        else:
            # Imported here so a prebuilt deploy (and every test) never needs the builder.
            from lambda_pkg.api import ensure_artifact

            artifact = ensure_artifact(
                project_dir=project_dir,
                runtime=cfg.runtime,
                architecture=cfg.architecture,
                layer=cfg.dependency_layer,
            )
    except UserError as exc:
        # A RunError prints as one line in `pulumi preview`, without a traceback.
        raise ConfigError(f"Lambda package: {exc}") from None
    check_matches(artifact, cfg, source=manifest or "the cached build")
    return artifact


def check_matches(artifact: Artifact, cfg: StackConfig, *, source: str) -> None:
    problems = []
    if artifact.runtime != cfg.runtime:
        problems.append(f"runtime {artifact.runtime} but the stack's runtime is {cfg.runtime}")
    if artifact.architecture != cfg.architecture:
        problems.append(
            f"architecture {artifact.architecture} but the stack's architecture is "
            f"{cfg.architecture}"
        )
    if cfg.dependency_layer and artifact.layer is None:
        problems.append("no dependency layer but the stack sets dependencyLayer: true")
    if not cfg.dependency_layer and artifact.layer is not None:
        problems.append("a dependency layer but the stack sets dependencyLayer: false")
    if problems:
        raise ConfigError(
            f"Lambda package {source} does not fit stack {cfg.environment!r}: it was built with "
            + "; ".join(problems)
            + ". Rebuild it with the stack's settings (python -m lambda_pkg build) or unset "
            + MANIFEST_ENV
            + "."
        )


@dataclass(frozen=True)
class ServiceImage:
    """An image ready to push: its manifest's digest and where its blobs are."""

    digest: str  # sha256:... of the manifest: what the task definition names
    # A directory holding blobs/sha256/<hex> for the manifest and every blob it names:
    # an OCI image layout, or the builder's own store (.build/image).
    blobs: Path
    architecture: str  # x86_64 or arm64, as the stack names it
    source: str
    # The image declares VOLUME /tmp, so Fargate's bind mount takes the image's /tmp
    # (owner and mode 1777) instead of a root-owned 0755 directory user 65532 cannot write.
    declares_tmp_volume: bool

    def blob(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.blobs / "blobs" / algorithm / hexdigest


def get_image(cfg: StackConfig, *, project_dir: Path = PROJECT_DIR) -> ServiceImage | None:
    """The service's image, or None when the stack runs no service (nothing is built)."""
    if not cfg.strategy_enabled:
        return None
    layout = os.environ.get(IMAGE_LAYOUT_ENV)
    try:
        image = _from_layout(Path(layout), cfg.architecture) if layout else _built(cfg, project_dir)
    except UserError as exc:
        raise ConfigError(f"strategy service image: {exc}") from None
    if image.architecture != cfg.architecture:
        raise ConfigError(
            f"strategy service image {image.source} is for {image.architecture}, but the stack's "
            f"architecture is {cfg.architecture}. Rebuild it (python -m lambda_pkg image "
            f"--architecture {cfg.architecture}) or unset {IMAGE_LAYOUT_ENV}."
        )
    return image


def image_warnings(image: ServiceImage | None) -> list[str]:
    if image is None or image.declares_tmp_volume:
        return []
    return [
        f"strategy service image {image.digest} declares no VOLUME {TMP_VOLUME}: Fargate then "
        f"mounts the task's writable {TMP_VOLUME} owned by root, and the service (user 65532) "
        "cannot write its heartbeat, so its health check fails. Build it with an image "
        "builder that declares the volume (docs/service.md, 'The writable volume')"
    ]


def _built(cfg: StackConfig, project_dir: Path) -> ServiceImage:
    # Imported here so a prebuilt deploy (and every test) never needs the builder.
    from lambda_pkg.image import ensure_image

    base = os.environ.get(IMAGE_BASE_ENV) or cfg.service_base_image
    built = ensure_image(
        project_dir=project_dir, runtime=cfg.runtime, architecture=cfg.architecture, base=base
    )
    source = f"built on {base or 'the official base pinned for ' + cfg.runtime}"
    return _describe(built.digest, built.store, source)


def _from_layout(directory: Path, architecture: str) -> ServiceImage:
    from lambda_pkg.image.layout import LayoutError, read_layout

    if not directory.is_dir():
        raise UserError(
            f"{IMAGE_LAYOUT_ENV}={directory}: no such directory (write one with "
            "python -m lambda_pkg image --output DIR)"
        )
    try:
        found = read_layout(directory, architecture)
    except LayoutError as exc:
        raise UserError(f"{IMAGE_LAYOUT_ENV}: {exc}") from None
    return _describe(found.digest, directory, f"{IMAGE_LAYOUT_ENV}={directory}")


def _describe(digest: str, blobs: Path, source: str) -> ServiceImage:
    """Read the manifest and config, and check every blob is there before anything is
    pushed: a layout copied without one of its layers fails the preview, not the push."""
    from lambda_pkg.image import oci

    probe = ServiceImage(digest, blobs, "", source, declares_tmp_volume=False)
    try:
        raw = probe.blob(digest).read_bytes()
        if oci.sha256_digest(raw) != digest:
            raise UserError(f"{source}: manifest {digest} does not match its content")
        manifest = oci.parse_manifest(raw, digest)
        for desc in (manifest.config, *manifest.layers):
            path = probe.blob(desc.digest)
            if not path.is_file() or path.stat().st_size != desc.size:
                raise UserError(f"{source}: blob {desc.digest} is missing or truncated")
        config: Any = json.loads(probe.blob(manifest.config.digest).read_bytes())
    except OSError as exc:
        raise UserError(f"{source}: cannot read {exc.filename}: {exc.strerror}") from None
    except (oci.FormatError, ValueError) as exc:
        raise UserError(f"{source}: {exc}") from None
    platform = str(config.get("architecture", "")) if isinstance(config, dict) else ""
    volumes = (config.get("config") or {}).get("Volumes") if isinstance(config, dict) else None
    return ServiceImage(
        digest=digest,
        blobs=blobs.absolute(),
        architecture=_ARCHITECTURES.get(platform, platform or "unknown"),
        source=source,
        declares_tmp_volume=isinstance(volumes, dict) and TMP_VOLUME in volumes,
    )
