"""Fixtures for the packager's tests: a small project, and wheels made on the spot
(a wheel is a zip with a dist-info directory), served to pip with
--no-index --find-links, so no test needs the network."""

from __future__ import annotations

import base64
import hashlib
import struct
import sys
import zipfile
from pathlib import Path

import pytest

from lambda_pkg.api import ensure_artifact
from lambda_pkg.lock import is_lock, lock_project
from lambda_pkg.reqfile import DEFAULT_NAMES

HOST_RUNTIME = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0",
    files: dict[str, bytes | str] | None = None,
    *,
    tag: str = "py3-none-any",
    requires: tuple[str, ...] = (),
    executable: tuple[str, ...] = (),
) -> Path:
    """Write name-version-tag.whl into directory, with METADATA, WHEEL and RECORD."""
    files = dict(
        files if files is not None else {f"{name}/__init__.py": f"VERSION = {version!r}\n"}
    )
    dist_info = f"{name}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    files[f"{dist_info}/METADATA"] = "\n".join(meta) + "\n"
    files[f"{dist_info}/WHEEL"] = f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n"
    record = []
    for path, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, content in files.items():
            info = zipfile.ZipInfo(member, date_time=(2024, 5, 6, 7, 8, 10))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100755 if member in executable else 0o100644) << 16
            zf.writestr(info, content)
    return path


