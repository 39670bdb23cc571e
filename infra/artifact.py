"""Get the Lambda package the stack deploys (docs/CONTRACTS.md §2).

`CTB_ARTIFACT_MANIFEST` names a manifest from an earlier build: deploy exactly
those bytes and build nothing (CI builds once, deploys to every stack). Otherwise
the packager's cached two-phase build runs: with nothing changed it only hashes
the inputs, so a preview never rebuilds.

Either way the artifact must match the stack's runtime, architecture and layer
setting; a mismatch is a config error at preview, not a broken function at run.
"""

from __future__ import annotations

import os
from pathlib import Path

from infra.config import ConfigError, StackConfig
from lambda_pkg.artifact import Artifact, load_manifest
from lambda_pkg.errors import UserError

MANIFEST_ENV = "CTB_ARTIFACT_MANIFEST"
PROJECT_DIR = Path(__file__).resolve().parent.parent


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
