"""Dependencies: download exactly the lock's wheels for the target, turn them into a
cached segment.

pip only *downloads* (`pip download --no-deps --require-hashes --only-binary=:all:
--platform ... --python-version --implementation cp -r LOCK`): no resolver runs, every
file must match a hash of the lock, nothing is built from source, and pip's ambient
configuration (config files, PIP_* variables, the host's indexes and constraints) is
switched off, so only the lock and the explicit --pip-arg options decide what arrives.
The builder then reads each wheel itself (wheels.py: every member checked, nothing run)
instead of letting `pip install --target` unpack it. A wheel is a zip already, so every
member that is kept is copied with its compressed bytes as they are.

The result is a *segment* (see zipper.py) cached under `<cache>/deps/<key>/`, where
key = hash(lock pins and hashes, runtime, architecture, bundle_boto3, platform tags,
pip options, bytecode format, builder version).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lambda_pkg import BUILDER_VERSION
from lambda_pkg.artifact import sha256_json, write_bytes_atomic
from lambda_pkg.audit import audit_elf, is_shared_object
from lambda_pkg.budget import Distribution
from lambda_pkg.bytecode import compile_cached, pyc_name
from lambda_pkg.errors import InternalError, UserError, and_more, one_line
from lambda_pkg.interpreters import Interpreter
from lambda_pkg.lock import REFRESH, Lock, Pin
from lambda_pkg.platforms import describe, manylinux_platforms, python_version
from lambda_pkg.progress import Progress
from lambda_pkg.strip import doc_dirs, imported_test_dirs, simple_reason, test_dirs
from lambda_pkg.tmpdirs import file_lock, work_dir
from lambda_pkg.wheels import Member, read_wheel
from lambda_pkg.wheelstore import WheelStore, store_root
from lambda_pkg.zipper import Entry, make_entry, read_segment, write_segment

# Provided by every Python Lambda runtime; bundled only with --bundle-boto3.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Compiled dependency modules kept (`<cache>/pyc-deps`): the package's and the image's
# (numpy, pandas, botocore: about 5,000 modules) with room for an upgrade or two.
PYC_CACHE_KEEP = 20_000
# --pip-arg options: where wheels come from, and how to reach it. Anything else could
# change what pip does with them, and the lock already says what to install.
PIP_ARGS = frozenset({
    "--no-index", "--find-links", "-f", "--index-url", "-i", "--extra-index-url",
    "--trusted-host", "--cert", "--client-cert", "--proxy", "--timeout", "--retries",
})  # fmt: skip
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")


def redact(text: str) -> str:
    """user:password@ in any URL replaced, so index credentials never reach a log."""
    return _CREDENTIALS.sub(r"\g<scheme>****@", text)


def check_pip_args(args: tuple[str, ...]) -> None:
    for arg in args:
        option = arg.split("=", 1)[0]
        if arg.startswith("-") and option not in PIP_ARGS:
            raise UserError(
                f"--pip-arg {redact(arg)}: only options that say where wheels come from are "
                f"accepted ({', '.join(sorted(PIP_ARGS))}); the lock decides what is installed"
            )


@dataclass(frozen=True)
class DepsSpec:
    lock: Lock
    runtime: str
    architecture: str
    bundle_boto3: bool
    interpreter: Interpreter | None
    pip_args: tuple[str, ...] = ()

    @property
    def platforms(self) -> list[str]:
        return manylinux_platforms(self.runtime, self.architecture)

    @property
    def excluded(self) -> frozenset[str]:
        return frozenset() if self.bundle_boto3 else RUNTIME_PROVIDED

    def key(self) -> str:
        data = {
            "builder": BUILDER_VERSION,
            "lock": self.lock.digest,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "bundle_boto3": self.bundle_boto3,
            "platforms": self.platforms,
            "pip_args": list(self.pip_args),
            "bytecode": self.interpreter.bytecode_id if self.interpreter else None,
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
        }
        return sha256_json(data)


@dataclass
class Segment:
    """The dependencies, ready to be merged into a zip."""

    entries: list[Entry]
    dists: list[Distribution]
    notes: list[str] = field(default_factory=list)
    key: str = ""


def pip_command(spec: DepsSpec, dest: Path, pins: Sequence[Pin] | None = None) -> list[str]:
    cmd = [
        sys.executable, "-I", "-m", "pip", "download", "--isolated",
        "--dest", str(dest),
        "--no-deps", "--require-hashes",
        "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", python_version(spec.runtime),
        "--progress-bar", "off",
        "--no-input",
        "--disable-pip-version-check",
    ]  # fmt: skip
    for tag in spec.platforms:
        cmd += ["--platform", tag]
    return [*cmd, *spec.pip_args, "-r", str(download_list(spec, dest, pins))]


def shipped_pins(spec: DepsSpec) -> list[Pin]:
    """The lock's pins that ship. The lock also pins the runtime's SDK (boto3 & co.,
    resolved with the rest so every version is one the runtime's botocore accepts);
    without --bundle-boto3 those are never downloaded, since they would only be dropped."""
    return [pin for pin in spec.lock.pins if pin.name not in spec.excluded]


def download_list(spec: DepsSpec, dest: Path, pins: Sequence[Pin] | None = None) -> Path:
    """`pins` (default: every pin that ships) as a requirements file beside the downloads."""
    lines = []
    for pin in shipped_pins(spec) if pins is None else pins:
        hashes = "".join(f" --hash=sha256:{h}" for h in pin.hashes)
        lines.append(f"{pin.name}=={pin.version}{hashes}\n")
    path = dest.parent / f"{dest.name}.requirements.txt"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def pip_env() -> dict[str, str]:
    """The build's environment for pip, without any of pip's own configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no config file at all
    return env


def classify_pip_failure(output: str, spec: DepsSpec, log: Path) -> Exception:
    """One clear error from pip's output: the user's to fix (exit 2) when a wheel is
    missing or a hash does not match; anything else is pip failing (exit 1)."""
    target = describe(spec.runtime, spec.architecture)
    lock = spec.lock.path.name
    if m := re.search(r"No matching distribution found for (\S+)", output):
        return UserError(
            f"no wheel of {m.group(1)} for {target} on the index (pinned by {lock}): check "
            f"--pip-arg, or refresh the lock with {REFRESH} (pip log: {log})"
        )
    if "DO NOT MATCH THE HASHES" in output:
        found = re.search(r"^\s+(\S+) from \S+", output.split("DO NOT MATCH", 1)[1], re.M)
        what = found.group(1) if found else "a wheel"
        return UserError(
            f"{what}: the downloaded file matches no hash in {lock}: the index served other "
            f"bytes than when the lock was made; check the index, or refresh the lock with "
            f"{REFRESH} if the release really changed (pip log: {log})"
        )
    errors = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("ERROR")]
    last = errors[-1] if errors else (output.strip().splitlines() or ["no output"])[-1]
    return InternalError(f"pip failed: {one_line(last, 300)} (pip log: {log})")


