"""What goes into the package from the project: backend/, aws/ and the bot's root *.py.

Never the Pulumi program (__main__.py, infra/, lambda_pkg/), tests, the program's
own requirements.txt, .git, virtualenvs or caches: those are simply never walked,
because only the two runtime directories and root *.py files are looked at.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.errors import UserError
from lambda_pkg.zipper import normalize_mode

# The runtime's directories (docs/DESIGN.md decision 7).
SOURCE_DIRS = ("backend", "aws")
# Root *.py files that belong to the Pulumi program or the tooling, not to the bot.
ROOT_PY_EXCLUDED = frozenset({"__main__.py", "conftest.py", "setup.py", "noxfile.py"})
# Directory names never walked inside backend/ and aws/.
SKIPPED_DIRS = frozenset({"__pycache__", "tests", "node_modules"})
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
# .env templates carry no values by convention; they are left out, not refused.
ENV_TEMPLATES = frozenset({"example", "sample", "template", "dist"})


@dataclass(frozen=True)
class SourceFile:
    arcname: str  # path inside the zip, always with '/'
    path: Path
    mode: int  # normalised: 0o644 or 0o755

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {self.arcname}: {exc.strerror or exc}") from None


def is_env_file(name: str) -> bool:
    """`.env`, `.env.local`, `prod.env`, ...: files that hold credentials by convention.
    Templates (`.env.example`, `example.env`, ...) hold none."""
    if name == ".env":
        return True
    if name.startswith(".env."):
        return name.split(".", 2)[2].lower() not in ENV_TEMPLATES
    if name.endswith(".env") and len(name) > 4:
        return name[:-4].lower().lstrip(".") not in ENV_TEMPLATES
    return False


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").exists()


def collect_sources(project_dir: Path) -> list[SourceFile]:
    """The sorted source files of the package. Raises UserError for a missing
    directory, an empty project or a .env file (see audit.scan_secrets)."""
    if not project_dir.exists():
        raise UserError(f"source directory {project_dir} does not exist; pass --source DIR")
    if not project_dir.is_dir():
        raise UserError(f"source {project_dir} is not a directory; pass --source DIR")
    found: list[SourceFile] = []
    for entry in sorted(project_dir.iterdir()):
        name = entry.name
        if (
            entry.is_file()
            and name.endswith(".py")
            and name not in ROOT_PY_EXCLUDED
            and not name.startswith("test_")
        ):
            found.append(_source(project_dir, entry))
    for top in SOURCE_DIRS:
        root = project_dir / top
        if root.is_dir() and not root.is_symlink():
            found.extend(_walk(project_dir, root))
    if not found:
        raise UserError(
            f"no sources in {project_dir}: expected backend/, aws/ or root *.py files; "
            "pass the project root with --source DIR"
        )
    found.sort(key=lambda s: s.arcname)
    return found


def _walk(project_dir: Path, root: Path) -> list[SourceFile]:
    out: list[SourceFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Pruning dirnames in place stops os.walk from descending; symlinked
        # directories are not followed (os.walk's default), so no loops.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and not d.endswith(".egg-info")
            and not _is_venv(here / d)
        )
        for name in sorted(filenames):
            if is_env_file(name):
                rel = (here / name).relative_to(project_dir).as_posix()
                raise UserError(
                    f"secret scan: {rel}:1: a .env file would ship in the package; "
                    "remove it (keep secrets in Secrets Manager) or rename it to .env.example"
                )
            if name.startswith(".") or name.endswith(SKIPPED_SUFFIXES) or name == "conftest.py":
                continue
            path = here / name
            if not path.is_file():  # dangling symlink, socket, ...
                continue
            out.append(_source(project_dir, path))
    return out


def _source(project_dir: Path, path: Path) -> SourceFile:
    arcname = path.relative_to(project_dir).as_posix()
    return SourceFile(arcname, path, normalize_mode(path.stat().st_mode))


def fingerprint(sources: list[SourceFile]) -> list[list[object]]:
    """Path, mode and content hash of each file: what the input hash sees.
    Neither mtimes nor the checkout path are part of it."""
    return [[s.arcname, s.mode, hashlib.sha256(s.read()).hexdigest()] for s in sources]
