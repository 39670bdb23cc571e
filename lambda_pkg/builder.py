"""The two-phase build: *prepare* hashes the inputs (milliseconds), *build* runs only
when no artifact exists for that hash.

Layout of the cache directory (default <project>/.build, gitignored):
  artifacts/<input hash>/lambda_deployment.zip   the code zip (+ dependencies unless --layer)
  artifacts/<input hash>/lambda_layer.zip        the dependency layer (--layer only)
  artifacts/<input hash>/manifest.json           see lambda_pkg.artifact
  deps/<deps key>/segment.{bin,json}             cached dependencies (see deps.py)
  tmp/, logs/                                    work directories, pip logs
An artifact directory appears whole or not at all: it is written under tmp/ and
moved into place with os.replace, so a failed build leaves every earlier one intact.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lambda_pkg import BUILDER_VERSION, limits
from lambda_pkg.artifact import Artifact, load_manifest, sha256_json
from lambda_pkg.errors import UserError
from lambda_pkg.interpreters import Interpreter, find_interpreter_memo
from lambda_pkg.lock import Lock, check_lock_file, is_lock, lock_for
from lambda_pkg.platforms import check_target, manylinux_platforms, python_version
from lambda_pkg.progress import Progress
from lambda_pkg.reqfile import find_requirements
from lambda_pkg.sources import SourceFile, collect_sources
from lambda_pkg.statcache import HashCache, fingerprint
from lambda_pkg.tmpdirs import file_lock
from lambda_pkg.zipper import COMPRESS_LEVEL

# Only a build needs these; a no-change rebuild never imports them (start-up time).
if TYPE_CHECKING:
    from lambda_pkg.deps import DepsSpec
    from lambda_pkg.zipper import Entry

ZIP_NAME = "lambda_deployment.zip"
LAYER_NAME = "lambda_layer.zip"
MANIFEST_NAME = "manifest.json"
LAYER_PREFIX = "python/"  # where Lambda puts a Python layer on sys.path (/opt/python)
KEEP_ARTIFACTS = 5
KEEP_SEGMENTS = 3


@dataclass(frozen=True)
class Plan:
    cache_dir: Path
    runtime: str
    architecture: str
    layer: bool
    bundle_boto3: bool
    sources: list[SourceFile]
    requirements: Path | None  # the human-edited input (or the lock, when given one)
    lock: Lock | None  # None: code only
    interpreter: Interpreter | None
    pip_args: tuple[str, ...]
    input_hash: str
    digests: dict[str, str] = field(default_factory=dict)  # arcname -> sha256 hashed
    notes: list[str] = field(default_factory=list)

    @property
    def artifact_dir(self) -> Path:
        return self.cache_dir / "artifacts" / self.input_hash[:32]

    @property
    def manifest_path(self) -> Path:
        return self.artifact_dir / MANIFEST_NAME

    @property
    def deps(self) -> DepsSpec | None:
        if self.lock is None or not self.lock.pins:
            return None
        from lambda_pkg.deps import DepsSpec

        return DepsSpec(
            lock=self.lock,
            runtime=self.runtime,
            architecture=self.architecture,
            bundle_boto3=self.bundle_boto3,
            interpreter=self.interpreter,
            pip_args=self.pip_args,
        )


def prepare(
    *,
    project_dir: Path | str,
    runtime: str = limits.DEFAULT_RUNTIME,
    architecture: str = limits.DEFAULT_ARCHITECTURE,
    layer: bool = False,
    bundle_boto3: bool = False,
    requirements: Path | str | None = None,
    cache_dir: Path | str | None = None,
    bytecode: bool = True,
    pip_args: Sequence[str] = (),
) -> Plan:
    """Phase one: validate and hash every input. Reads only what changed since the last
    walk (statcache.py); runs nothing heavy, resolves nothing."""
    check_target(runtime, architecture)
    if pip_args:
        from lambda_pkg.deps import check_pip_args

        check_pip_args(tuple(pip_args))
    project = Path(project_dir).absolute()
    cache = Path(cache_dir).absolute() if cache_dir else project / ".build"
    sources = collect_sources(project)
    hashes = HashCache(cache / "hashes.json")
    files = fingerprint(sources, hashes)
    lock, path, notes = find_lock(project, requirements, runtime, architecture, hashes)
    interp = find_interpreter_memo(python_version(runtime), hashes) if bytecode else None
    hashes.save()
    if bytecode and interp is None:
        notes.append(
            f"no python{python_version(runtime)} interpreter found (PATH, ~/.pyenv, uv): "
            "building without bytecode, so cold starts will be slower"
        )
    inputs = {
        "builder": BUILDER_VERSION,
        "runtime": runtime,
        "architecture": architecture,
        "layer": layer,
        "bundle_boto3": bundle_boto3,
        "platforms": manylinux_platforms(runtime, architecture),
        "bytecode": interp.bytecode_id if interp else None,
        "compression": [COMPRESS_LEVEL, zlib.ZLIB_RUNTIME_VERSION],
        "lock": lock.digest if lock else None,
        "pip_args": list(pip_args),
        "sources": files,
    }
    digest = sha256_json(inputs)
    return Plan(
        cache_dir=cache,
        runtime=runtime,
        architecture=architecture,
        layer=layer,
        bundle_boto3=bundle_boto3,
        sources=sources,
        requirements=path,
        lock=lock,
        interpreter=interp,
        pip_args=tuple(pip_args),
        input_hash=digest,
        digests={str(f[0]): str(f[2]) for f in files},
        notes=notes,
    )


def find_lock(
    project: Path,
    requirements: Path | str | None,
    runtime: str,
    architecture: str,
    hashes: HashCache,
) -> tuple[Lock | None, Path | None, list[str]]:
    """(lock, the file named, notes): the lock of the requirements input for this
    target, or the lock itself when one is given."""
    if requirements is not None and is_lock(Path(requirements)):
        return check_lock_file(Path(requirements), runtime, architecture), Path(requirements), []
    reqs, note = find_requirements(project, requirements, hashes)
    notes = [note] if note else []
    if reqs is None:
        return None, None, notes
    if reqs.empty:
        notes.append(f"{reqs.path.name} lists no requirements: building the code only")
        return None, reqs.path, notes
    return lock_for(reqs, runtime, architecture), reqs.path, notes


def existing(plan: Plan) -> Artifact | None:
    """The artifact already built for these inputs, if it is still whole.

    Re-hashing a 60 MB zip on every no-change build would cost more than the rest
    of the check, so the zip's size and mtime are compared with what the build
    recorded; only when they differ is the full sha256 checked.
    """
    if not plan.manifest_path.is_file():
        return None
    stamp_path = plan.artifact_dir / ".stat.json"
    try:
        art = load_manifest(plan.manifest_path, check=False)
        stamp = json.loads(stamp_path.read_text())
        if stamp == _stat(art):
            return art
        art = load_manifest(plan.manifest_path, check=True)
        stamp_path.write_text(json.dumps(_stat(art)))
        return art
    except (UserError, OSError, ValueError):
        return None


def _stat(art: Artifact) -> list[list[int]]:
    paths = [art.path] + ([art.layer.path] if art.layer else [])
    return [[(st := p.stat()).st_size, st.st_mtime_ns, st.st_ino] for p in paths]


def ensure(plan: Plan, progress: Progress | None = None) -> tuple[Artifact, bool]:
    """(artifact, built): the artifact for plan, building it only if needed."""
    progress = progress or Progress(False)
    if art := existing(plan):
        _touch(plan.artifact_dir)
        return art, False
    try:
        with file_lock(plan.cache_dir / "locks" / f"{plan.input_hash[:32]}.lock"):
            if art := existing(plan):
                return art, False
            art = _build(plan, progress)
    except OSError as exc:
        in_cache = exc.filename is None or str(exc.filename).startswith(str(plan.cache_dir))
        if exc.errno not in _ENVIRONMENT_ERRNOS or not in_cache:
            raise
        where = exc.filename or plan.cache_dir
        raise UserError(
            f"cannot write the build cache ({where}: {exc.strerror}); free some space, fix "
            "its permissions or pass --cache-dir DIR"
        ) from None
    _prune(plan.cache_dir / "artifacts", KEEP_ARTIFACTS, keep=plan.artifact_dir)
    return art, True


# A cache directory the user cannot write to, or a full disk: theirs to fix (exit 2).
_ENVIRONMENT_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT,
     errno.ENOTDIR}
)  # fmt: skip


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _code_entries(plan: Plan, progress: Progress) -> list[Entry]:
    """The project's own files and their bytecode, compressed, after the secret scan."""
    from lambda_pkg.audit import refuse_secrets
    from lambda_pkg.bytecode import compile_code, pyc_name
    from lambda_pkg.zipper import make_entry

    contents = {s.arcname: s.read() for s in plan.sources}
    for name, content in contents.items():
        if hashlib.sha256(content).hexdigest() != plan.digests.get(name):
            raise UserError(f"{name} changed while it was being packaged; build again")
    refuse_secrets(
        contents.items(), "remove it from the package (the API key belongs in Secrets Manager)"
    )
    entries = [make_entry(s.arcname, contents[s.arcname], s.mode) for s in plan.sources]
    if interp := plan.interpreter:
        py = [(name, src) for name, src in contents.items() if name.endswith(".py")]
        progress.step(f"compiling {len(py)} source modules")
        pycs = compile_code(interp, py, plan.cache_dir / "pyc")
        for (name, _), pyc in zip(py, pycs, strict=True):
            entries.append(make_entry(pyc_name(name, interp.cache_tag), pyc))
    entries.sort(key=lambda e: e.name)
    return entries


