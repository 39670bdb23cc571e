"""OCI image layouts on disk (image-spec "image-layout"): read one, write one.

  DIR/oci-layout       {"imageLayoutVersion": "1.0.0"}
  DIR/index.json       names the image's manifest
  DIR/blobs/sha256/... every blob the manifest reaches

Writing: the blobs first (hard links from the builder's store when possible), the
index last, through a temp file and os.replace; a reader therefore never finds an
index that names a blob not yet there, and a failed write leaves the previous image
in DIR readable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.artifact import write_json_atomic
from lambda_pkg.image import oci
from lambda_pkg.image.store import BlobStore, link_or_copy

LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
REF_NAME = "org.opencontainers.image.ref.name"


class LayoutError(ValueError):
    """DIR is not a usable OCI image layout; the message says what is missing."""


@dataclass(frozen=True)
class LayoutImage:
    """One image read from a layout: its manifest's bytes and where its blobs are."""

    directory: Path
    manifest_raw: bytes
    digest: str

    def blob(self, digest: str) -> Path:
        algo, _, hexdigest = digest.partition(":")
        return self.directory / "blobs" / algo / hexdigest


def write_layout(
    directory: Path,
    manifest: oci.Descriptor,
    blobs: Iterable[str],
    store: BlobStore,
    ref_name: str | None = None,
) -> None:
    for digest in blobs:
        link_or_copy(store.path(digest), directory / "blobs" / digest.replace(":", "/"))
    link_or_copy(
        store.path(manifest.digest), directory / "blobs" / manifest.digest.replace(":", "/")
    )
    layout = directory / "oci-layout"
    if not layout.is_file():
        write_json_atomic(layout, LAYOUT_FILE)
    entry = manifest.to_json()
    if ref_name:
        entry["annotations"] = {REF_NAME: ref_name}
    write_json_atomic(
        directory / "index.json",
        {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": [entry]},
    )


def read_layout(directory: Path, architecture: str) -> LayoutImage:
    """The image in DIR for the architecture; raises LayoutError naming what is wrong."""
    if not (directory / "oci-layout").is_file() or not (directory / "index.json").is_file():
        raise LayoutError(f"{directory} is not an OCI image layout (no oci-layout or index.json)")
    image = LayoutImage(directory, b"", "")
    try:
        raw = (directory / "index.json").read_bytes()
        entries = oci.parse_index(raw, f"{directory}/index.json")
        if not entries:
            raise LayoutError(f"{directory}/index.json names no image")
        if len(entries) == 1 and not entries[0].architecture:
            desc = entries[0].descriptor
        else:
            desc = oci.pick_platform(entries, architecture, f"{directory}/index.json")
        data = image.blob(desc.digest).read_bytes()
        if desc.media_type == oci.INDEX:  # an index inside the layout's index
            nested = oci.parse_index(data, desc.digest)
            desc = oci.pick_platform(nested, architecture, desc.digest)
            data = image.blob(desc.digest).read_bytes()
    except OSError as exc:
        raise LayoutError(f"{directory}: cannot read {exc.filename}: {exc.strerror}") from None
    except oci.FormatError as exc:
        raise LayoutError(str(exc)) from None
    if oci.sha256_digest(data) != desc.digest:
        raise LayoutError(f"{directory}: manifest {desc.digest} does not match its content")
    return LayoutImage(directory, data, desc.digest)
