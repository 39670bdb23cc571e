"""`verify ZIP`: look inside a built package and re-run every pre-upload check.

The zip is untrusted input. Entry names that would escape the extraction directory
(`..`, absolute, backslashes, drive letters), symlink and other special entries,
encrypted and duplicate entries are problems. Members are streamed in 1 MiB chunks,
never read whole, and never past the size their header declares: a zip bomb stops at
the unzipped limit without being inflated, and a header that lies is one line, exit 2.
Peak memory stays small whatever the input (the test suite checks it).

Then it re-runs the size budget, the ELF audit and the secret scan, and imports the
handler with the target Python, when one is available. That import EXECUTES the
package's code, so it runs in a sandbox: a throwaway directory, an empty environment
(no credentials), `python -I -S -B`, a time limit with the whole process group killed,
output captured to a file with a cap, and, when user namespaces are available
(unshare), no network and every home directory (~/.aws and the like) an empty tmpfs.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import platform
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from shlex import quote
from typing import Any

from lambda_pkg import limits
from lambda_pkg.artifact import read_manifest_beside, sha256_file
from lambda_pkg.audit import audit_elf, is_shared_object, scan_stream
from lambda_pkg.budget import Sizes, assess
from lambda_pkg.errors import UserError
from lambda_pkg.interpreters import find_interpreter
from lambda_pkg.platforms import check_target, python_version
from lambda_pkg.sources import is_env_file

_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
# What every Python Lambda runtime already has on its path.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
# More entries than any Lambda package holds: the central directory of a hostile zip
# is not parsed into a million objects.
MAX_ENTRIES = 200_000
IMPORT_TIMEOUT = 60
_CHUNK = 1 << 20
_OUTPUT_CAP = 64 * 1024


@dataclass
class Result:
    zip: str
    runtime: str
    architecture: str
    entries: int
    listing: list[dict[str, Any]]
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    import_seconds: float | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


# --- reading an untrusted zip ----------------------------------------------------------


def _entry_count(path: Path) -> int:
    """The entry count the end-of-central-directory record declares (zip64 too)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 65_557))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise UserError(f"{path}: not a zip file (no end of central directory)")
    count: int = struct.unpack_from("<H", tail, at + 10)[0]
    locator = at - 20
    if count == 0xFFFF and locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", tail, locator + 8)
        with open(path, "rb") as fh:
            fh.seek(offset)
            record = fh.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            count = struct.unpack_from("<Q", record, 32)[0]
    return count


def _name_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.orig_filename
    parts = name.replace("\\", "/").split("/")
    kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
    checks = (
        ("\\" in name, "has a backslash in its name (read as a directory on Windows)"),
        (name.startswith("/") or name[1:2] == ":", "has an absolute path"),
        (".." in parts, "points outside the extraction directory (zip-slip)"),
        (any(ord(c) < 32 or ord(c) == 127 for c in name), "has a control character in its name"),
        (kind == stat.S_IFLNK, "is a symlink (Lambda would follow it outside the package)"),
        (kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK),
         "is a special file (FIFO, device or socket)"),
        (bool(info.flag_bits & 0x1), "is encrypted"),
    )  # fmt: skip
    return next((f"entry {name!r} {why}" for bad, why in checks if bad), None)


class Package:
    """One zip, opened with every structural check; members streamed with a cap."""

    def __init__(self, path: Path) -> None:
        self.path = path
        count = _entry_count(path)
        if count > MAX_ENTRIES:
            raise UserError(
                f"{path}: {count:,} entries, more than any Lambda package holds "
                f"(at most {MAX_ENTRIES:,} are read); it is not a package this tool built"
            )
        try:
            self.zf = zipfile.ZipFile(path)
            every = self.zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise UserError(f"{path}: not a zip file ({exc})") from None
        self.problems: list[str] = []
        seen: set[str] = set()
        for info in every:
            if problem := _name_problem(info):
                self.problems.append(problem)
            if info.filename in seen:
                self.problems.append(f"entry {info.filename!r} appears more than once")
            seen.add(info.filename)
        self.infos = [i for i in every if not i.is_dir()]
        self.declared = sum(i.file_size for i in self.infos)

    def close(self) -> None:
        self.zf.close()

    def chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """The member's bytes, streamed, never past its declared size."""
        left = info.file_size
        try:
            with self.zf.open(info) as fh:
                while chunk := fh.read(min(_CHUNK, left + 1)):
                    left -= len(chunk)
                    if left < 0:
                        break
                    yield chunk
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            OSError,
            RuntimeError,
        ) as exc:  # RuntimeError: encrypted; NotImplementedError: an unknown compression
            raise self.lie(info, str(exc)) from None
        if left != 0:
            raise self.lie(info, "its data does not match the size its header declares")

    def lie(self, info: zipfile.ZipInfo, why: str) -> UserError:
        return UserError(
            f"{self.path}: entry {info.filename} is corrupt or lies about its size ({why}); "
            "rebuild the package"
        )

    @contextlib.contextmanager
    def mapped(self, info: zipfile.ZipInfo) -> Iterator[mmap.mmap | bytes]:
        """The member in a temp file, mapped: random access without holding it in memory."""
        with tempfile.TemporaryFile() as fh:
            for chunk in self.chunks(info):
                fh.write(chunk)
            fh.flush()
            if info.file_size == 0:
                yield b""
                return
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped

    def extract(self, dest: Path) -> None:
        """Every member under dest (names were checked: none escapes)."""
        for info in self.infos:
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for chunk in self.chunks(info):
                    fh.write(chunk)


