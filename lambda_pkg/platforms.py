"""Lambda targets: the Python version, glibc ceiling and manylinux tags of each runtime."""

from __future__ import annotations

from lambda_pkg import limits
from lambda_pkg.errors import UserError

# Lambda's architecture names -> the machine name in wheel tags and `uname -m`.
MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}
# ELF e_machine values (elf.h: EM_X86_64, EM_AARCH64).
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
# The oldest manylinux glibc a wheel can claim per machine (aarch64 wheels start at 2.17).
_OLDEST_GLIBC_MINOR = {"x86_64": 5, "aarch64": 17}
# PEP 600 aliases for the legacy manylinux names, so wheels tagged only that way match too.
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def check_target(runtime: str, architecture: str) -> None:
    if runtime not in limits.RUNTIME_GLIBC:
        raise UserError(
            f"--runtime {runtime!r} is not supported; use one of "
            f"{', '.join(sorted(limits.RUNTIME_GLIBC))}"
        )
    if architecture not in limits.ARCHITECTURES:
        raise UserError(
            f"--architecture {architecture!r} is not supported; use "
            f"{' or '.join(limits.ARCHITECTURES)}"
        )


def python_version(runtime: str) -> str:
    """'python3.12' -> '3.12'."""
    return runtime.removeprefix("python")


def glibc_ceiling(runtime: str) -> tuple[int, int]:
    return limits.RUNTIME_GLIBC[runtime]


def describe(runtime: str, architecture: str) -> str:
    """The target as an error names it: what a wheel must be built for."""
    ceiling = ".".join(map(str, glibc_ceiling(runtime)))
    cp = "cp" + python_version(runtime).replace(".", "")
    return f"{runtime} on {architecture} ({cp}, manylinux glibc <= {ceiling})"


def manylinux_platforms(runtime: str, architecture: str) -> list[str]:
    """Every manylinux tag the runtime can load, newest glibc first (pip's preference
    order), up to the runtime's glibc: 2.26 on Amazon Linux 2, 2.34 on AL2023.

    pip does not expand a single --platform into the older tags it implies, so
    each one is passed; otherwise a wheel tagged only manylinux2014 would be missed.
    """
    machine = MACHINE[architecture]
    major, ceiling = glibc_ceiling(runtime)
    tags: list[str] = []
    for minor in range(ceiling, _OLDEST_GLIBC_MINOR[machine] - 1, -1):
        tags.append(f"manylinux_{major}_{minor}_{machine}")
        legacy = _LEGACY.get((major, minor))
        if legacy and (machine == "x86_64" or legacy == "manylinux2014"):
            tags.append(f"{legacy}_{machine}")
    return tags


# The manylinux levels uv's --python-platform knows (x86_64-manylinux_2_17, ...).
_UV_GLIBC_MINORS = (17, 28, 31, 32, 33, 34)


def uv_platform(runtime: str, architecture: str) -> str:
    """uv's --python-platform for the target: the newest manylinux level uv knows that
    the runtime's glibc can load (2_17 for Amazon Linux 2's 2.26, 2_34 for AL2023)."""
    _, ceiling = glibc_ceiling(runtime)
    minor = max(m for m in _UV_GLIBC_MINORS if m <= ceiling)
    return f"{MACHINE[architecture]}-manylinux_2_{minor}"
