"""Locks: the Lambda's requirements resolved once per target, every file pinned by hash.

    python -m lambda_pkg.lock            # refresh every lock (needs uv: requirements-dev.txt)

`requirements_Version9.txt` is what people edit. `lock` resolves it with uv for each
target (Lambda runtime x architecture: the target's Python version and manylinux glibc,
so environment markers are evaluated for the target, not for the host) and writes
`locks/<input stem>.<runtime>-<architecture>.txt`: `name==version` and `--hash` lines
only, under a header that records the input's fingerprint. A build installs exactly
that file, with pip's hash checking and without its resolver, and keys its dependency
cache on it, so every machine gets the same wheels. uv is never needed to build.

Other inputs (`requirements-service.txt`, the strategy service's) are locked with the
Lambda's lock of the same target as constraints, so the two share every version.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lambda_pkg import limits
from lambda_pkg.errors import InternalError, UserError, one_line
from lambda_pkg.platforms import check_target, describe, python_version, uv_platform
from lambda_pkg.reqfile import DEFAULT_NAMES, Requirements, parse

REFRESH = "python -m lambda_pkg.lock"
LOCK_DIR = "locks"
SERVICE_REQUIREMENTS = "requirements-service.txt"
FORMAT = "1"
_HEADER = re.compile(r"^# lambda-pkg-lock: (?P<format>\S+)$")
_INPUT = re.compile(r"^# input: (?P<name>\S+) sha256=(?P<fp>[0-9a-f]{64})$")
_TARGET = re.compile(r"^# target: (?P<runtime>\S+) (?P<arch>\S+)$")
_CONSTRAINTS = re.compile(r"^# constraints: (?P<name>\S+) sha256=(?P<digest>[0-9a-f]{64})$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.!+_-]+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<hex>[0-9a-f]{64})$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Lock:
    path: Path
    input_name: str
    input_fingerprint: str
    runtime: str
    architecture: str
    pins: tuple[Pin, ...]
    constraints: tuple[str, str] | None  # (lock file name, its digest)

    @property
    def digest(self) -> str:
        """What the dependency cache is keyed on: the pins and their hashes, nothing else
        (comments and the header's wording do not count)."""
        text = "\n".join(f"{p.name}=={p.version} {' '.join(sorted(p.hashes))}" for p in self.pins)
        return hashlib.sha256(f"{self.runtime} {self.architecture}\n{text}".encode()).hexdigest()


def lock_path(requirements: Path, runtime: str, architecture: str) -> Path:
    stem = requirements.name.removesuffix(".txt")
    return requirements.parent / LOCK_DIR / f"{stem}.{runtime}-{architecture}.txt"


def is_lock(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(_HEADER.match(fh.readline().rstrip("\n")) for _ in range(3))
    except OSError:
        return False


def read_lock(path: Path) -> Lock:
    """Parse a lock strictly: a hand edit that adds anything but pins is refused."""

    def bad(number: int, why: str) -> UserError:
        return UserError(
            f"{path}:{number}: {why}; a lock is generated, never edited: change the "
            f"requirements file and run {REFRESH}"
        )

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the lock ({exc}); run {REFRESH}") from None
    fields: dict[str, re.Match[str]] = {}
    pins: list[Pin] = []
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            for key, pattern in (("format", _HEADER), ("input", _INPUT), ("target", _TARGET),
                                 ("constraints", _CONSTRAINTS)):  # fmt: skip
                if m := pattern.match(line):
                    fields[key] = m
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        tokens = (pending + line).split()
        pending = ""
        if not tokens:
            continue
        pin = _PIN.match(tokens[0])
        if not pin:
            raise bad(number, f"{tokens[0]!r} is not a name==version pin")
        hashes = []
        for token in tokens[1:]:
            if not (h := _HASH.match(token)):
                raise bad(number, f"{token!r} is not a --hash=sha256:... option")
            hashes.append(h["hex"])
        if not hashes:
            raise bad(number, f"{tokens[0]} has no --hash")
        pins.append(Pin(pin["name"].lower(), pin["version"], tuple(hashes)))
    missing = [k for k in ("format", "input", "target") if k not in fields]
    if missing or fields["format"]["format"] != FORMAT:
        raise UserError(f"{path}: not a lock written by this version of lambda_pkg; run {REFRESH}")
    constraints = fields.get("constraints")
    return Lock(
        path=path,
        input_name=fields["input"]["name"],
        input_fingerprint=fields["input"]["fp"],
        runtime=fields["target"]["runtime"],
        architecture=fields["target"]["arch"],
        pins=tuple(pins),
        constraints=(constraints["name"], constraints["digest"]) if constraints else None,
    )


def lock_for(requirements: Requirements, runtime: str, architecture: str) -> Lock:
    """The lock a build of `requirements` for this target installs, checked against its
    input: a missing or stale lock names the command that refreshes it."""
    path = lock_path(requirements.path, runtime, architecture)
    rel = f"{LOCK_DIR}/{path.name}"
    if not path.is_file():
        raise UserError(
            f"no lock for {requirements.path.name} on {runtime} {architecture} ({rel}); "
            f"create it with: {REFRESH} --target {runtime}/{architecture}"
        )
    lock = read_lock(path)
    if (lock.runtime, lock.architecture) != (runtime, architecture):
        raise UserError(f"{rel} is for {lock.runtime} {lock.architecture}; run {REFRESH}")
    if lock.input_fingerprint != requirements.fingerprint:
        raise UserError(
            f"{rel} does not match {requirements.path.name} (it changed since the lock was "
            f"made); refresh the lock with: {REFRESH}"
        )
    if lock.constraints:
        name, digest = lock.constraints
        other = path.parent / name
        if not other.is_file() or read_lock(other).digest != digest:
            raise UserError(
                f"{rel} was locked against another {name}; refresh the locks with: {REFRESH}"
            )
    return lock


def check_lock_file(path: Path, runtime: str, architecture: str) -> Lock:
    """A lock passed where a requirements file is expected (--requirements LOCK)."""
    lock = read_lock(path)
    if (lock.runtime, lock.architecture) != (runtime, architecture):
        raise UserError(
            f"{path} is a lock for {lock.runtime} {lock.architecture}, not {runtime} "
            f"{architecture}; pass the matching lock or its requirements file"
        )
    return lock


# --- writing locks (uv) -----------------------------------------------------------


def find_uv() -> str:
    import shutil

    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise UserError(
        "uv is not installed; install the dev tools (pip install -r requirements-dev.txt): "
        "uv is needed to refresh locks, never to build"
    )


def _clean_env() -> dict[str, str]:
    """The caller's environment without uv's and pip's own settings: neither a config
    file nor a UV_*/PIP_* variable may change what gets locked."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}


def _classify(output: str, name: str, runtime: str, architecture: str) -> Exception:
    target = describe(runtime, architecture)
    text = " ".join(output.split())
    m = re.search(r"Because (?:only )?(?:all versions of )?([A-Za-z0-9._-]+)[^,]*? "
                  r"(?:was not found|has no wheels|have no wheels|has no usable wheels|"
                  r"have no usable wheels)", text)  # fmt: skip
    if m or "no wheels with a matching" in text or "not found in the package registry" in text:
        pkg = m.group(1) if m else "a requirement"
        return UserError(
            f"no wheel of {pkg} for {target}: pin a version that ships one, choose another "
            f"runtime or architecture, or drop it ({name})"
        )
    if "hash mismatch" in text.lower() or ("hashes" in text.lower() and "match" in text.lower()):
        return UserError(f"{name}: a --hash does not match the file the index serves: {text[:300]}")
    if "No solution found" in text:
        why = text.split("cause:", 1)[-1].strip() if "cause:" in text else text
        return UserError(f"conflicting requirements in {name}: {why[:400]}")
    return InternalError(f"uv failed while locking {name}: {one_line(output, 300)}")


def _compile(
    uv: str,
    requirements: Path,
    *,
    runtime: str,
    architecture: str,
    out: Path,
    index_args: Sequence[str],
    constraints: Path | None,
) -> None:
    import subprocess

    cmd = [
        # --python names this interpreter and --no-python-downloads stops uv fetching a
        # python3.X of the target's version: --python-version already sets the markers
        # the resolution uses (only wheels are allowed, so no interpreter runs a build),
        # and the search otherwise cost 8-14 s a lock here, mostly in a download that
        # fails without internet (and fetched ~30 MB with it).
        uv, "pip", "compile", "--no-config", "--no-python-downloads", "--python",
        sys.executable, "--system-certs", "--quiet", "--no-header",
        "--generate-hashes", "--only-binary", ":all:", "--no-annotate",
        "--python-platform", uv_platform(runtime, architecture),
        "--python-version", python_version(runtime),
        "--output-file", str(out), *index_args,
    ]  # fmt: skip
    if constraints is not None:
        cmd += ["--constraints", str(constraints)]
    cmd.append(str(requirements))
    proc = subprocess.run(
        cmd, capture_output=True, text=True, errors="replace", env=_clean_env(),
        cwd=requirements.parent, check=False, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise _classify(proc.stderr + proc.stdout, requirements.name, runtime, architecture)


def write_lock(
    requirements: Path,
    runtime: str,
    architecture: str,
    *,
    index_args: Sequence[str] = (),
    constrain_to: Lock | None = None,
) -> Lock:
    """Resolve `requirements` for the target with uv and write its lock atomically."""
    check_target(runtime, architecture)
    reqs = parse(requirements)  # every refusal of reqfile.py happens before uv starts
    path = lock_path(requirements, runtime, architecture)
    path.parent.mkdir(parents=True, exist_ok=True)
    uv = find_uv()
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".lock-", dir=path.parent) as tmp:
        out = Path(tmp) / "out.txt"
        constraints = None
        if constrain_to is not None:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text(
                "".join(f"{p.name}=={p.version}\n" for p in constrain_to.pins), encoding="utf-8"
            )
        if constrain_to is None and not reqs.empty:
            # The Lambda's own input: the runtime puts its boto3 on sys.path beside the
            # package, so every shared dependency must be a version that botocore
            # accepts (pandas may take python-dateutil 4, botocore needs < 3). Its
            # requirements, read from the boto3 this tool runs with, constrain the
            # resolution; boto3 itself is not locked (the runtime provides it).
            constraints = Path(tmp) / "runtime-sdk.txt"
            constraints.write_text(
                "".join(f"{r}\n" for r in runtime_sdk_requirements()), encoding="utf-8"
            )
        if reqs.empty:
            out.write_text("", encoding="utf-8")
        else:
            _compile(
                uv, requirements, runtime=runtime, architecture=architecture, out=out,
                index_args=index_args, constraints=constraints,
            )  # fmt: skip
        header = [
            f"# Generated by `{REFRESH}` from {requirements.name}: edit that file, not this one.",
            f"# lambda-pkg-lock: {FORMAT}",
            f"# input: {requirements.name} sha256={reqs.fingerprint}",
            f"# target: {runtime} {architecture}",
        ]
        if constrain_to is not None:
            header.append(f"# constraints: {constrain_to.path.name} sha256={constrain_to.digest}")
        body = out.read_text(encoding="utf-8")
        staged = Path(tmp) / "lock.txt"
        staged.write_text("\n".join(header) + "\n" + body, encoding="utf-8")
        lock = read_lock(staged)  # what uv wrote must be pins and hashes only
        os.chmod(staged, 0o644)
        os.replace(staged, path)
    return replace(lock, path=path)


def runtime_sdk_requirements() -> list[str]:
    """What boto3 and botocore require of the packages they share with a package
    (python-dateutil, jmespath, urllib3...), with their markers, as installed here."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from lambda_pkg.deps import RUNTIME_PROVIDED

    found: list[str] = []
    for dist in ("boto3", "botocore"):
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            # The SDK's own parts are left out of the package (deps.RUNTIME_PROVIDED), so
            # pinning them would only make a package that bundles boto3 unresolvable.
            if "extra ==" in text or canonicalize_name(req.name) in RUNTIME_PROVIDED:
                continue
            found.append(str(req))
    return sorted(set(found))


def existing_targets(requirements: Path) -> list[tuple[str, str]]:
    """The targets that already have a lock for this input."""
    return [
        (runtime, arch)
        for runtime in limits.RUNTIMES
        for arch in limits.ARCHITECTURES
        if lock_path(requirements, runtime, arch).is_file()
    ]


def lock_project(
    project_dir: Path,
    *,
    requirements: Sequence[Path] = (),
    targets: Sequence[tuple[str, str]] = (),
    index_args: Sequence[str] = (),
) -> list[Lock]:
    """Refresh the locks of the Lambda's requirements and the service's, for `targets`
    (default: the default target plus every target that already has a lock)."""
    if requirements:
        inputs = [Path(r) for r in requirements]
        for path in inputs:
            if not path.is_file():
                raise UserError(f"--requirements {path}: no such file")
    else:
        primary = next(
            (project_dir / n for n in DEFAULT_NAMES if (project_dir / n).is_file()), None
        )
        if primary is None:
            raise UserError(
                f"no requirements file ({' or '.join(DEFAULT_NAMES)}) in {project_dir}: "
                "nothing to lock"
            )
        inputs = [primary]
        if (project_dir / SERVICE_REQUIREMENTS).is_file():
            inputs.append(project_dir / SERVICE_REQUIREMENTS)
    if not targets:
        wanted = {(limits.DEFAULT_RUNTIME, limits.DEFAULT_ARCHITECTURE)}
        for path in inputs:
            wanted.update(existing_targets(path))
        targets = sorted(wanted)
    written = []
    for runtime, arch in targets:
        check_target(runtime, arch)
        first = write_lock(inputs[0], runtime, arch, index_args=index_args)
        written.append(first)
        for other in inputs[1:]:
            written.append(
                write_lock(other, runtime, arch, index_args=index_args, constrain_to=first)
            )
    return written


if __name__ == "__main__":
    from lambda_pkg.cli import main

    sys.exit(main(["lock", *sys.argv[1:]]))