# --- the checks ------------------------------------------------------------------------


def verify(
    zip_path: Path | str,
    *,
    handler: str = limits.DEFAULT_HANDLER_FILE,
    function: str = "handler",
    runtime: str | None = None,
    architecture: str | None = None,
    import_check: bool = True,
    listing: int = 20,
) -> Result:
    zip_path = Path(zip_path)
    if zip_path.is_dir():
        raise UserError(f"{zip_path} is a directory; pass the package's .zip file")
    if not zip_path.is_file():
        raise UserError(f"{zip_path}: no such package; build it with 'python -m lambda_pkg build'")
    found = read_manifest_beside(zip_path)
    manifest: dict[str, Any] = found[1] if found else {}
    runtime = runtime or manifest.get("runtime") or limits.DEFAULT_RUNTIME
    architecture = architecture or manifest.get("architecture") or limits.DEFAULT_ARCHITECTURE
    check_target(runtime, architecture)
    pkg = Package(zip_path)
    layer_info = manifest.get("layer") if isinstance(manifest.get("layer"), dict) else None
    layer_path = zip_path.with_name(str(layer_info["zip"])) if layer_info else None
    layer = Package(layer_path) if layer_path and layer_path.is_file() else None
    try:
        result = Result(
            zip=str(zip_path),
            runtime=runtime,
            architecture=architecture,
            entries=len(pkg.infos),
            listing=[{"size": i.file_size, "name": i.filename} for i in pkg.infos[:listing]],
        )
        result.problems += pkg.problems + (layer.problems if layer else [])
        if not found:
            result.notes.append("no manifest beside the zip: runtime and architecture from options")
        elif manifest.get("sha256") != sha256_file(zip_path):
            result.problems.append(f"{zip_path.name} does not match its manifest's sha256")
        names = {i.filename for i in pkg.infos}
        if handler not in names:
            result.problems.append(f"handler {handler} is not in the package")
        if layer_info and layer is None:
            result.problems.append(f"its layer {layer_info['zip']} is missing")
        over = _budget(result, pkg, layer)
        if over:
            # Nothing is inflated past the limit: the budget problem is the answer.
            result.notes.append("contents not checked: the package is over the unzipped limit")
            return result
        unsafe = pkg.problems or (layer.problems if layer else [])
        _audit(result, pkg)
        if layer:
            _audit(result, layer)
        if import_check and handler in names and not unsafe:
            _import_check(pkg, layer, handler=handler, function=function, result=result)
        elif import_check and unsafe:
            result.notes.append("import check skipped: the zip's entries are not safe to extract")
    finally:
        pkg.close()
        if layer:
            layer.close()
    return result


def _budget(result: Result, pkg: Package, layer: Package | None) -> bool:
    """The size budget, including the layer the manifest names. True when over it."""
    sizes = Sizes(
        zipped=pkg.path.stat().st_size,
        unzipped=pkg.declared,
        layer_zipped=layer.path.stat().st_size if layer else 0,
        layer_unzipped=layer.declared if layer else 0,
    )
    try:
        report = assess(sizes, [], architecture=result.architecture, layer=layer is not None)
    except UserError as exc:
        result.problems.append(str(exc))
        return True
    result.report = report.to_json()
    return False


def _audit(result: Result, pkg: Package) -> None:
    """Native libraries, .env files, and secrets in every file (the build scans the
    dependencies too; .pyc files hold nothing their scanned sources do not)."""
    for info in pkg.infos:
        name = info.filename
        if info.flag_bits & 0x1:  # encrypted: reported already, unreadable
            continue
        if is_env_file(name.rsplit("/", 1)[-1]):
            result.problems.append(f"secret scan: {name}:1: a .env file is in the package")
        if is_shared_object(name):
            with pkg.mapped(info) as data:
                problem = audit_elf(
                    name, data, runtime=result.runtime, architecture=result.architecture
                )
            if problem:
                result.problems.append(f"audit: {problem}")
        if not name.endswith(".pyc"):
            result.problems.extend(f"secret scan: {h}" for h in scan_stream(name, pkg.chunks(info)))


def _hidden_dirs() -> list[str]:
    """Where credentials live: every home directory."""
    homes = {os.path.expanduser("~"), "/root", "/home"}
    return sorted(h for h in homes if os.path.isdir(h))


def _bind(src: str, dst: str, *, directory: bool) -> str:
    make = f"mkdir -p {quote(dst)}" if directory else f": > {quote(dst)}"
    return f"{make} && mount --bind {quote(src)} {quote(dst)}"


