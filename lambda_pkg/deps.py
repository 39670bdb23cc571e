"""Dependencies: resolve binary wheels for the target, turn them into a cached segment.

pip *downloads* the wheels (`pip download --only-binary=:all: --platform ...
--python-version --implementation cp`); the builder then reads each wheel itself
instead of letting `pip install --target` unpack it. A wheel is a zip already, so
every member that is kept is copied with its compressed bytes as they are: nothing
is decompressed and compressed again except the new .pyc files. Wheels are
immutable, so the same resolved wheels always give the same bytes.

The result is a *segment* (see zipper.py) cached under
`<cache>/deps/<key>/`, where key = hash(requirements, runtime, architecture,
bundle_boto3, platform tags, pip options, bytecode format, builder version).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambda_pkg import BUILDER_VERSION
from lambda_pkg.audit import audit_elf, is_shared_object
from lambda_pkg.bytecode import compile_sources, pyc_name
from lambda_pkg.errors import InternalError, UserError
from lambda_pkg.interpreters import Interpreter
from lambda_pkg.platforms import glibc_ceiling, manylinux_platforms, python_version
from lambda_pkg.progress import Progress
from lambda_pkg.reqfile import Requirements
from lambda_pkg.strip import doc_dirs, imported_test_dirs, simple_reason, test_dirs
from lambda_pkg.zipper import (
    DEFLATED,
    STORED,
    Entry,
    make_entry,
    normalize_mode,
    read_segment,
    write_segment,
)

# Provided by every Python Lambda runtime; bundled only with --bundle-boto3.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


@dataclass(frozen=True)
class DepsSpec:
    requirements: Requirements
    runtime: str
    architecture: str
    bundle_boto3: bool
    interpreter: Interpreter | None
    pip_args: tuple[str, ...] = ()

    @property
    def platforms(self) -> list[str]:
        return manylinux_platforms(self.runtime, self.architecture)

    def key(self) -> str:
        data = {
            "builder": BUILDER_VERSION,
            "requirements": self.requirements.fingerprint,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "bundle_boto3": self.bundle_boto3,
            "platforms": self.platforms,
            "pip_args": list(self.pip_args),
            "bytecode": self.interpreter.bytecode_id if self.interpreter else None,
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Segment:
    """The dependencies, ready to be merged into a zip."""

    entries: list[Entry]
    dists: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    key: str = ""

    def without_bytecode(self) -> list[Entry]:
        return [e for e in self.entries if not e.name.endswith(".pyc")]


def pip_command(spec: DepsSpec, dest: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--dest", str(dest),
        "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", python_version(spec.runtime),
        "--progress-bar", "off",
        "--no-input",
        "--disable-pip-version-check",
    ]  # fmt: skip
    for tag in spec.platforms:
        cmd += ["--platform", tag]
    return [*cmd, *spec.pip_args, "-r", str(spec.requirements.path)]


def classify_pip_failure(output: str, spec: DepsSpec, log: Path) -> Exception:
    """One clear error from pip's output. Not finding a wheel or conflicting pins is
    the user's to fix (exit 2); anything else is reported as pip failing (exit 1)."""
    ceiling = ".".join(map(str, glibc_ceiling(spec.runtime)))
    cp = "cp" + python_version(spec.runtime).replace(".", "")
    target = f"{spec.runtime} on {spec.architecture} ({cp}, manylinux glibc <= {ceiling})"
    if m := re.search(r"No matching distribution found for (\S+)", output):
        return UserError(
            f"no wheel of {m.group(1)} for {target}: pin a version that ships one, choose "
            f"another runtime or architecture, or drop it (pip log: {log})"
        )
    if "ResolutionImpossible" in output or "conflicting dependencies" in output:
        conflict = re.search(r"Cannot install ([^\n]+)", output)
        detail = conflict.group(1).strip() if conflict else "see the log"
        return UserError(f"conflicting requirements: cannot install {detail} (pip log: {log})")
    errors = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("ERROR")]
    last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
    return InternalError(f"pip failed: {last[:300]} (pip log: {log})")