def _check_clashes(code: list[Entry], deps: list[Entry]) -> None:
    """A dependency may not write into the project's own packages and modules (the
    Lambda would import the dependency's backend/ instead of yours), even in a layer."""
    names = {e.name for e in code}
    tops = {n.split("/", 1)[0] for n in names if not n.endswith(".pyc")}
    clashes = [e.name for e in deps if e.name in names or e.name.split("/", 1)[0] in tops]
    clash = min(clashes, key=lambda n: (n.endswith(".pyc"), n), default=None)
    if clash:
        raise UserError(
            f"{clash} is both a project file and part of a dependency; rename the project module"
            if clash in names
            else f"a dependency installs {clash}, inside the project's own "
            f"{clash.split('/', 1)[0]}; drop that dependency or rename the project's package"
        )


def unzipped(entries: list[Entry]) -> int:
    return sum(e.size for e in entries)


def _fit(code: list[Entry], deps: list[Entry], notes: list[str]) -> tuple[list[Entry], list[Entry]]:
    """The bytecode ships only while the package stays within the unzipped limit."""
    if unzipped(code) + unzipped(deps) <= limits.UNZIPPED_MAX:
        return code, deps
    slim_code = [e for e in code if not e.name.endswith(".pyc")]
    slim_deps = [e for e in deps if not e.name.endswith(".pyc")]
    if unzipped(slim_code) + unzipped(slim_deps) > limits.UNZIPPED_MAX:
        return code, deps
    notes.append("bytecode left out: with it the package would exceed the unzipped limit")
    return slim_code, slim_deps


