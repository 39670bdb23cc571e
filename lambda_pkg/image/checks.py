"""The image's budget. Its other checks are the Lambda package's own, run where the
zip's run: the code layer's files go through the same secret scan as the zip's
sources (audit.refuse_secrets; a `.env` file is refused when the sources are
collected), and every shared object of the dependency layer was ELF-audited for the
target machine and glibc when resolve_dependencies built its segment.

- Budget: the image must fit the task's ephemeral storage (Fargate's default, 20
  GiB, shared with anything the task writes); the report lists the largest
  distributions, as the Lambda build's does.
"""

from __future__ import annotations

from typing import Any

from lambda_pkg.budget import Distribution, mb, top_distributions
from lambda_pkg.errors import UserError

# Fargate's default ephemeral storage per task (21 GiB, of which the platform keeps
# about 1): image layers unpacked plus whatever the task writes.
IMAGE_MAX = 20 * 1024**3
WARN_FRACTION = 0.5


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