def run_pip(spec: DepsSpec, dest: Path, log: Path, progress: Progress) -> None:
    if importlib.util.find_spec("pip") is None:
        raise UserError(
            f"pip is not installed for {sys.executable}; install it (python -m ensurepip) "
            "or run the packager from the project's .venv"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = pip_command(spec, dest)
    lines: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        for line in proc.stdout or ():
            lines.append(line)
            if line.startswith("Collecting "):
                progress.status(f"resolving: {line.split()[1]}")
    output = "".join(lines)
    log.write_text(" ".join(cmd) + "\n\n" + output, encoding="utf-8")
    if proc.returncode != 0:
        raise classify_pip_failure(output, spec, log)


# --- reading wheels ----------------------------------------------------------------


@dataclass
class _Member:
    name: str  # path in the package
    dist: str
    mode: int
    method: int
    crc: int
    size: int
    raw: memoryview  # compressed bytes as stored in the wheel


def _wheel_members(path: Path, dist: str) -> list[_Member]:
    data = memoryview(path.read_bytes())
    out = []
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise UserError(f"{path.name}: not a valid wheel ({exc})") from None
    # The wheel's own `{name}-{version}.data/` directory, at the top level only.
    tops = {i.filename.split("/", 1)[0] for i in infos if "/" in i.filename}
    data_dir = next((t for t in sorted(tops) if t.endswith(".data") and "-" in t), None)
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        if name.startswith("/") or ".." in name.split("/"):
            raise UserError(f"{path.name}: unsafe path {name!r} in the wheel")
        if data_dir and name.startswith(data_dir + "/"):
            # purelib/platlib install into site-packages; scripts, headers and data do not import.
            kind, _, rest = name[len(data_dir) + 1 :].partition("/")
            if kind not in ("purelib", "platlib") or not rest:
                continue
            name = rest
        offset = info.header_offset
        if bytes(data[offset : offset + 4]) != b"PK\x03\x04":
            raise UserError(f"{path.name}: corrupt member {info.filename!r}")
        n, e = struct.unpack_from("<HH", data, offset + 26)
        start = offset + 30 + n + e
        raw = data[start : start + info.compress_size]
        method = info.compress_type
        if method not in (STORED, DEFLATED):  # bzip2/lzma: recompress to plain deflate
            with zipfile.ZipFile(path) as zf:
                entry = make_entry(name, zf.read(info))
            method, raw = entry.method, memoryview(bytes(entry.data))
        mode = normalize_mode(info.external_attr >> 16)
        out.append(_Member(name, dist, mode, method, info.CRC, info.file_size, raw))
    return out


def _inflate(m: _Member) -> bytes:
    data = bytes(m.raw) if m.method == STORED else zlib.decompress(m.raw, -15)
    if zlib.crc32(data) != m.crc:
        raise UserError(f"{m.dist}: {m.name} fails its CRC check; the wheel is corrupt")
    return data


class _Unpacked:
    """The kept members of all wheels, as the steps of build_segment shape them."""

    def __init__(self, spec: DepsSpec) -> None:
        self.spec = spec
        self.members: dict[str, _Member] = {}
        self.dists: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.stripped: dict[str, list[int]] = {}
        self.contents: dict[str, bytes] = {}

    def read(self, wheels: list[Path]) -> None:
        skipped = []
        for wheel in sorted(wheels, key=lambda p: p.name.lower()):
            match = _WHEEL_NAME.match(wheel.name)
            if not match:
                raise UserError(f"{wheel.name}: not a wheel; only binary wheels can be packaged")
            dist = re.sub(r"[-_.]+", "-", match["name"]).lower()
            if dist in RUNTIME_PROVIDED and not self.spec.bundle_boto3:
                skipped.append(dist)
                continue
            self.dists[dist] = {
                "name": dist,
                "version": match["version"],
                "wheel": wheel.name,
                "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            }
            for m in _wheel_members(wheel, dist):
                self.members[m.name] = m  # a later wheel overwrites, as pip install does
        if skipped:
            self.notes.append(
                f"left out {', '.join(sorted(skipped))}: the Lambda runtime provides them "
                "(--bundle-boto3 bundles them)"
            )

    def drop_dir(self, directory: str, reason: str) -> None:
        for name in [n for n in self.members if n.startswith(directory + "/")]:
            self.drop(name, reason)

    def drop(self, name: str, reason: str) -> None:
        m = self.members.pop(name)
        self.contents.pop(name, None)
        count = self.stripped.setdefault(reason, [0, 0])
        count[0] += 1
        count[1] += m.size

    def inflate_code(self) -> None:
        """Decompress what later steps read: modules (bytecode, import check) and libraries."""
        wanted = [
            m for m in self.members.values() if m.name.endswith(".py") or is_shared_object(m.name)
        ]
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            self.contents = dict(
                zip((m.name for m in wanted), pool.map(_inflate, wanted), strict=True)
            )

    def strip(self) -> None:
        for name in list(self.members):
            if reason := simple_reason(name):
                self.drop(name, reason)
        for d in doc_dirs(self.members):
            self.drop_dir(d, "documentation")
        self.inflate_code()
        candidates = test_dirs(self.members)
        py_sources = {n: c for n, c in self.contents.items() if n.endswith(".py")}
        kept = imported_test_dirs(candidates, py_sources)
        for d in sorted(candidates - kept):
            self.drop_dir(d, "tests")
        if kept:
            self.notes.append(f"kept test directories that are imported: {', '.join(sorted(kept))}")

    def audit(self) -> None:
        problems = []
        for name, data in self.contents.items():
            if is_shared_object(name):
                spec = self.spec
                if problem := audit_elf(
                    name, data, runtime=spec.runtime, architecture=spec.architecture
                ):
                    problems.append(f"{self.members[name].dist}: {problem}")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(f"audit failed: {problems[0]}{more}")

    def tally(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """Per distribution: files, unzipped and zipped bytes (bytecode included)."""
        owner = {m.name: m.dist for m in self.members.values()}
        for d in self.dists.values():
            d.update(files=0, unzipped=0, zipped=0)
        for e in entries:
            dist = _pyc_owner(e.name, owner) if e.name.endswith(".pyc") else owner.get(e.name)
            if dist:
                d = self.dists[dist]
                d["files"] += 1
                d["unzipped"] += e.size
                d["zipped"] += len(e.data)
        for reason, (count, size) in sorted(self.stripped.items()):
            self.notes.append(
                f"stripped {count:,} files of {reason} ({size / 1e6:.1f} MB) from dependencies"
            )
        return [d for _, d in sorted(self.dists.items())]


def build_segment(spec: DepsSpec, wheels: list[Path], progress: Progress) -> Segment:
    """Turn downloaded wheels into the package's dependency entries."""
    unpacked = _Unpacked(spec)
    unpacked.read(wheels)
    progress.step("stripping and auditing")
    unpacked.strip()
    unpacked.audit()
    members = unpacked.members
    entries = [Entry(m.name, m.mode, m.method, m.crc, m.size, m.raw) for m in members.values()]
    if spec.interpreter:
        entries += _bytecode(spec.interpreter, members, unpacked.contents, unpacked.notes, progress)
    entries.sort(key=lambda e: e.name)
    dists = unpacked.tally(entries)
    return Segment(entries=entries, dists=dists, notes=unpacked.notes)


def _pyc_owner(pyc: str, owner: dict[str, str]) -> str | None:
    head, _, base = pyc.rpartition("/")
    pkg = head.removesuffix("__pycache__").rstrip("/")
    stem = base.split(".", 1)[0]
    return owner.get(f"{pkg}/{stem}.py" if pkg else f"{stem}.py")


def _bytecode(
    interp: Interpreter,
    members: dict[str, _Member],
    contents: dict[str, bytes],
    notes: list[str],
    progress: Progress,
) -> list[Entry]:
    names = sorted(n for n in contents if n.endswith(".py") and n in members)
    progress.step(f"compiling {len(names):,} modules for Python {interp.version}")
    pycs = compile_sources(interp, [(n, contents[n]) for n in names])
    todo = [(pyc_name(n, interp.cache_tag), p) for n, p in zip(names, pycs, strict=True) if p]
    failed = len(names) - len(todo)
    if failed:
        notes.append(f"{failed} dependency modules do not compile for Python {interp.version}; "
                     "they ship as source only")  # fmt: skip
    progress.step(f"compressing {len(todo):,} bytecode files")
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(lambda item: make_entry(item[0], item[1]), todo))


# --- the cache -------------------------------------------------------------------


def ensure_segment(spec: DepsSpec, cache_dir: Path, progress: Progress) -> Segment:
    """The dependency segment for spec, from the cache or built now (then cached)."""
    key = spec.key()
    final = cache_dir / "deps" / key[:32]
    if (final / "segment.json").is_file():
        entries, meta = read_segment(final)
        return Segment(entries=entries, dists=meta["dists"], notes=meta["notes"], key=key)
    tmp_root = cache_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"deps-{key[:12]}-", dir=tmp_root))
    try:
        progress.step(f"resolving and downloading wheels for {spec.runtime} {spec.architecture}")
        wheels_dir = work / "wheels"
        run_pip(spec, wheels_dir, cache_dir / "logs" / f"pip-{key[:12]}.log", progress)
        wheels = sorted(wheels_dir.glob("*.whl")) if wheels_dir.is_dir() else []
        others = [p.name for p in wheels_dir.iterdir() if p.suffix != ".whl"] if wheels else []
        if others:
            raise UserError(
                f"pip returned non-wheel files ({', '.join(others)}); only wheels can be packaged"
            )
        segment = build_segment(spec, wheels, progress)
        out = work / "segment"
        out.mkdir()
        write_segment(out, segment.entries, {"dists": segment.dists, "notes": segment.notes})
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(out, final)
        except OSError:
            if not (final / "segment.json").is_file():  # not a concurrent build's twin
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    entries, meta = read_segment(final)
    return Segment(entries=entries, dists=meta["dists"], notes=meta["notes"], key=key)
