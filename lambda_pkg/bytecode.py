"""Bytecode for the target Python, compiled by an interpreter of that version.

Each .pyc uses unchecked-hash invalidation (PEP 552): its header holds a hash of
the source instead of an mtime, so the bytes do not depend on when files were
touched, and the runtime never stats the source to validate it. The file name
given to the compiler is the path inside the package, never a host path.

Work is spread over one worker process per core; sources travel over stdin and
.pyc bytes come back over stdout, so nothing is written to disk.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lambda_pkg.errors import InternalError, UserError
from lambda_pkg.interpreters import Interpreter

_WORKER = r"""
import importlib._bootstrap_external as be, importlib.util as u, struct, sys, warnings
warnings.simplefilter("ignore")  # SyntaxWarnings in third-party code are not our concern
data = sys.stdin.buffer.read()
out, pos = bytearray(), 0
while pos < len(data):
    n, m = struct.unpack_from("<II", data, pos); pos += 8
    name = data[pos:pos + n].decode(); pos += n
    src = data[pos:pos + m]; pos += m
    try:
        code = compile(src, name, "exec", dont_inherit=True)
        pyc, ok = be._code_to_hash_pyc(code, u.source_hash(src), False), 0
    except Exception as exc:  # SyntaxError, ValueError (NUL bytes), RecursionError...
        pyc, ok = ("%s: %s" % (type(exc).__name__, exc)).encode(), 1
    out += struct.pack("<BI", ok, len(pyc)) + pyc
sys.stdout.buffer.write(out)
"""


def pyc_name(py_name: str, cache_tag: str) -> str:
    """'pkg/mod.py' -> 'pkg/__pycache__/mod.cpython-312.pyc' (where the import system looks)."""
    head, _, base = py_name.rpartition("/")
    stem = base[: -len(".py")]
    prefix = f"{head}/" if head else ""
    return f"{prefix}__pycache__/{stem}.{cache_tag}.pyc"


def _run_worker(interp: Interpreter, items: Sequence[tuple[str, bytes]]) -> list[bytes | None]:
    payload = bytearray()
    for name, src in items:
        raw = name.encode()
        payload += struct.pack("<II", len(raw), len(src)) + raw + src
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        [interp.path, "-I", "-S", "-B", "-c", _WORKER],
        input=bytes(payload), capture_output=True, env=env, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise InternalError(f"bytecode compiler {interp.path} failed: {tail[0]}")
    results: list[bytes | None] = []
    data, pos = proc.stdout, 0
    while pos < len(data):
        failed, length = struct.unpack_from("<BI", data, pos)
        pos += 5
        results.append(None if failed else data[pos : pos + length])
        pos += length
    if len(results) != len(items):
        raise InternalError(f"bytecode compiler returned {len(results)} of {len(items)} files")
    return results


def compile_sources(
    interp: Interpreter, items: Sequence[tuple[str, bytes]], workers: int | None = None
) -> list[bytes | None]:
    """The .pyc bytes for each (name in package, source), or None where the source
    does not compile for the target (it then ships without bytecode, as pip does)."""
    if not items:
        return []
    workers = max(1, min(workers or os.cpu_count() or 1, len(items)))
    # Split into chunks of similar size, twice as many as workers to even out the load.
    order = sorted(range(len(items)), key=lambda i: -len(items[i][1]))
    chunks: list[list[int]] = [[] for _ in range(min(len(items), workers * 2))]
    loads = [0] * len(chunks)
    for i in order:
        j = loads.index(min(loads))
        chunks[j].append(i)
        loads[j] += len(items[i][1]) + 1
    results: list[bytes | None] = [None] * len(items)
    with ThreadPoolExecutor(workers) as pool:
        done = pool.map(lambda c: _run_worker(interp, [items[i] for i in c]), chunks)
        for chunk, out in zip(chunks, done, strict=True):
            for i, pyc in zip(chunk, out, strict=True):
                results[i] = pyc
    return results


_KEEP_CACHED = 4096


def compile_cached(
    interp: Interpreter,
    items: Sequence[tuple[str, bytes]],
    cache_dir: Path,
    keep: int = _KEEP_CACHED,
) -> list[bytes | None]:
    """compile_sources, with each .pyc kept under cache_dir by (bytecode format, name,
    source hash), the newest `keep` of them: a code-only change compiles only the files
    that changed, and a dependency module that another build already compiled for this
    Python (the image's numpy, after the package's) is not compiled again."""
    keys = [
        hashlib.sha256(f"{interp.bytecode_id}\0{name}\0".encode() + src).hexdigest()
        for name, src in items
    ]
    results: list[bytes | None] = []
    missing: list[int] = []
    for i, key in enumerate(keys):
        try:
            results.append((cache_dir / f"{key}.pyc").read_bytes())
        except OSError:
            results.append(None)
            missing.append(i)
    if missing:
        fresh = compile_sources(interp, [items[i] for i in missing])
        cache_dir.mkdir(parents=True, exist_ok=True)
        for i, pyc in zip(missing, fresh, strict=True):
            results[i] = pyc
            if pyc is not None:
                tmp = cache_dir / f".{keys[i]}.{os.getpid()}.tmp"
                tmp.write_bytes(pyc)
                os.replace(tmp, cache_dir / f"{keys[i]}.pyc")
        cached = sorted(cache_dir.glob("*.pyc"), key=lambda p: p.stat().st_mtime)
        for old in cached[: max(0, len(cached) - keep)]:
            old.unlink(missing_ok=True)
    return results


def compile_code(
    interp: Interpreter, items: Sequence[tuple[str, bytes]], cache_dir: Path, prefix: str = ""
) -> list[bytes]:
    """The .pyc of each of the project's own modules (name, source), compiled as
    prefix + name (the path the runtime imports it from; the image's /opt/ctb/app/).
    Unlike a dependency's, a module of the project that does not compile is an error."""
    pycs = compile_cached(interp, [(prefix + name, src) for name, src in items], cache_dir)
    for (name, _), pyc in zip(items, pycs, strict=True):
        if pyc is None:
            raise UserError(f"{name} does not compile for Python {interp.version}; fix the syntax")
    return [pyc for pyc in pycs if pyc is not None]
