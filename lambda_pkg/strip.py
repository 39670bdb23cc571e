"""What is left out of the dependencies, and why each rule is safe.

- bytecode (`__pycache__/`, `*.pyc`, `*.pyo`): compiled for some other Python; the
  builder compiles its own for the target (bytecode.py).
- `RECORD`, `INSTALLER`, `REQUESTED`, `direct_url.json` (and RECORD signatures):
  installer bookkeeping. `METADATA`, `entry_points.txt`, `top_level.txt` and the
  licences stay, because importlib.metadata reads them at run time.
- a wheel's `.data/scripts`, `.data/headers`, `.data/data`: console scripts, C headers
  and data files for an installed environment, which nothing imports.
- `doc`/`docs` directories that hold no Python module or library.
- `tests`/`test` directories inside packages, *unless* some other module of that
  package imports them (checked on the source text: `pkg.sub.tests`, or a relative
  `from .tests` / `from . import tests`). `testing` and `_testing` are never touched:
  numpy and pandas import those at import time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

BOOKKEEPING = frozenset(
    {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED", "direct_url.json"}
)
TEST_DIRS = frozenset({"tests", "test"})
DOC_DIRS = frozenset({"doc", "docs"})
CODE_SUFFIXES = (".py", ".so", ".pyd")


def simple_reason(name: str) -> str | None:
    """Why a dependency file is left out by a rule that needs no other file, or None."""
    parts = name.split("/")
    base = parts[-1]
    if "__pycache__" in parts or base.endswith((".pyc", ".pyo")):
        return "host bytecode"
    if len(parts) == 2 and parts[0].endswith(".dist-info") and base in BOOKKEEPING:
        return "installer bookkeeping"
    return None


def test_dirs(names: Iterable[str]) -> set[str]:
    """Candidate test directories ('pkg/sub/tests'), below the top level only."""
    found = set()
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts) - 1):
            if parts[i] in TEST_DIRS:
                found.add("/".join(parts[: i + 1]))
                break
    return found


def doc_dirs(names: Iterable[str]) -> set[str]:
    """doc/docs directories with no code below them."""
    names = list(names)
    candidates: set[str] = set()
    for name in names:
        parts = name.split("/")
        for i in range(len(parts) - 1):
            if parts[i] in DOC_DIRS and not parts[0].endswith(".dist-info"):
                candidates.add("/".join(parts[: i + 1]))
                break
    with_code = {
        c for c in candidates for n in names if n.startswith(c + "/") and n.endswith(CODE_SUFFIXES)
    }
    return candidates - with_code


_RELATIVE = re.compile(
    rb"^[ \t]*from[ \t]+(\.+)[ \t]*([\w.]*)[ \t]+import[ \t]+\(?([\w ,\t\\\n]*)", re.MULTILINE
)


def imported_test_dirs(candidates: set[str], sources: Mapping[str, bytes]) -> set[str]:
    """The candidates that some module outside them imports: these must stay.

    Only modules of the same top-level package are read: one package importing
    another's tests does not happen in practice, and this keeps the scan short.
    """
    keep: set[str] = set()
    by_top: dict[str, set[str]] = {}
    for cand in candidates:
        by_top.setdefault(cand.split("/", 1)[0], set()).add(cand)
    for top, cands in by_top.items():
        dotted = b"|".join(re.escape(c.replace("/", ".").encode()) for c in sorted(cands))
        absolute = re.compile(rb"\b(" + dotted + rb")\b")
        for name, src in sources.items():
            if not name.startswith(top + "/") or any(name.startswith(c + "/") for c in cands):
                continue
            keep.update(m.group(1).decode().replace(".", "/") for m in absolute.finditer(src))
            here = name.split("/")[:-1]
            for m in _RELATIVE.finditer(src):
                level, module = len(m.group(1)), m.group(2).decode()
                base = here[: len(here) - (level - 1)] if level > 1 else here
                if module:
                    parts = module.split(".")
                    keep.update("/".join(base + parts[: i + 1]) for i in range(len(parts)))
                else:
                    for word in re.split(rb"[\s,()\\]+", m.group(3)):
                        if word:
                            keep.add("/".join([*base, word.decode()]))
    return keep & candidates