def run_pip(
    spec: DepsSpec, dest: Path, log: Path, progress: Progress, pins: Sequence[Pin] | None = None
) -> None:
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise UserError(
            f"pip is not installed for {sys.executable}; install it (python -m ensurepip) "
            "or run the packager from the project's .venv"
        )
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = pip_command(spec, dest, pins)
    lines: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        env=pip_env(), stdin=subprocess.DEVNULL,
    ) as proc:  # fmt: skip
        for line in proc.stdout or ():
            lines.append(line)
            if line.startswith("Collecting "):
                progress.status(f"downloading: {line.split()[1]}")
    output = redact("".join(lines))
    if proc.returncode != 0:
        # A failed run's log has a name of its own: another build of the same inputs
        # (two stacks previewed at once) would otherwise overwrite the one the error names.
        log = log.with_name(f"{log.stem}-failed-{os.getpid()}{log.suffix}")
    write_bytes_atomic(log, (redact(" ".join(cmd)) + "\n\n" + output).encode())
    if proc.returncode != 0:
        raise classify_pip_failure(output, spec, log)


# --- from wheels to a segment ----------------------------------------------------------


class _Unpacked:
    """The kept members of all wheels, as the steps of build_segment shape them."""

    def __init__(self, spec: DepsSpec) -> None:
        self.spec = spec
        self.members: dict[str, Member] = {}
        self.dists: dict[str, Distribution] = {}
        self.notes: list[str] = []
        self.stripped: dict[str, list[int]] = {}
        self.contents: dict[str, bytes] = {}

    def read(self, wheels: list[Path]) -> None:
        pins = {p.name: p for p in self.spec.lock.pins}
        # The runtime's SDK is pinned by the lock but never downloaded (download_list).
        skipped = sorted(set(pins) & self.spec.excluded)
        for path in sorted(wheels, key=lambda p: p.name.lower()):
            wheel = read_wheel(path, excluded=self.spec.excluded)
            pin = pins.get(wheel.dist)
            if pin is None or pin.version != wheel.version:
                raise UserError(
                    f"{wheel.filename} is not what {self.spec.lock.path.name} pins; "
                    f"refresh the lock with {REFRESH}"
                )
            if wheel.sha256 not in pin.hashes:
                # pip checks what it downloads; this also covers what the wheel store gave.
                raise UserError(
                    f"{wheel.filename}: sha256 {wheel.sha256} is none of the hashes "
                    f"{self.spec.lock.path.name} pins; the file is corrupt or tampered with"
                )
            if wheel.dist in self.spec.excluded:
                continue
            self.dists[wheel.dist] = Distribution(
                wheel.dist, wheel.version, wheel.filename, wheel.sha256
            )
            for m in wheel.members:
                if (other := self.members.get(m.name)) and (other.crc, other.size) != (
                    m.crc,
                    m.size,
                ):
                    raise UserError(
                        f"{wheel.filename} and {other.dist} both install {m.name}, with "
                        "different contents; one would overwrite the other: drop one of them"
                    )
                self.members[m.name] = m
            self.contents.update(wheel.contents)
        if skipped:
            self.notes.append(
                f"left out {', '.join(skipped)}: the Lambda runtime provides them "
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

    def strip(self) -> None:
        for name in list(self.members):
            if reason := simple_reason(name):
                self.drop(name, reason)
        for d in doc_dirs(self.members):
            self.drop_dir(d, "documentation")
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
            raise UserError(f"audit failed: {problems[0]}{and_more(problems)}")

    def tally(self, entries: list[Entry]) -> list[Distribution]:
        """Per distribution: files, unzipped and zipped bytes (bytecode included)."""
        owner = {m.name: m.dist for m in self.members.values()}
        for e in entries:
            dist = _pyc_owner(e.name, owner) if e.name.endswith(".pyc") else owner.get(e.name)
            if dist:
                d = self.dists[dist]
                d.files += 1
                d.unzipped += e.size
                d.zipped += len(e.data)
        for reason, (count, size) in sorted(self.stripped.items()):
            self.notes.append(
                f"stripped {count:,} files of {reason} ({size / 1e6:.1f} MB) from dependencies"
            )
        return [d for _, d in sorted(self.dists.items())]


def build_segment(
    spec: DepsSpec, wheels: list[Path], progress: Progress, pyc_cache: Path
) -> Segment:
    """Turn downloaded wheels into the package's dependency entries (`pyc_cache`: where
    compiled modules are kept for the next build of the same Python)."""
    unpacked = _Unpacked(spec)
    progress.step("checking wheels")
    unpacked.read(wheels)
    missing = sorted({p.name for p in spec.lock.pins} - set(unpacked.dists) - RUNTIME_PROVIDED)
    if missing:
        raise InternalError(f"pip returned no wheel for {', '.join(missing)}")
    progress.step("stripping and auditing")
    unpacked.strip()
    unpacked.audit()
    members = unpacked.members.values()
    entries = [Entry(m.name, m.mode, m.method, m.crc, m.size, m.raw) for m in members]
    if spec.interpreter:
        entries += _bytecode(spec.interpreter, unpacked, progress, pyc_cache)
    entries.sort(key=lambda e: e.name)
    dists = unpacked.tally(entries)
    return Segment(entries=entries, dists=dists, notes=unpacked.notes)


def _pyc_owner(pyc: str, owner: dict[str, str]) -> str | None:
    head, _, base = pyc.rpartition("/")
    pkg = head.removesuffix("__pycache__").rstrip("/")
    stem = base.split(".", 1)[0]
    return owner.get(f"{pkg}/{stem}.py" if pkg else f"{stem}.py")


def _bytecode(
    interp: Interpreter, unpacked: _Unpacked, progress: Progress, pyc_cache: Path
) -> list[Entry]:
    contents = unpacked.contents
    names = sorted(n for n in contents if n.endswith(".py") and n in unpacked.members)
    progress.step(f"compiling {len(names):,} modules for Python {interp.version}")
    items = [(n, contents[n]) for n in names]
    pycs = compile_cached(interp, items, pyc_cache, keep=PYC_CACHE_KEEP)
    todo = [(pyc_name(n, interp.cache_tag), p) for n, p in zip(names, pycs, strict=True) if p]
    failed = len(names) - len(todo)
    if failed:
        unpacked.notes.append(f"{failed} dependency modules do not compile for Python "
                              f"{interp.version}; they ship as source only")  # fmt: skip
    progress.step(f"compressing {len(todo):,} bytecode files")
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(lambda item: make_entry(item[0], item[1]), todo))


