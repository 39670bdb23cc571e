"""The local package: checked (no network) and hashed once before anything is sent.

The one read gives the sha256 for the metadata and, for a file that goes up in
parts, each part's digest: the skip check and the verification need both, and a
second pass over a 60 MB file would cost more than the whole unchanged re-upload.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg import BUILDER_VERSION, limits
from lambda_pkg.artifact import find_manifest, hex_to_b64, load_manifest
from lambda_pkg.errors import UserError
from ops.checksums import (
    MULTIPART_THRESHOLD,
    PART_SIZE,
    PartLayout,
    b64,
    composite_sha256,
    hash_file,
    layout_for,
)


@dataclass(frozen=True)
class LocalPackage:
    path: Path
    size: int
    sha256: str
    unzipped_size: int
    metadata: dict[str, str]  # S3 object metadata, sent as is
    layout: PartLayout
    manifest: Path | None = None
    part_digests: tuple[bytes, ...] = ()

    @property
    def sha256_b64(self) -> str:
        return hex_to_b64(self.sha256)

    @property
    def checksum(self) -> str:
        """What S3 will store as ChecksumSHA256 for this upload."""
        if self.layout.multipart:
            return composite_sha256(list(self.part_digests))
        return self.sha256_b64

    def part_checksum(self, number: int) -> str | None:
        """Part `number`'s (1-based) ChecksumSHA256, as S3 acknowledges it."""
        if 1 <= number <= len(self.part_digests):
            return b64(self.part_digests[number - 1])
        return None


def inspect_package(
    zip_path: Path,
    *,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    part_size: int = PART_SIZE,
    handler_file: str = limits.DEFAULT_HANDLER_FILE,
    runtime: str | None = None,
    architecture: str | None = None,
    manifest: Path | None = None,
) -> LocalPackage:
    """Check the zip (no network) and derive its metadata. With a manifest the
    metadata is the builder's own (`Artifact.metadata()`); without, it is computed
    here from the file's sha256 and the runtime/architecture flags. The threshold
    and part size say how it will be sent (see checksums.layout_for)."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise UserError(
            f"ZIP {zip_path}: no such file; build it with '.venv/bin/python -m lambda_pkg "
            "build' or check the path"
        )
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(
            f"ZIP {zip_path}: not a zip archive ({exc}); pass the package built by "
            "'.venv/bin/python -m lambda_pkg build'"
        ) from None
    unzipped = sum(info.file_size for info in infos)
    if unzipped > limits.UNZIPPED_MAX:
        raise UserError(
            f"ZIP {zip_path}: unzipped size {unzipped:,} bytes exceeds Lambda's limit of "
            f"{limits.UNZIPPED_MAX:,}; move dependencies to a layer (dependencyLayer: true) "
            "or drop unused ones"
        )
    if handler_file not in {info.filename for info in infos}:
        raise UserError(
            f"ZIP {zip_path}: handler file {handler_file} is not in the package; rebuild it, "
            "or pass --handler-file PATH if the handler lives elsewhere"
        )
    size = zip_path.stat().st_size
    layout = layout_for(size, threshold=multipart_threshold, part_size=part_size)
    # Part digests only for a file that goes up in parts: a single PUT needs none.
    sha, digests = hash_file(zip_path, layout.part_size or size or 1, parts=layout.multipart)
    manifest = manifest or find_manifest(zip_path)
    if manifest is not None:
        # check=False: the zip was hashed just above, once, and is compared here.
        artifact = load_manifest(manifest, check=False)
        if artifact.path.resolve() != zip_path.resolve():
            raise UserError(
                f"--manifest {manifest}: it describes {artifact.path}, not {zip_path}; "
                "pass the manifest written beside this zip"
            )
        if artifact.sha256 != sha:
            raise UserError(
                f"{zip_path}: sha256 {sha} does not match its manifest {manifest} "
                f"({artifact.sha256}); the file changed after the build: rebuild it with "
                "'.venv/bin/python -m lambda_pkg build'"
            )
        _check_flag("--runtime", runtime, artifact.runtime, manifest)
        _check_flag("--architecture", architecture, artifact.architecture, manifest)
        metadata = artifact.metadata()
    else:
        metadata = {
            "sha256": sha,
            "runtime": runtime or limits.DEFAULT_RUNTIME,
            "architecture": architecture or limits.DEFAULT_ARCHITECTURE,
            "builder-version": BUILDER_VERSION,
        }
    return LocalPackage(
        path=zip_path,
        size=size,
        sha256=sha,
        unzipped_size=unzipped,
        metadata=metadata,
        layout=layout,
        manifest=manifest,
        part_digests=tuple(digests),
    )


def _check_flag(flag: str, given: str | None, built: str, manifest: Path) -> None:
    if given is not None and given != built:
        raise UserError(
            f"{flag} {given} contradicts the manifest {manifest} ({built}); drop the flag "
            f"or rebuild the package for {given}"
        )
