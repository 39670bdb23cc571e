"""The packager's Python API (docs/CONTRACTS.md section 1).

    art = ensure_artifact(project_dir=Path("."), runtime="python3.12", architecture="x86_64")

Hashes the inputs first and builds only when no artifact exists for that hash.
Never prints to stdout; raises lambda_pkg.errors.UserError for anything the user can fix.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from lambda_pkg import limits
from lambda_pkg.artifact import Artifact, load_manifest, stage_json
from lambda_pkg.builder import ZIP_NAME, Plan, ensure, prepare
from lambda_pkg.errors import UserError
from lambda_pkg.progress import Progress

__all__ = ["Artifact", "Plan", "ensure_artifact", "load_manifest", "place_artifact", "prepare"]


def ensure_artifact(
    *,
    project_dir: Path | str = ".",
    runtime: str = limits.DEFAULT_RUNTIME,
    architecture: str = limits.DEFAULT_ARCHITECTURE,
    layer: bool = False,
    bundle_boto3: bool = False,
    requirements: Path | str | None = None,
    cache_dir: Path | str | None = None,
    progress: bool = False,
    bytecode: bool = True,
    pip_args: Sequence[str] = (),
) -> Artifact:
    """The artifact for these inputs, built only if it does not exist yet.

    bytecode=False builds without .pyc files; pip_args are extra `pip download`
    options (e.g. ["--no-index", "--find-links", DIR] for an offline build).
    """
    plan = prepare(
        project_dir=project_dir,
        runtime=runtime,
        architecture=architecture,
        layer=layer,
        bundle_boto3=bundle_boto3,
        requirements=requirements,
        cache_dir=cache_dir,
        bytecode=bytecode,
        pip_args=pip_args,
    )
    art, _ = ensure(plan, Progress(progress))
    return art


def output_paths(output: Path | str) -> tuple[Path, Path, Path]:
    """(zip, manifest, layer zip) for --output: `out/pkg.zip` gives `out/pkg.zip`,
    `out/pkg.manifest.json` and `out/pkg-layer.zip`; a directory gets lambda_deployment.*"""
    out = Path(output)
    if out.is_dir() or str(output).endswith(("/", os.sep)):
        out = out / ZIP_NAME
    stem = out.name[:-4] if out.name.endswith(".zip") else out.name
    return out, out.with_name(f"{stem}.manifest.json"), out.with_name(f"{stem}-layer.zip")


def place_artifact(art: Artifact, output: Path | str) -> Artifact:
    """Copy the artifact (and layer) to output with its manifest beside it.

    Every file is first written in full to a temp file beside its destination; only
    then are they moved into place with os.replace, the zips first and the manifest
    last. A failure while writing (disk full, no permission) therefore leaves any
    previous output exactly as it was, and the manifest never describes a zip that
    is not there yet.
    """
    zip_path, manifest_path, layer_path = output_paths(output)
    placed = replace(
        art,
        path=zip_path,
        manifest_path=manifest_path,
        layer=art.layer and replace(art.layer, path=layer_path, manifest_path=manifest_path),
    )
    if _already_placed(placed):
        return placed
    staged: list[tuple[Path, Path]] = []
    try:
        try:
            zip_path.parent.mkdir(parents=True, exist_ok=True)
            if art.layer:
                staged.append((_stage_copy(art.layer.path, layer_path), layer_path))
            staged.append((_stage_copy(art.path, zip_path), zip_path))
            staged.append((stage_json(manifest_path, placed.to_json()), manifest_path))
        except OSError as exc:
            raise UserError(f"cannot write --output {zip_path}: {exc.strerror or exc}") from None
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _final in staged:
            tmp.unlink(missing_ok=True)
    return placed


def _already_placed(placed: Artifact) -> bool:
    """A no-change rebuild should not copy 60 MB again: same manifest, same sizes."""
    try:
        data = json.loads(placed.manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if data != json.loads(json.dumps(placed.to_json())):
        return False
    files = [(placed.path, placed.size)] + (
        [(placed.layer.path, placed.layer.size)] if placed.layer else []
    )
    return all(p.is_file() and p.stat().st_size == size for p, size in files)


def _stage_copy(src: Path, dst: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)
