"""The size budget: Lambda's limits, the largest distributions and what to do about them.

Limits are read from lambda_pkg.limits at call time (tests lower them to check the
thresholds with small files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lambda_pkg import limits
from lambda_pkg.errors import UserError

BOTO = ("boto3", "botocore", "s3transfer")
# A dependency set this large makes a separate layer worth it for code-only deploys.
LAYER_WORTH_IT = 1024 * 1024


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"


@dataclass
class Distribution:
    """One installed distribution and its share of the package."""

    name: str
    version: str
    wheel: str
    wheel_sha256: str
    files: int = 0
    unzipped: int = 0  # bytes, bytecode included
    zipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Distribution:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Sizes:
    zipped: int
    unzipped: int
    layer_zipped: int = 0
    layer_unzipped: int = 0
    deps_zipped: int = 0  # the dependencies' share of the zips
    code_zipped: int = 0


@dataclass
class Report:
    sizes: Sizes
    distributions: list[Distribution] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        s = self.sizes
        return {
            "zipped": s.zipped,
            "unzipped": s.unzipped,
            "layer_zipped": s.layer_zipped,
            "layer_unzipped": s.layer_unzipped,
            "unzipped_total": s.unzipped + s.layer_unzipped,
            "direct_upload_limit": limits.DIRECT_UPLOAD_ZIPPED_MAX,
            "unzipped_limit": limits.UNZIPPED_MAX,
            "recommendations": self.recommendations,
            "warnings": self.warnings,
        }


def top_distributions(dists: Sequence[Distribution], n: int = 10) -> list[Distribution]:
    return sorted(dists, key=lambda d: (-d.unzipped, d.name))[:n]


def check_unzipped(total: int, dists: Sequence[Distribution]) -> None:
    """Over the unzipped limit is an error: Lambda would refuse the function."""
    if total > limits.UNZIPPED_MAX:
        # A caller still passing the manifest's JSON (infra/rehearsal/run.py until it
        # reads Artifact.details) gets the same message, not an AttributeError.
        dists = [Distribution.from_json(d) if isinstance(d, dict) else d for d in dists]
        top = ", ".join(f"{d.name} {mb(d.unzipped)}" for d in top_distributions(dists, 3))
        raise UserError(
            f"package too large: {total:,} bytes unzipped (function plus layers), over Lambda's "
            f"{limits.UNZIPPED_MAX:,}-byte limit"
            + (f"; largest: {top}" if top else "")
            + "; trim requirements or move a dependency to a container image"
        )


def assess(
    sizes: Sizes,
    dists: Sequence[Distribution],
    *,
    architecture: str,
    layer: bool,
) -> Report:
    """Check the budget (raising UserError when over the unzipped limit) and explain it."""
    check_unzipped(sizes.unzipped + sizes.layer_unzipped, dists)
    report = Report(sizes=sizes, distributions=top_distributions(dists))
    rec, warn = report.recommendations, report.warnings
    direct = limits.DIRECT_UPLOAD_ZIPPED_MAX
    for label, zipped in (("the package", sizes.zipped), ("the layer", sizes.layer_zipped)):
        if zipped > direct:
            rec.append(
                f"needs S3 deployment: {label} is {mib(zipped)} zipped, over the {mib(direct)} "
                "limit for a direct upload: deploy it from S3, as the Pulumi stack does "
                "(by hand: scripts/upload_lambda_to_s3.sh)"
            )
        elif zipped > direct * limits.WARN_FRACTION:
            warn.append(
                f"{label} is {mib(zipped)} zipped, close to the {mib(direct)} direct-upload limit"
            )
    total = sizes.unzipped + sizes.layer_unzipped
    if total > limits.UNZIPPED_MAX * limits.WARN_FRACTION:
        warn.append(
            f"{total:,} bytes unzipped is over {limits.WARN_FRACTION:.0%} of the "
            f"{limits.UNZIPPED_MAX:,}-byte limit"
        )
    boto = [d for d in dists if d.name in BOTO]
    if boto:
        saved = sum(d.unzipped for d in boto)
        rec.append(
            f"leave boto3 out: the runtime provides boto3/botocore/s3transfer; building without "
            f"--bundle-boto3 saves {mb(saved)} unzipped"
        )
    if not layer and sizes.deps_zipped > LAYER_WORTH_IT:
        rec.append(
            f"use the dependency layer (--layer, stack config dependencyLayer): a code-only "
            f"deploy then uploads {mib(sizes.code_zipped)} instead of {mib(sizes.zipped)}"
        )
    if architecture == "x86_64":
        rec.append(
            "arm64: Graviton functions cost about 20% less per GB-second; build with "
            "--architecture arm64 to check that every dependency ships an aarch64 wheel"
        )
    return report
