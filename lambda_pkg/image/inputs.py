"""The one adapter between the image builder and the Lambda packager.

Everything the image takes from the Lambda build passes through here: the project's
sources (the zip's own selection), the requirements and their lock for the target,
the target interpreter and its bytecode, and the locked dependency files
(`lambda_pkg.api.resolve_dependencies`: the same hash-checked, policed, audited segment
the zip ships, with boto3 kept, since a container has no runtime that provides it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambda_pkg import interpreters as _interpreters
from lambda_pkg import platforms as _platforms
from lambda_pkg import reqfile as _reqfile
from lambda_pkg import sources as _sources

# The service's own requirements (the Lambda's plus the broker SDK and boto3); the
# Lambda's file is the fallback while a checkout has no service file yet.
from lambda_pkg.lock import SERVICE_REQUIREMENTS
from lambda_pkg.progress import Progress

__all__ = [
    "SERVICE_REQUIREMENTS",
    "Dependencies",
    "Interpreter",
    "Requirements",
    "Source",
    "check_target",
    "collect_sources",
    "dependency_key",
    "find_requirements",
    "fingerprint",
    "python_version",
    "resolve_dependencies",
]

Source = _sources.SourceFile
Requirements = _reqfile.Requirements
Interpreter = _interpreters.Interpreter
check_target = _platforms.check_target
python_version = _platforms.python_version
collect_sources = _sources.collect_sources


def fingerprint(sources: Sequence[Source]) -> list[list[object]]:
    """Path, mode and content hash of each source: what the code layer's key sees
    (never mtimes or the checkout path)."""
    return [[s.arcname, s.mode, hashlib.sha256(s.read()).hexdigest()] for s in sources]


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


def dependency_key(
    reqs: Requirements,
    runtime: str,
    architecture: str,
    interpreter: Interpreter | None,
    pip_args: Sequence[str],
) -> str:
    """The dependency layer's key: the lock's pins and hashes for this target (a stale
    or missing lock is the packager's one-line error), the interpreter and pip options."""
    from lambda_pkg.deps import DepsSpec
    from lambda_pkg.lock import lock_for

    lock = lock_for(reqs, runtime, architecture)
    return DepsSpec(lock, runtime, architecture, True, interpreter, tuple(pip_args)).key()


@dataclass(frozen=True)
class Dependencies:
    files: list[tuple[str, int, bytes]]  # (path in site-packages, mode, content)
    distributions: list[dict[str, Any]]  # name, version, files, unzipped... per wheel


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
    """The locked wheels for the target, stripped and audited as for the Lambda."""
    from lambda_pkg.api import resolve_dependencies as resolve

    progress.step(f"resolving the dependencies from the lock of {reqs.path.name}")
    deps = resolve(
        project_dir=reqs.path.parent, requirements=reqs.path, runtime=runtime,
        architecture=architecture, cache_dir=cache_dir, bundle_boto3=True,
        bytecode=interpreter is not None, pip_args=pip_args,
    )  # fmt: skip
    return Dependencies(
        files=[(f.name, f.mode, f.read()) for f in deps.files],
        distributions=[d.to_json() for d in deps.distributions],
    )