# --- the cache -------------------------------------------------------------------


def _load(final: Path, key: str) -> Segment:
    entries, meta = read_segment(final)
    dists = [Distribution.from_json(d) for d in meta["dists"]]
    return Segment(entries=entries, dists=dists, notes=meta["notes"], key=key)


def fetch_wheels(spec: DepsSpec, dest: Path, store: Path, log: Path, progress: Progress) -> None:
    """The shipped pins' wheels into `dest`: from the wheel store when it holds them
    (hash-checked), the rest downloaded by pip, then kept in the store."""
    wheels = WheelStore(store, (python_version(spec.runtime), "cp", spec.platforms,
                                list(spec.pip_args)))  # fmt: skip
    pins = shipped_pins(spec)
    # One build of a target at a time takes and downloads: a concurrent one (the image's,
    # beside the package's) then finds these wheels instead of downloading them again.
    with file_lock(wheels.lock_path):
        missing = [pin for pin in pins if wheels.take(pin, dest) is None]
        target = f"{spec.runtime} {spec.architecture}"
        if not missing:
            progress.step(f"the locked wheels for {target}: all {len(pins)} in the wheel store")
            return
        progress.step(
            f"downloading the locked wheels for {target}: {len(missing)} of {len(pins)} "
            f"({len(pins) - len(missing)} in the wheel store)"
        )
        before = set(dest.iterdir()) if dest.is_dir() else set()
        run_pip(spec, dest, log, progress, missing)
        by_name = {pin.name: pin for pin in missing}
        for wheel in sorted(set(dest.iterdir()) - before):
            wheels.keep(by_name, wheel)


def ensure_segment(spec: DepsSpec, cache_dir: Path, progress: Progress) -> Segment:
    """The dependency segment for spec, from the cache or built now (then cached)."""
    key = spec.key()
    final = cache_dir / "deps" / key[:32]
    if (final / "segment.json").is_file():
        return _load(final, key)
    with work_dir(cache_dir, f"deps-{key[:12]}") as work:
        wheels_dir = work / "wheels"
        log = cache_dir / "logs" / f"pip-{key[:12]}.log"
        fetch_wheels(spec, wheels_dir, store_root(cache_dir), log, progress)
        found = sorted(wheels_dir.iterdir()) if wheels_dir.is_dir() else []
        others = [p.name for p in found if p.suffix != ".whl"]
        if others:
            raise UserError(
                f"pip returned non-wheel files ({', '.join(others)}); only wheels can be packaged"
            )
        segment = build_segment(spec, found, progress, cache_dir / "pyc-deps")
        out = work / "segment"
        out.mkdir()
        meta = {"dists": [d.to_json() for d in segment.dists], "notes": segment.notes}
        write_segment(out, segment.entries, meta)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(out, final)
        except OSError:
            if not (final / "segment.json").is_file():  # not a concurrent build's twin
                raise
    return _load(final, key)
