"""The packager's Python API (docs/CONTRACTS.md section 1).

    art = ensure_artifact(project_dir=Path("."), runtime="python3.12", architecture="x86_64")
    deps = resolve_dependencies(project_dir=Path("."), requirements="requirements-service.txt",
                                runtime="python3.12", architecture="x86_64", bundle_boto3=True)

ensure_artifact hashes the inputs first and builds only when no artifact exists for
that hash. resolve_dependencies gives the same locked, audited dependency files the
zip gets, for another packaging (the container image). Neither prints to stdout; both
raise lambda_pkg.errors.UserError for anything the user can fix.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lambda_pkg import limits
from lambda_pkg.artifact import Artifact, load_manifest, stage, stage_json
from lambda_pkg.budget import Distribution
from lambda_pkg.builder import ZIP_NAME, Plan, ensure, prepare
from lambda_pkg.errors import InternalError, UserError
from lambda_pkg.progress import Progress
from lambda_pkg.zipper import STORED, Entry

__all__ = [
    "Artifact",
    "DependencyFile",
    "DependencySet",
    "Plan",
    "ensure_artifact",
    "load_manifest",
    "place_artifact",
    "prepare",
    "resolve_dependencies",
]


@dataclass(frozen=True)
class DependencyFile:
    """One file of the dependencies, as it goes into site-packages (or the zip's root)."""

    name: str  # '/'-separated path relative to site-packages, e.g. "numpy/__init__.py"
    mode: int  # 0o644 or 0o755
    size: int  # bytes once read
    _entry: Entry = field(repr=False, compare=False)

    def read(self) -> bytes:
        """The file's bytes (inflated from the cache on demand, CRC-checked)."""
        e = self._entry
        data = bytes(e.data) if e.method == STORED else zlib.decompress(e.data, -15)
        if len(data) != e.size or zlib.crc32(data) != e.crc:
            raise InternalError(f"dependency cache entry {e.name} is damaged; clear the cache")
        return data


@dataclass(frozen=True)
class DependencySet:
    """The locked, audited dependencies for one target: what the zip ships."""

    runtime: str
    architecture: str
    lock: Path | None  # None: the requirements list nothing
    lock_sha256: str  # sha256 of the lock's pins and hashes ("" without a lock)
    distributions: tuple[Distribution, ...]
    files: tuple[DependencyFile, ...]  # sorted by name; .pyc for the target included


def resolve_dependencies(
    *,
    project_dir: Path | str = ".",
    requirements: Path | str | None = None,
    runtime: str = limits.DEFAULT_RUNTIME,
    architecture: str = limits.DEFAULT_ARCHITECTURE,
    cache_dir: Path | str | None = None,
    bundle_boto3: bool = False,
    bytecode: bool = True,
    pip_args: Sequence[str] = (),
) -> DependencySet:
    """The dependency files for `requirements` (an input file, whose lock for this target
    is used, or a lock itself; None: the Lambda's requirements) on this target.

    The same code path as the zip's dependencies: exactly the lock's wheels, hash-checked
    and policed (wheels.py), stripped, ELF-audited and secret-scanned, with bytecode for
    the target's Python, cached under cache_dir/deps keyed on the lock. bundle_boto3=True
    keeps boto3/botocore/s3transfer (a container has no runtime that provides them).
    """
    from lambda_pkg.builder import find_lock
    from lambda_pkg.deps import DepsSpec, ensure_segment
    from lambda_pkg.interpreters import find_interpreter
    from lambda_pkg.platforms import check_target, python_version
    from lambda_pkg.statcache import HashCache

    check_target(runtime, architecture)
    project = Path(project_dir).absolute()
    cache = Path(cache_dir).absolute() if cache_dir else project / ".build"
    lock, _, _ = find_lock(
        project, requirements, runtime, architecture, HashCache(cache / "hashes.json")
    )
    if lock is None or not lock.pins:
        return DependencySet(runtime, architecture, lock.path if lock else None, "", (), ())
    interp = find_interpreter(python_version(runtime)) if bytecode else None
    spec = DepsSpec(lock, runtime, architecture, bundle_boto3, interp, tuple(pip_args))
    if pip_args:
        from lambda_pkg.deps import check_pip_args

        check_pip_args(tuple(pip_args))
    segment = ensure_segment(spec, cache, Progress(False))
    files = tuple(DependencyFile(e.name, e.mode, e.size, e) for e in segment.entries)
    return DependencySet(runtime, architecture, lock.path, lock.digest, tuple(segment.dists), files)


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
    placed = art.moved(zip_path, manifest_path, layer_path)
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
    return stage(dst, lambda tmp: shutil.copyfile(src, tmp))