def make_elf(
    machine: int = 62, versions: tuple[str, ...] = ("GLIBC_2.17",), *, sections: bool = True
) -> bytes:
    """A minimal little-endian ELF64 shared object whose version-needs table asks
    libc.so.6 for `versions`. With sections=False it has no section headers, and
    the table is only reachable through the dynamic segment (DT_VERNEED)."""
    strtab = b"\0libc.so.6\0" + b"".join(v.encode() + b"\0" for v in versions)
    name_offsets = []
    pos = len(b"\0libc.so.6\0")
    for v in versions:
        name_offsets.append(pos)
        pos += len(v) + 1
    verneed = struct.pack("<HHIII", 1, len(versions), 1, 16, 0)
    for i, off in enumerate(name_offsets):
        nxt = 16 if i < len(versions) - 1 else 0
        verneed += struct.pack("<IHHII", 0, 0, 2 + i, off, nxt)
    strtab_off = 64 + 2 * 56  # after the ELF header and two program headers
    verneed_off = strtab_off + len(strtab)
    dyn_off = verneed_off + len(verneed)
    dynamic = struct.pack("<qQqQqQqQ", 5, strtab_off, 0x6FFFFFFE, verneed_off, 0x6FFFFFFF, 1, 0, 0)
    body_end = dyn_off + len(dynamic)
    shoff = body_end if sections else 0
    shnum = 3 if sections else 0
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header += struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 64, shoff, 0, 64, 56, 2, 64, shnum, 0)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, body_end, body_end, 0x1000)
    phdrs += struct.pack(
        "<IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, len(dynamic), len(dynamic), 8
    )
    data = header + phdrs + strtab + verneed + dynamic
    if sections:
        null = b"\0" * 64
        dynstr = struct.pack(
            "<IIQQQQIIQQ", 0, 3, 2, strtab_off, strtab_off, len(strtab), 0, 0, 1, 0
        )
        vn = struct.pack(
            "<IIQQQQIIQQ", 0, 0x6FFFFFFE, 2, verneed_off, verneed_off, len(verneed), 1, 1, 8, 0
        )
        data += null + dynstr + vn
    return data


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Wheels for the tests: a pure one with junk to strip, a native one, boto3 & co."""
    d = tmp_path_factory.mktemp("wheelhouse")
    make_wheel(
        d,
        "tinydep",
        "1.0",
        {
            "tinydep/__init__.py": "from tinydep.core import VALUE\n",
            "tinydep/core.py": "VALUE = 42\n",
            "tinydep/testing/__init__.py": "HELPER = 1\n",  # a real module: stays
            "tinydep/tests/__init__.py": "",
            "tinydep/tests/test_core.py": "def test(): pass\n",
            "tinydep/__pycache__/core.cpython-39.pyc": b"\x00junk",
            "tinydep/docs/guide.txt": "how to\n",
            "tinydep/assets.data/table.csv": "a,b\n",  # not the wheel's .data directory
            "tinydep/bin_tool.sh": "#!/bin/sh\n",
            "tinydep-1.0.data/scripts/tinydep-cli": "#!python\n",
            "tinydep-1.0.data/purelib/tinydep_extra.py": "EXTRA = True\n",
        },
        requires=("leafdep>=2",),
        executable=("tinydep/bin_tool.sh",),
    )
    make_wheel(
        d,
        "leafdep",
        "2.0",
        {
            "leafdep/__init__.py": "from . import tests\n",  # imports its tests: they stay
            "leafdep/tests/__init__.py": "OK = True\n",
        },
    )
    make_wheel(d, "leafdep", "1.0")  # too old for tinydep: pinning it is a conflict
    make_wheel(d, "boto3", "1.0", requires=("botocore",))
    make_wheel(d, "botocore", "1.0")
    make_wheel(d, "usesboto", "1.0", requires=("boto3",))
    tag = "cp312-cp312-manylinux_2_17_x86_64"
    make_wheel(d, "fastext", "1.0", {"fastext/_speed.so": make_elf(62, ("GLIBC_2.17",))}, tag=tag)
    make_wheel(d, "armext", "1.0", {"armext/_speed.so": make_elf(183, ("GLIBC_2.17",))}, tag=tag)
    make_wheel(d, "newglibc", "1.0", {"newglibc/_x.so": make_elf(62, ("GLIBC_2.38",))}, tag=tag)
    make_wheel(d, "onlyarm", "1.0", tag="cp312-cp312-manylinux_2_17_aarch64")
    return d


def write(path: Path, text: str | bytes, mode: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


def make_project(root: Path, requirements: str | None = "tinydep\n") -> Path:
    write(root / "aws" / "__init__.py", "")
    write(
        root / "aws" / "market_data_fetcher.py", "def handler(event, context):\n    return 'ok'\n"
    )
    write(root / "backend" / "__init__.py", "")
    write(root / "backend" / "core.py", "def run():\n    return 1\n")
    write(root / "backend" / "data" / "symbols.json", '["SPY"]\n')
    write(root / "bot.py", "import backend.core\n")
    if requirements is not None:
        write(root / "requirements_Version9.txt", requirements)
    return root


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "proj")


def offline(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse)]


def lock(
    project: Path,
    wheelhouse: Path,
    runtime: str = HOST_RUNTIME,
    architecture: str = "x86_64",
    requirements: Path | None = None,
):
    """Lock the project's requirements for one target from the test wheelhouse (uv)."""
    return lock_project(
        project,
        requirements=[Path(requirements)] if requirements else (),
        targets=[(runtime, architecture)],
        index_args=offline(wheelhouse),
    )


def has_requirements(project: Path, requirements) -> bool:
    if requirements is not None:
        return not is_lock(Path(requirements))
    return any((project / n).is_file() for n in DEFAULT_NAMES)


@pytest.fixture
def build(wheelhouse):
    """ensure_artifact against the test wheelhouse, the project's own .build cache,
    and the host's Python version as the runtime (so bytecode never needs pyenv).
    The requirements are locked first (lock=False: use the lock as it is)."""

    def _build(project_dir: Path, *, lock_first: bool = True, **kwargs):
        kwargs.setdefault("runtime", HOST_RUNTIME)
        kwargs.setdefault("pip_args", offline(wheelhouse))
        if lock_first and has_requirements(project_dir, kwargs.get("requirements")):
            lock(
                project_dir,
                wheelhouse,
                kwargs["runtime"],
                kwargs.get("architecture", "x86_64"),
                kwargs.get("requirements"),
            )
        return ensure_artifact(project_dir=project_dir, **kwargs)

    return _build
