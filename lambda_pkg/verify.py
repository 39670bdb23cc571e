"""`verify ZIP`: look inside a built package and re-run every pre-upload check.

Lists the contents, checks the handler is there, re-runs the size budget, the ELF
audit and the secret scan, and imports the handler in a subprocess that sees only
the package (plus, when they are not bundled, boto3 & co., which the Lambda
runtime provides), when an interpreter of the target version is available.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from lambda_pkg import limits
from lambda_pkg.artifact import read_manifest_beside, sha256_file
from lambda_pkg.audit import audit_elf, is_shared_object, scan_secrets
from lambda_pkg.budget import Sizes, assess
from lambda_pkg.errors import UserError
from lambda_pkg.interpreters import find_interpreter
from lambda_pkg.platforms import check_target, python_version
from lambda_pkg.sources import is_env_file

_HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}
# What every Python Lambda runtime already has on its path.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


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


def _read_manifest(zip_path: Path) -> dict[str, Any] | None:
    """The JSON of the manifest beside the zip, if any."""
    found = read_manifest_beside(zip_path)
    return found[1] if found else None


def _owned_top_levels(names: list[str], zf: zipfile.ZipFile) -> set[str]:
    """Top-level names that belong to an installed distribution (for the secret scan)."""
    owned = set()
    for name in names:
        parts = name.split("/")
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "top_level.txt":
            owned.update(zf.read(name).decode(errors="replace").split())
        if parts[0].endswith(".dist-info"):
            owned.add(parts[0])
            owned.add(parts[0].split("-")[0])
    return owned


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
    manifest = _read_manifest(zip_path)
    runtime = runtime or (manifest or {}).get("runtime") or limits.DEFAULT_RUNTIME
    architecture = (
        architecture or (manifest or {}).get("architecture") or limits.DEFAULT_ARCHITECTURE
    )
    check_target(runtime, architecture)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{zip_path}: not a zip file ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        names = [i.filename for i in infos]
        result = Result(
            zip=str(zip_path),
            runtime=runtime,
            architecture=architecture,
            entries=len(infos),
            listing=[{"size": i.file_size, "name": i.filename} for i in infos[:listing]],
        )
        if manifest is None:
            result.notes.append("no manifest beside the zip: runtime and architecture from options")
        elif manifest.get("sha256") != sha256_file(zip_path):
            result.problems.append(f"{zip_path.name} does not match its manifest's sha256")

        # Handler
        if handler not in names:
            result.problems.append(f"handler {handler} is not in the package")

        layer = (manifest or {}).get("layer")
        _budget(result, zip_path, infos, layer)
        _audit(result, zf, infos, manifest)
        if layer and zip_path.with_name(layer["zip"]).is_file():
            with zipfile.ZipFile(zip_path.with_name(layer["zip"])) as lz:
                _audit(result, lz, [i for i in lz.infolist() if not i.is_dir()], None)
        if import_check and handler in names:
            _import_check(
                zf, zip_path, layer=layer, handler=handler, function=function, runtime=runtime,
                result=result,
            )  # fmt: skip
    return result


def _budget(
    result: Result, zip_path: Path, infos: list[zipfile.ZipInfo], layer: dict[str, Any] | None
) -> None:
    """The size budget, including the layer the manifest names."""
    layer_unzipped = layer_zipped = 0
    if layer:
        layer_zip = zip_path.with_name(layer["zip"])
        if layer_zip.is_file():
            with zipfile.ZipFile(layer_zip) as lz:
                layer_unzipped = sum(i.file_size for i in lz.infolist())
            layer_zipped = layer_zip.stat().st_size
        else:
            result.problems.append(f"its layer {layer['zip']} is missing")
    sizes = Sizes(
        zipped=zip_path.stat().st_size,
        unzipped=sum(i.file_size for i in infos),
        layer_zipped=layer_zipped,
        layer_unzipped=layer_unzipped,
    )
    try:
        report = assess(sizes, [], architecture=result.architecture, layer=bool(layer))
        result.report = report.to_json()
    except UserError as exc:
        result.problems.append(str(exc))


def _audit(
    result: Result, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], manifest: dict | None
) -> None:
    """Native libraries, .env files, and the project's own files for secrets. Without a
    manifest listing the sources, every file no distribution owns counts as a source."""
    sources = set((manifest or {}).get("sources") or [])
    owned = set() if sources else _owned_top_levels([i.filename for i in infos], zf)
    for info in infos:
        name = info.filename
        if is_env_file(name.rsplit("/", 1)[-1]):
            result.problems.append(f"secret scan: {name}:1: a .env file is in the package")
        if is_shared_object(name):
            problem = audit_elf(
                name, zf.read(info), runtime=result.runtime, architecture=result.architecture
            )
            if problem:
                result.problems.append(f"audit: {problem}")
        top = name.split("/")[0].removesuffix(".py")
        scan = name in sources if sources else top not in owned
        if scan and not name.endswith(".pyc"):
            result.problems.extend(f"secret scan: {h}" for h in scan_secrets(name, zf.read(info)))


def _import_check(
    zf: zipfile.ZipFile,
    zip_path: Path,
    *,
    layer: dict[str, Any] | None,
    handler: str,
    function: str,
    runtime: str,
    result: Result,
) -> None:
    host = _HOST_ARCH.get(platform.machine().lower())
    if host != result.architecture:
        result.notes.append(
            f"import check skipped: this machine is {platform.machine()}, the target "
            f"{result.architecture}; its native libraries cannot load here"
        )
        return
    interp = find_interpreter(python_version(runtime))
    if interp is None:
        result.notes.append(f"import check skipped: no python{python_version(runtime)} found")
        return
    with tempfile.TemporaryDirectory(prefix="lambda-verify-") as tmp:
        task = Path(tmp) / "task"
        zf.extractall(task)
        path = [str(task)]
        if layer and zip_path.with_name(layer["zip"]).is_file():
            with zipfile.ZipFile(zip_path.with_name(layer["zip"])) as lz:
                lz.extractall(Path(tmp) / "opt")
            path.append(str(Path(tmp) / "opt" / "python"))
        runtime_dir = Path(tmp) / "runtime"
        runtime_dir.mkdir()
        for module in RUNTIME_MODULES:
            # Stand in for the runtime's own copies (pure Python) with the host's.
            spec = find_spec(module)
            if spec and spec.origin and not (task / module).exists():
                origin = Path(spec.origin)
                src = origin.parent if origin.name == "__init__.py" else origin
                os.symlink(src, runtime_dir / src.name)
        path.append(str(runtime_dir))
        module = handler.removesuffix(".py").replace("/", ".")
        code = (
            "import sys, importlib\n"
            f"sys.path[:0] = {path!r}\n"
            f"m = importlib.import_module({module!r})\n"
            f"assert callable(getattr(m, {function!r}, None)), "
            f"'{module} has no callable {function}'\n"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "LAMBDA_TASK_ROOT": str(task),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        start = time.monotonic()
        proc = subprocess.run(
            [interp.path, "-I", "-S", "-B", "-c", code],
            capture_output=True, text=True, env=env, cwd=tmp, timeout=120, check=False,
        )  # fmt: skip
        result.import_seconds = round(time.monotonic() - start, 3)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            result.problems.append(f"import {module} failed with Python {interp.version}: {last}")