def _build(plan: Plan, progress: Progress) -> Artifact:
    from lambda_pkg.artifact import BuildDetails, Bytecode, write_manifest
    from lambda_pkg.budget import Sizes, assess, check_unzipped, top_distributions
    from lambda_pkg.deps import Segment, ensure_segment
    from lambda_pkg.tmpdirs import OWNER, work_dir
    from lambda_pkg.zipper import renamed, write_zip

    code = _code_entries(plan, progress)
    segment = Segment(entries=[], dists=[])
    if spec := plan.deps:
        segment = ensure_segment(spec, plan.cache_dir, progress)
        _touch(plan.cache_dir / "deps" / segment.key[:32])
        _prune(
            plan.cache_dir / "deps", KEEP_SEGMENTS, keep=plan.cache_dir / "deps" / segment.key[:32]
        )
    notes = [*plan.notes, *segment.notes]
    code, deps = _fit(code, segment.entries, notes)
    check_unzipped(unzipped(code) + unzipped(deps), segment.dists)

    _check_clashes(code, deps)
    if plan.layer and deps:
        layer_entries = [renamed(e, LAYER_PREFIX + e.name) for e in deps]
        zip_entries = code
    else:
        layer_entries, zip_entries = [], sorted(code + deps, key=lambda e: e.name)

    with work_dir(plan.cache_dir, f"art-{plan.input_hash[:12]}") as work:
        progress.step(f"writing {len(zip_entries) + len(layer_entries):,} entries")
        sha, size = write_zip(work / ZIP_NAME, zip_entries)
        layer_art = None
        sizes = Sizes(
            zipped=size,
            unzipped=unzipped(zip_entries),
            code_zipped=sum(len(e.data) for e in code),
            deps_zipped=sum(len(e.data) for e in deps),
        )
        if layer_entries:
            lsha, lsize = write_zip(work / LAYER_NAME, layer_entries)
            sizes.layer_zipped, sizes.layer_unzipped = lsize, unzipped(layer_entries)
            layer_art = Artifact(
                path=plan.artifact_dir / LAYER_NAME,
                sha256=lsha,
                size=lsize,
                unzipped_size=sizes.layer_unzipped,
                input_hash=segment.key,
                runtime=plan.runtime,
                architecture=plan.architecture,
                builder_version=BUILDER_VERSION,
                manifest_path=plan.manifest_path,
                details=BuildDetails(files=len(layer_entries), prefix=LAYER_PREFIX),
            )
        report = assess(sizes, segment.dists, architecture=plan.architecture, layer=plan.layer)
        dep_pycs = sum(1 for e in deps if e.name.endswith(".pyc"))
        code_pycs = sum(1 for e in code if e.name.endswith(".pyc"))
        art = Artifact(
            path=plan.artifact_dir / ZIP_NAME,
            sha256=sha,
            size=size,
            unzipped_size=sizes.unzipped,
            input_hash=plan.input_hash,
            runtime=plan.runtime,
            architecture=plan.architecture,
            builder_version=BUILDER_VERSION,
            manifest_path=plan.manifest_path,
            layer=layer_art,
            details=BuildDetails(
                files=len(zip_entries),
                sources=tuple(s.arcname for s in plan.sources),
                requirements=plan.requirements.name if plan.requirements else None,
                lock=plan.lock.path.name if plan.lock else None,
                bytecode=(
                    Bytecode(
                        python=plan.interpreter.version,
                        cache_tag=plan.interpreter.cache_tag,
                        files=code_pycs + dep_pycs,
                    )
                    if plan.interpreter and code_pycs + dep_pycs
                    else None
                ),
                distributions=tuple(segment.dists),
                largest_distributions=tuple(top_distributions(segment.dists)),
                report=report.to_json(),
                notes=tuple(notes),
            ),
        )
        # The manifest goes in the work directory first; the whole directory then
        # replaces nothing (its name is new) in one rename.
        write_manifest(art.moved(work / ZIP_NAME, work / MANIFEST_NAME, work / LAYER_NAME))
        (work / ".stat.json").write_text("[]")
        final = plan.artifact_dir
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a stale, incomplete or tampered directory for the same inputs
            shutil.rmtree(final)
        (work / OWNER).unlink()
        os.replace(work, final)
        (final / ".stat.json").write_text(json.dumps(_stat(art)))
    progress.done()
    return art


def _prune(parent: Path, keep_count: int, *, keep: Path) -> None:
    """Keep the most recently used entries of a cache directory, and always `keep`."""
    if not parent.is_dir():
        return
    dirs = sorted(
        (d for d in parent.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True
    )
    for d in dirs[keep_count:]:
        if d != keep:
            shutil.rmtree(d, ignore_errors=True)
