"""The Lambda package's checks, run on the image's layers (lambda_pkg.audit, reused).

- Secrets: the code layer's files go through the same scan as the zip's sources.
  (A `.env` file is refused earlier, when the sources are collected.)
- ELF: every shared object in the dependency layer is checked for the target
  machine and a glibc no newer than the runtime's (the wheels are the Lambda's).
- Budget: the image must fit the task's ephemeral storage (Fargate's default, 20
  GiB, shared with anything the task writes); the report lists the largest
  distributions, as the Lambda build's does.
"""

from __future__ import annotations

from typing import Any

from lambda_pkg.audit import audit_elf, is_shared_object, scan_secrets
from lambda_pkg.budget import Distribution, mb, top_distributions
from lambda_pkg.errors import UserError

# Fargate's default ephemeral storage per task (21 GiB, of which the platform keeps
# about 1): image layers unpacked plus whatever the task writes.
IMAGE_MAX = 20 * 1024**3
WARN_FRACTION = 0.5


def _more(problems: list[str]) -> str:
    return f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""


def audit_code(files: list[tuple[str, bytes]]) -> None:
    hits = [h for name, data in files for h in scan_secrets(name, data)]
    if hits:
        raise UserError(
            f"secret scan: {hits[0]}{_more([str(h) for h in hits])}; remove it from the image "
            "(the broker keys belong in Secrets Manager)"
        )


def audit_libraries(files: list[tuple[str, bytes]], runtime: str, architecture: str) -> None:
    problems = [
        p
        for name, data in files
        if is_shared_object(name)
        and (p := audit_elf(name, data, runtime=runtime, architecture=architecture))
    ]
    if problems:
        raise UserError(f"audit failed: {problems[0]}{_more(problems)}")


def check_size(total: int, distributions: list[dict[str, Any]]) -> list[str]:
    """Raise when the image cannot fit; return warnings when it is getting close."""
    dists = [Distribution.from_json(d) for d in distributions]
    top = ", ".join(f"{d.name} {mb(d.unzipped)}" for d in top_distributions(dists, 3))
    if total > IMAGE_MAX:
        raise UserError(
            f"image too large: {total:,} bytes unpacked, over the task's {IMAGE_MAX:,}-byte "
            f"ephemeral storage" + (f"; largest: {top}" if top else "") + "; trim requirements"
        )
    if total > IMAGE_MAX * WARN_FRACTION:
        return [f"the image unpacks to {mb(total)}, over half the task's ephemeral storage"]
    return []