def _sandbox(
    command: list[str], binds: list[tuple[str, str]], restore: list[tuple[str, str]]
) -> list[str] | None:
    """`command` inside new user, network and mount namespaces (unshare) where every
    home directory is an empty tmpfs. `binds` (the runtime's modules, the interpreter)
    are bind-mounted into the throwaway directory first, so they stay reachable even
    when they live in a home; `restore` then mounts a stashed one back at its own path
    inside the emptied home (an interpreter finds its libraries by absolute path).
    None when the kernel or the tools do not allow it."""
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    steps = [_bind(src, dst, directory=os.path.isdir(src)) for src, dst in binds]
    steps += [f"mount -t tmpfs -o size=1m,mode=755 tmpfs {quote(h)}" for h in _hidden_dirs()]
    steps += [_bind(src, dst, directory=os.path.isdir(dst)) for src, dst in restore]
    steps.append('exec "$@"')
    wrapped = [unshare, "--user", "--map-root-user", "--net", "--mount", "--",
               "sh", "-ec", "; ".join(steps), "sh", *command]  # fmt: skip
    probe = subprocess.run(
        [*wrapped[: wrapped.index("sh") + 3], "sh", "true"],
        capture_output=True, check=False, timeout=30, start_new_session=True,
    )  # fmt: skip
    return wrapped if probe.returncode == 0 else None


def _runtime_modules(task: Path, runtime_dir: Path) -> list[tuple[Path, Path]]:
    """(host copy, where it goes) for each module the Lambda runtime provides that the
    package does not bundle: the host's (pure Python) copies stand in for the runtime's."""
    runtime_dir.mkdir()
    links = []
    for module in RUNTIME_MODULES:
        spec = find_spec(module)
        if spec and spec.origin and not (task / module).exists():
            origin = Path(spec.origin)
            src = origin.parent if origin.name == "__init__.py" else origin
            links.append((src, runtime_dir / src.name))
    return links


def _import_check(
    pkg: Package, layer: Package | None, *, handler: str, function: str, result: Result
) -> None:
    host = _HOST_ARCH.get(platform.machine().lower())
    if host != result.architecture:
        result.notes.append(
            f"import check skipped: this machine is {platform.machine()}, the target "
            f"{result.architecture}; its native libraries cannot load here"
        )
        return
    interp = find_interpreter(python_version(result.runtime))
    if interp is None:
        result.notes.append(
            f"import check skipped: no python{python_version(result.runtime)} found"
        )
        return
    with tempfile.TemporaryDirectory(prefix="lambda-verify-") as tmp:
        root = Path(tmp)
        task = root / "task"
        pkg.extract(task)
        path = [str(task)]
        if layer:
            layer.extract(root / "opt")
            path.append(str(root / "opt" / "python"))
        links = _runtime_modules(task, root / "runtime")
        binds = [(str(src), str(link)) for src, link in links]
        path.append(str(root / "runtime"))
        python = os.path.realpath(interp.path)
        prefix = str(Path(python).parents[1])
        binds.append((prefix, str(root / "python")))
        restore = [(str(root / "python"), prefix)]
        home = root / "home"
        home.mkdir()
        module = handler.removesuffix(".py").replace("/", ".")
        code = (
            "import sys, importlib\n"
            f"sys.path[:0] = {path!r}\n"
            f"m = importlib.import_module({module!r})\n"
            f"assert callable(getattr(m, {function!r}, None)), "
            f"'{module} has no callable {function}'\n"
        )
        env = {  # no credentials, no PATH of the caller's, nothing from the host
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        argv = [python, "-I", "-S", "-B", "-c", code]
        command = _sandbox(argv, binds, restore)
        if command is None:
            result.notes.append(
                "import check ran without namespace isolation (no unshare): the package's "
                "code could read what your user can read and reach the network"
            )
            for src, link in links:
                if link.is_dir() and not link.is_symlink():  # left by the namespace probe
                    link.rmdir()
                link.unlink(missing_ok=True)
                os.symlink(src, link)
            command = [interp.path, *argv[1:]]
        start = time.monotonic()
        status, tail = _run(command, env=env, cwd=home)
    if status is None:
        result.problems.append(
            f"import {module} did not finish within {IMPORT_TIMEOUT} s (killed); "
            "look for work done at import time"
        )
    elif status != 0:
        last = (tail.strip().splitlines() or ["no output"])[-1]
        result.problems.append(f"import {module} failed with Python {interp.version}: {last[:300]}")
    else:
        result.import_seconds = round(time.monotonic() - start, 3)


def _run(command: list[str], *, env: dict[str, str], cwd: Path) -> tuple[int | None, str]:
    """(exit code or None on timeout, the tail of its output)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=cwd,
            start_new_session=True,  # a timeout kills every process it started
        )  # fmt: skip
        try:
            code: int | None = proc.wait(timeout=IMPORT_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
            code = None
        out.seek(max(0, out.seek(0, os.SEEK_END) - _OUTPUT_CAP))
        return code, out.read().decode(errors="replace")
