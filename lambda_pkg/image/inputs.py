"""The one adapter between the image builder and the Lambda packager's internals.

Everything the image takes from the Lambda build passes through here: the project's
sources (the zip's own selection), the requirements file, the target interpreter
and its bytecode, and the resolved dependency wheels (the same segment the Lambda
build caches, resolved for the same platform tags). The packager's dependency
resolution is being reworked behind `lambda_pkg.api.resolve_dependencies`; when it
lands, only this module changes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambda_pkg import interpreters as _interpreters
from lambda_pkg import platforms as _platforms
from lambda_pkg import reqfile as _reqfile
from lambda_pkg import sources as _sources
from lambda_pkg.errors import UserError
from lambda_pkg.progress import Progress

if TYPE_CHECKING:  # pip's machinery loads only when dependencies are resolved
    from lambda_pkg.deps import DepsSpec

# The service's own requirements (the Lambda's plus the broker SDK); the Lambda's
# file is the fallback while a checkout has no service file yet.
SERVICE_REQUIREMENTS = "requirements-service.txt"

__all__ = [
    "Dependencies",
    "Interpreter",
    "Requirements",
    "Source",
    "check_target",
    "collect_sources",
    "compile_sources",
    "dependency_key",
    "find_interpreter",
    "find_requirements",
    "fingerprint",
    "pyc_name",
    "python_version",
    "resolve_dependencies",
]

Source = _sources.SourceFile
Requirements = _reqfile.Requirements
Interpreter = _interpreters.Interpreter
check_target = _platforms.check_target
python_version = _platforms.python_version
collect_sources = _sources.collect_sources
fingerprint = _sources.fingerprint


def compile_sources(interp: Interpreter, items: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
    """.pyc bytes (unchecked-hash) for each (name, source), by the target interpreter."""
    from lambda_pkg.bytecode import compile_sources as compile_all

    return compile_all(interp, items)


def pyc_name(py_name: str, cache_tag: str) -> str:
    from lambda_pkg.bytecode import pyc_name as name

    return name(py_name, cache_tag)


def find_interpreter(runtime: str) -> Interpreter | None:
    return _interpreters.find_interpreter(python_version(runtime))


def find_requirements(
    project_dir: Path, explicit: Path | str | None
) -> tuple[Requirements | None, str | None]:
    """requirements-service.txt, else the Lambda's own file (and a note saying so)."""
    if explicit is None and (project_dir / SERVICE_REQUIREMENTS).is_file():
        explicit = project_dir / SERVICE_REQUIREMENTS
    reqs, note = _reqfile.find_requirements(project_dir, explicit)
    if explicit is None and reqs is not None:
        note = f"no {SERVICE_REQUIREMENTS}: using {reqs.path.name}"
    return reqs, note


def _spec(
    reqs: Requirements,
    runtime: str,
    architecture: str,
    interpreter: Interpreter | None,
    pip_args: Sequence[str],
) -> DepsSpec:
    from lambda_pkg.deps import DepsSpec

    # A container has no runtime-provided boto3, unlike Lambda: bundle it.
    return DepsSpec(
        requirements=reqs,
        runtime=runtime,
        architecture=architecture,
        bundle_boto3=True,
        interpreter=interpreter,
        pip_args=tuple(pip_args),
    )


def dependency_key(
    reqs: Requirements,
    runtime: str,
    architecture: str,
    interpreter: Interpreter | None,
    pip_args: Sequence[str],
) -> str:
    return _spec(reqs, runtime, architecture, interpreter, pip_args).key()


@dataclass(frozen=True)
class Dependencies:
    files: list[tuple[str, int, bytes]]  # (path in site-packages, mode, content)
    distributions: list[dict[str, Any]]  # name, version, files, unzipped... per wheel
    notes: list[str]


def resolve_dependencies(
    *,
    reqs: Requirements,
    runtime: str,
    architecture: str,
    interpreter: Interpreter | None,
    pip_args: Sequence[str],
    cache_dir: Path,
    progress: Progress,
) -> Dependencies:
    """The wheels for the target, stripped and audited as for the Lambda, unpacked."""
    spec = _spec(reqs, runtime, architecture, interpreter, pip_args)
    from lambda_pkg.deps import ensure_segment

    segment = ensure_segment(spec, cache_dir, progress)
    files = []
    for e in segment.entries:
        data = bytes(e.data)
        if e.method != 0:  # deflate, as stored in the wheel or by the packager
            data = zlib.decompress(data, -15)
        if zlib.crc32(data) != e.crc:
            raise UserError(f"{e.name} fails its CRC check in the cache; delete {cache_dir}/deps")
        files.append((e.name, e.mode, data))
    return Dependencies(files=files, distributions=segment.dists, notes=list(segment.notes))
