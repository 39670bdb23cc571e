"""The project's own base image, for the tests and the rehearsal (no registry here).

It is built from this machine's target Python and the libraries it links, laid out
the way the official `python:X.Y-slim` image lays itself out:

  usr/local/bin/pythonX.Y (+ python3, python)   the interpreter
  usr/local/lib/pythonX.Y/                       the standard library, with bytecode
  usr/lib/<triplet>/                             libpython, glibc and every library
                                                 the interpreter and its extension
                                                 modules link (found with ldd), plus
                                                 the manylinux system libraries a
                                                 wheel may need (libstdc++, libgcc_s, libz)
  lib -> usr/lib, lib64 -> usr/lib64, bin -> usr/bin  Debian's merged /usr
  etc/passwd, etc/group (root and nonroot 65532), etc/ssl/certs, usr/share/zoneinfo, tmp

Why this and not a debootstrap'ed Debian: it needs no network and no root, builds in
seconds, is a third of the size, and holds exactly what a Python service needs (no
shell, no package manager, as distroless). It is deterministic: the same interpreter
and libraries give the same digest (one deterministic layer, bytecode with
unchecked-hash headers). It is this machine's: another machine's Python gives
another base digest, which is why real deploys use a base pinned by digest.

Left out of the standard library: its test suite, idlelib, tkinter and turtledemo
(and the extension modules needing X11), ensurepip, lib2to3, the static library
config, site-packages. The cache key is the interpreter's version and the size and
mtime of its binary, libpython and libc, so a no-change build never re-reads the
standard library.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg import interpreters
from lambda_pkg.artifact import sha256_json
from lambda_pkg.errors import UserError
from lambda_pkg.image import inputs, oci
from lambda_pkg.image.store import BlobStore
from lambda_pkg.image.tarlayer import ZLIB_ID, Layer, LayerFile, write_layer
from lambda_pkg.progress import Progress

LOCAL_BASE_VERSION = "local-base/2"
NONROOT = 65532  # distroless' "nonroot" user and group
SKIP_STDLIB = frozenset(
    {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "site-packages",
     "__pycache__", "__phello__"}
)  # fmt: skip
_SKIP_DYNLOAD = re.compile(r"^(_test|xx|_xx|_tkinter|_ctypes_test)")
# Libraries a manylinux wheel may take from the system (PEP 599's list, less X11
# and OpenGL); the image needs them even where python itself does not link them
# (numpy links libpthread.so.0, which glibc >= 2.34 keeps as a stub).
WHEEL_SYSTEM_LIBS = (
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
    "libresolv.so.2", "libnsl.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1",
    "libexpat.so.1",
)  # fmt: skip
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/tmp:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnonroot:x:{NONROOT}:\n"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ZONEINFO = Path("/usr/share/zoneinfo")
_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({"
    "'executable': sys.executable, 'version': '%d.%d.%d' % sys.version_info[:3], "
    "'stdlib': sysconfig.get_path('stdlib'), 'dynload': sysconfig.get_config_var('DESTSHARED'), "
    "'libdir': sysconfig.get_config_var('LIBDIR'), "
    "'ldlibrary': sysconfig.get_config_var('INSTSONAME') or ''}))"
)


@dataclass(frozen=True)
class _Python:
    executable: Path
    version: str
    stdlib: Path
    dynload: Path
    libpython: Path | None


def _probe(interp: inputs.Interpreter) -> _Python:
    out = subprocess.run(
        [interp.path, "-I", "-S", "-c", _PROBE], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout)
    lib = Path(data["libdir"]) / data["ldlibrary"] if data["ldlibrary"] else None
    return _Python(
        executable=Path(os.path.realpath(data["executable"])),
        version=data["version"],
        stdlib=Path(data["stdlib"]),
        dynload=Path(data["dynload"]),
        libpython=lib if lib and lib.is_file() else None,
    )


def _interpreter(runtime: str, architecture: str) -> inputs.Interpreter:
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    if platform.machine() != machine:
        raise UserError(
            f"the local base can only be built for this machine ({platform.machine()}), not "
            f"--architecture {architecture}; pass --base with an image pinned by digest"
        )
    interp = interpreters.find_interpreter(inputs.python_version(runtime))
    if interp is None:
        raise UserError(
            f"no python{inputs.python_version(runtime)} on this machine to build the local base "
            "from; install it, or pass --base with an image pinned by digest or an OCI layout"
        )
    return interp


def cache_key(runtime: str, architecture: str) -> str:
    """Cheap: stats a few files, reads none."""
    interp = _interpreter(runtime, architecture)
    exe = Path(os.path.realpath(interp.path))
    stats = []
    for path in (exe, *exe.parent.parent.glob("lib/libpython*.so*"), _libc()):
        try:
            st = path.stat()
            stats.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            continue
    data = [LOCAL_BASE_VERSION, runtime, architecture, interp.version, ZLIB_ID, sorted(stats)]
    return sha256_json(data)


def _libc() -> Path:
    for d in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64", "/lib"):
        if (p := Path(d) / "libc.so.6").exists():
            return p
    return Path("/lib/libc.so.6")


def _ldd(paths: list[Path]) -> set[str]:
    """Every library the ELF files need, as the dynamic linker resolves them here."""
    found: set[str] = set()
    for chunk in range(0, len(paths), 64):
        out = subprocess.run(
            ["ldd", *map(str, paths[chunk : chunk + 64])],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        for line in out.stdout.splitlines():
            if "=>" in line:
                target = line.split("=>", 1)[1].split("(")[0].strip()
                if target.startswith("/"):
                    found.add(target)
            elif line.strip().startswith("/") and "(" in line:
                found.add(line.strip().split()[0])
    return found


def _system_lib(name: str) -> Path | None:
    for d in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/lib"):
        if (p := Path(d) / name).exists():
            return p
    return None


def _add_library(path: str, files: dict[str, LayerFile]) -> None:
    """Add a library at its real directory, following symlinks (which are kept as such)."""
    src = Path(path)
    inside = f"{os.path.realpath(src.parent).lstrip('/')}/{src.name}"
    if inside in files:
        return
    if src.is_symlink():
        target = os.readlink(src)
        files[inside] = LayerFile(inside, link=target)
        resolved = target if target.startswith("/") else os.path.join(src.parent, target)
        _add_library(resolved, files)
        return
    files[inside] = LayerFile(inside, src.read_bytes(), mode=0o755)


def build_local_base(runtime: str, architecture: str, store: BlobStore, progress: Progress) -> str:
    """Build the local base into the store; return its manifest digest (cached by cache_key)."""
    key = cache_key(runtime, architecture)
    record = store.load_record("base-local", key)
    if record and store.has(record["digest"]):
        return str(record["digest"])
    interp = _interpreter(runtime, architecture)
    py = _probe(interp)
    progress.step(f"building the local base from Python {py.version} ({py.executable})")
    files: dict[str, LayerFile] = {}
    sources = _stdlib(py, inputs.python_version(runtime), files)
    from lambda_pkg.bytecode import compile_sources, pyc_name

    progress.step(f"compiling {len(sources):,} standard library modules")
    pycs = compile_sources(interp, [("/" + rel, data) for rel, data in sources])
    for (rel, _), pyc in zip(sources, pycs, strict=True):
        if pyc is not None:  # a few test-data modules do not compile; CPython skips them too
            name = pyc_name(rel, interp.cache_tag)
            files[name] = LayerFile(name, pyc)
    _libraries(py, files)
    _system_files(files)
    progress.step(f"writing the base layer ({len(files):,} entries)")
    layer = write_layer(files.values(), store)
    digest = _write_image(layer, py.version, architecture, store)
    store.save_record("base-local", key, {"digest": digest, "python": py.version})
    return digest


def _stdlib(py: _Python, ver: str, files: dict[str, LayerFile]) -> list[tuple[str, bytes]]:
    """The interpreter, the standard library and its extension modules; returns the
    modules to compile."""
    dest = f"usr/local/lib/python{ver}"
    sources: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(py.stdlib):
        here = Path(dirpath)
        rel_dir = here.relative_to(py.stdlib).as_posix()
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIP_STDLIB and not d.startswith("config-") and Path(here, d) != py.dynload
        )  # fmt: skip
        for name in filenames:
            if name.endswith((".pyc", ".pyo", ".exe", ".a")):
                continue
            rel = f"{dest}/{name}" if rel_dir == "." else f"{dest}/{rel_dir}/{name}"
            data = (here / name).read_bytes()
            files[rel] = LayerFile(rel, data)
            if name.endswith(".py"):
                sources.append((rel, data))
    for so in sorted(py.dynload.glob("*.so")):
        if not _SKIP_DYNLOAD.match(so.name):
            rel = f"{dest}/lib-dynload/{so.name}"
            files[rel] = LayerFile(rel, so.read_bytes(), mode=0o755)
    exe = f"usr/local/bin/python{ver}"
    files[exe] = LayerFile(exe, py.executable.read_bytes(), mode=0o755)
    for alias in ("python3", "python"):
        files[f"usr/local/bin/{alias}"] = LayerFile(f"usr/local/bin/{alias}", link=f"python{ver}")
    return sources


def _libraries(py: _Python, files: dict[str, LayerFile]) -> None:
    """Every library the interpreter and its extension modules link, and libpython."""
    elf = [py.executable, *(Path(p) for p in sorted(py.dynload.glob("*.so")))]
    elf = [p for p in elf if not _SKIP_DYNLOAD.match(p.name)]
    if py.libpython:
        elf.append(py.libpython)
    extra = [p for n in WHEEL_SYSTEM_LIBS if (p := _system_lib(n))]
    for lib in sorted(_ldd(elf + extra) | {str(p) for p in extra}):
        if not (py.libpython and os.path.realpath(lib) == os.path.realpath(py.libpython)):
            _add_library(lib, files)
    if py.libpython:  # a system directory, so no RUNPATH or ld.so.cache is needed
        libdir = os.path.realpath(_libc().parent).lstrip("/")
        name = f"{libdir}/{py.libpython.name}"
        files[name] = LayerFile(name, Path(os.path.realpath(py.libpython)).read_bytes(), 0o755)
    for top in ("lib", "lib64", "bin", "sbin"):  # merged /usr, unless this host is not
        if not any(p.startswith(f"{top}/") for p in files):
            files[top] = LayerFile(top, link=f"usr/{top}")


def _system_files(files: dict[str, LayerFile]) -> None:
    files["etc/passwd"] = LayerFile("etc/passwd", PASSWD.encode())
    files["etc/group"] = LayerFile("etc/group", GROUP.encode())
    files["tmp"] = LayerFile("tmp", mode=0o1777, directory=True)
    if CA_BUNDLE.is_file():
        name = "etc/ssl/certs/ca-certificates.crt"
        files[name] = LayerFile(name, CA_BUNDLE.read_bytes())
    _add_tree(ZONEINFO, "usr/share/zoneinfo", files)


def _add_tree(root: Path, dest: str, files: dict[str, LayerFile]) -> None:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        for name in filenames:
            rel = f"{dest}/{name}" if rel_dir == "." else f"{dest}/{rel_dir}/{name}"
            path = here / name
            if path.is_symlink():
                files[rel] = LayerFile(rel, link=os.readlink(path))
            elif path.is_file():
                files[rel] = LayerFile(rel, path.read_bytes())


def _write_image(layer: Layer, version: str, architecture: str, store: BlobStore) -> str:
    config: dict[str, object] = {
        "config": {
            "Env": [
                "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG=C.UTF-8",
                f"PYTHON_VERSION={version}",
            ],
            "Cmd": ["python3"],
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [
            {"created_by": f"lambda_pkg local base: CPython {version} and the libraries it links"}
        ],
    }
    layers = [oci.Descriptor(oci.LAYER_GZIP, layer.digest, layer.size)]
    return store.put_image(architecture, config, layers)[1]
