"""The built artifact and its manifest: what every other part (uploader, Pulumi
program, rehearsal) knows about a package without rebuilding it.

The manifest is JSON beside the zip. The fields of Artifact are the contract; the
builder's report (files, sources, distributions, the size report, notes) is a
BuildDetails record, written into the same JSON object as flat keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lambda_pkg.budget import Distribution
from lambda_pkg.errors import UserError

MANIFEST_SCHEMA = 1
_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(data: Any) -> str:
    """The hex sha256 of data as JSON, keys sorted: a cache key no dict order changes."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def hex_to_b64(hex_digest: str) -> str:
    """Lambda's CodeSha256 and Pulumi's source_code_hash: base64 of the raw digest."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


@dataclass(frozen=True)
class Bytecode:
    python: str  # the interpreter that compiled it, e.g. "3.12.3"
    cache_tag: str
    files: int


@dataclass(frozen=True)
class BuildDetails:
    """What the builder reports about a zip beyond the contract's fields."""

    files: int = 0
    prefix: str | None = None  # a layer's entries live under it ("python/")
    sources: tuple[str, ...] = ()
    requirements: str | None = None
    lock: str | None = None
    bytecode: Bytecode | None = None
    distributions: tuple[Distribution, ...] = ()
    largest_distributions: tuple[Distribution, ...] = ()
    report: dict[str, Any] = field(default_factory=dict)  # budget.Report.to_json()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.prefix is not None:  # a layer
            return {"files": self.files, "prefix": self.prefix}
        return {
            "files": self.files,
            "sources": list(self.sources),
            "requirements": self.requirements,
            "lock": self.lock,
            "bytecode": asdict(self.bytecode) if self.bytecode else None,
            "distributions": [d.to_json() for d in self.distributions],
            "largest_distributions": [d.to_json() for d in self.largest_distributions],
            "report": self.report,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildDetails:
        def dists(key: str) -> tuple[Distribution, ...]:
            items = data.get(key) or []
            return tuple(Distribution.from_json(d) for d in items if isinstance(d, dict))

        bytecode = data.get("bytecode")
        return cls(
            files=int(data.get("files") or 0),
            prefix=data.get("prefix"),
            sources=tuple(data.get("sources") or ()),
            requirements=data.get("requirements"),
            lock=data.get("lock"),
            bytecode=Bytecode(**bytecode) if isinstance(bytecode, dict) else None,
            distributions=dists("distributions"),
            largest_distributions=dists("largest_distributions"),
            report=data.get("report") or {},
            notes=tuple(data.get("notes") or ()),
        )


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    size: int
    unzipped_size: int
    input_hash: str
    runtime: str
    architecture: str
    builder_version: str
    manifest_path: Path
    layer: Artifact | None = None
    details: BuildDetails = field(default_factory=BuildDetails, compare=False, repr=False)

    @property
    def sha256_b64(self) -> str:
        return hex_to_b64(self.sha256)

    def moved(self, path: Path, manifest_path: Path, layer_path: Path) -> Artifact:
        """The same artifact with its zip, its layer's zip and its manifest elsewhere."""
        layer = self.layer and replace(self.layer, path=layer_path, manifest_path=manifest_path)
        return replace(self, path=path, manifest_path=manifest_path, layer=layer)

    def metadata(self) -> dict[str, str]:
        """S3 object metadata: content-derived only, so an unchanged build never
        looks changed to `pulumi up` (no timestamps, no git sha)."""
        return {
            "sha256": self.sha256,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "builder-version": self.builder_version,
        }

    def to_json(self) -> dict[str, Any]:
        data = {
            **self.details.to_json(),
            "schema": MANIFEST_SCHEMA,
            "zip": self.path.name,
            "sha256": self.sha256,
            "sha256_b64": self.sha256_b64,
            "size": self.size,
            "unzipped_size": self.unzipped_size,
            "input_hash": self.input_hash,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "builder_version": self.builder_version,
        }
        if self.layer is not None:
            data["layer"] = self.layer.to_json()
        return data


def stage(path: Path, write: Callable[[Path], object]) -> Path:
    """A temp file beside path that write(temp) fills, made 0644, and returned; the
    caller os.replace()s it into place, or unlinks it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        # mkstemp makes the file 0600; a build's outputs and cache files are as readable
        # as the zip (0644, whatever the umask): none holds a secret (the scan refuses keys).
        os.chmod(tmp, 0o644)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def stage_json(path: Path, data: Any) -> Path:
    """stage() with data as indented JSON."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return stage(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file in the same directory, then os.replace,
    so a reader never sees a half-written file."""
    _put(stage_json(path, data), path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """write_json_atomic for bytes."""
    _put(stage(path, lambda tmp: tmp.write_bytes(data)), path)


def _put(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_manifest(artifact: Artifact) -> None:
    write_json_atomic(artifact.manifest_path, artifact.to_json())


_REQUIRED = ("zip", "sha256", "size", "unzipped_size", "runtime", "architecture")
_REBUILD = "rebuild it with 'python -m lambda_pkg build'"
_HEX = frozenset("0123456789abcdefABCDEF")


def _check_types(data: dict[str, Any], manifest_path: Path, prefix: str) -> None:
    """Every field read here has the type the builder writes: a hand-edited or
    foreign manifest is a one-line UserError, not a TypeError deep in a caller."""

    def bad(key: str, expected: str) -> UserError:
        value = repr(data[key])
        value = value if len(value) <= 60 else value[:57] + "..."
        return UserError(
            f"{manifest_path}: manifest field {prefix}{key} is {value}, expected {expected}; "
            f"{_REBUILD}"
        )

    for key in ("zip", "runtime", "architecture"):
        if not isinstance(data[key], str) or not data[key] or "\0" in data[key]:
            raise bad(key, "a non-empty string")
    sha = data["sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or not _HEX.issuperset(sha):
        raise bad("sha256", "64 hex digits")
    for key in ("size", "unzipped_size"):
        value = data[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(key, "a whole number of bytes")
    for key in ("input_hash", "builder_version"):
        if key in data and not isinstance(data[key], str):
            raise bad(key, "a string")
    if data.get("layer") and not isinstance(data["layer"], dict):
        raise bad("layer", "an object describing the layer zip")


def _from_json(
    data: dict[str, Any], manifest_path: Path, *, check: bool, prefix: str = ""
) -> Artifact:
    missing = [prefix + k for k in _REQUIRED if k not in data]
    if missing:
        raise UserError(f"{manifest_path}: manifest is missing {', '.join(missing)}; {_REBUILD}")
    _check_types(data, manifest_path, prefix)
    zip_path = manifest_path.parent / data["zip"]
    if check:
        if not zip_path.is_file():
            raise UserError(f"{manifest_path}: its package {zip_path} does not exist; {_REBUILD}")
        actual = sha256_file(zip_path)
        if actual != data["sha256"]:
            raise UserError(
                f"{zip_path}: sha256 {actual} does not match its manifest ({data['sha256']}); "
                f"the file changed after the build: {_REBUILD}"
            )
    layer = data.get("layer")
    known = set(_REQUIRED) | {"input_hash", "builder_version", "layer", "sha256_b64", "schema"}
    return Artifact(
        path=zip_path,
        sha256=data["sha256"],
        size=data["size"],
        unzipped_size=data["unzipped_size"],
        input_hash=data.get("input_hash", ""),
        runtime=data["runtime"],
        architecture=data["architecture"],
        builder_version=data.get("builder_version", ""),
        manifest_path=manifest_path,
        layer=_from_json(layer, manifest_path, check=check, prefix="layer.") if layer else None,
        details=BuildDetails.from_json({k: v for k, v in data.items() if k not in known}),
    )


def read_manifest_beside(zip_path: Path | str) -> tuple[Path, dict[str, Any]] | None:
    """The manifest a build wrote beside this zip, if any, with its JSON:
    `<stem>.manifest.json` (what `build --output` writes), then `manifest.json`. A
    candidate counts only when it is a JSON object whose "zip" names this very file."""
    zip_path = Path(zip_path)
    name = zip_path.name
    stem = name[:-4] if name.endswith(".zip") else name
    for candidate in (
        zip_path.with_name(f"{stem}.manifest.json"),
        zip_path.with_name("manifest.json"),
    ):
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("zip") == name:
            return candidate, data
    return None


def find_manifest(zip_path: Path | str) -> Path | None:
    """The path `read_manifest_beside` finds, for callers that load it themselves."""
    found = read_manifest_beside(zip_path)
    return found[0] if found else None


def load_manifest(path: Path | str, *, check: bool = True) -> Artifact:
    """Read a manifest written by a previous build. With check=True (the default)
    the zip must exist and still hash to the manifest's sha256."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such manifest; build the package first with 'python -m lambda_pkg build'"
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable manifest JSON ({exc}); rebuild it") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a manifest (expected a JSON object); rebuild it")
    try:
        return _from_json(data, path, check=check)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # _check_types covers the fields read; this is the net for anything it misses.
        raise UserError(f"{path}: not a valid manifest ({exc!r}); {_REBUILD}") from None
