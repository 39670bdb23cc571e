"""What goes into the package from the project: backend/, aws/ and the bot's root *.py.

Never the Pulumi program (__main__.py, infra/, lambda_pkg/), tests, the program's
own requirements.txt, .git, virtualenvs or caches: those are simply never walked,
because only the two runtime directories and root *.py files are looked at.

Only regular files inside those places are packaged. A symlink to a file is followed
only when its target is itself inside backend/, aws/ or the project root (a link to
/proc/self/environ would ship the build's environment); a FIFO, socket or device, a
dangling link, a name that is not UTF-8 and a file larger than Lambda's unzipped limit
are refused before anything is read. Symlinked directories are never followed.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg import limits
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
# A zip entry name is '/'-separated UTF-8; control characters and backslashes in a
# name are legal on Linux but read as something else by unzip tools and by verify.
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f\\]")
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass(frozen=True)
class SourceFile:
    arcname: str  # path inside the zip, always with '/'
    path: Path  # the file read: the link's target when the source is a symlink
    mode: int  # normalised: 0o644 or 0o755
    size: int
    # (size, mtime_ns, inode, ctime_ns): when none of these changed, the content
    # hash recorded for them still holds (statcache.py).
    stamp: tuple[int, int, int, int]

    def read(self) -> bytes:
        """The bytes, read without following a link swapped in since the walk."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise UserError(f"{self.arcname} is no longer a regular file; build again")
                return fh.read()
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


def check_name(rel: str) -> None:
    """A project path that cannot be a clean zip entry name is refused by name."""
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise UserError(
            f"{shown}: the file name is not valid UTF-8; rename it (zip entry names are UTF-8)"
        ) from None
    if _BAD_NAME.search(rel):
        raise UserError(
            f"{rel!r}: the file name holds a control character or a backslash; rename it"
        )


def _size(n: int) -> str:
    return f"{n:,} bytes"


class _Walker:
    def __init__(self, project_dir: Path) -> None:
        self.project = project_dir
        real = Path(os.path.realpath(project_dir))
        self.real_project = real
        self.allowed = [real / d for d in SOURCE_DIRS]
        self.found: list[SourceFile] = []

    def _inside_sources(self, target: Path) -> bool:
        if target.parent == self.real_project:
            return True
        return any(target.is_relative_to(d) for d in self.allowed)

    def add(self, path: Path, st: os.stat_result) -> None:
        rel = path.relative_to(self.project).as_posix()
        check_name(rel)
        if is_env_file(path.name):
            raise UserError(
                f"secret scan: {rel}:1: a .env file would ship in the package; "
                "remove it (keep secrets in Secrets Manager) or rename it to .env.example"
            )
        read_path = path
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(path))
            if not self._inside_sources(target):
                raise UserError(
                    f"{rel} is a symlink to {os.readlink(path)} ({target}), outside the "
                    "project's backend/ and aws/; replace the link with the file itself or "
                    "remove it"
                )
            try:
                st = os.stat(target, follow_symlinks=False)
            except OSError:
                raise UserError(
                    f"{rel} is a symlink to {os.readlink(path)}, which does not exist; remove it"
                ) from None
            read_path = target
        kind = _KINDS.get(stat.S_IFMT(st.st_mode))
        if kind or not stat.S_ISREG(st.st_mode):
            raise UserError(
                f"{rel} is {kind or 'not a regular file'}; remove it "
                "(only regular files are packaged)"
            )
        if st.st_size > limits.UNZIPPED_MAX:
            raise UserError(
                f"package too large: {rel} alone is {_size(st.st_size)}, over Lambda's "
                f"{_size(limits.UNZIPPED_MAX)} unzipped limit; remove it (keep large data in S3)"
            )
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        self.found.append(SourceFile(rel, read_path, normalize_mode(st.st_mode), st.st_size, stamp))

    def walk(self, directory: Path) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            rel = directory.relative_to(self.project).as_posix()
            raise UserError(f"cannot list {rel}: {exc.strerror or exc}") from None
        for entry in entries:
            name = entry.name
            path = Path(entry.path)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                # Symlinked directories are not followed (S_ISDIR of lstat is false
                # for them), so the walk never loops and never leaves the project.
                if not (
                    name.startswith(".")
                    or name in SKIPPED_DIRS
                    or name.endswith(".egg-info")
                    or (path / "pyvenv.cfg").exists()
                ):
                    check_name(path.relative_to(self.project).as_posix())
                    self.walk(path)
                continue
            if stat.S_ISLNK(st.st_mode) and os.path.isdir(path):
                continue
            if is_env_file(name):
                self.add(path, st)  # refused by name
            if name.startswith(".") or name.endswith(SKIPPED_SUFFIXES) or name == "conftest.py":
                continue
            self.add(path, st)


def collect_sources(project_dir: Path) -> list[SourceFile]:
    """The sorted source files of the package. Raises UserError for a missing
    directory, an empty project, a .env file, a link out of the project, a special
    file, a bad file name or a file over the size limit."""
    if not project_dir.exists():
        raise UserError(f"source directory {project_dir} does not exist; pass --source DIR")
    if not project_dir.is_dir():
        raise UserError(f"source {project_dir} is not a directory; pass --source DIR")
    walker = _Walker(project_dir)
    for entry in sorted(os.scandir(project_dir), key=lambda e: e.name):
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            continue
        if (
            name.endswith(".py")
            and name not in ROOT_PY_EXCLUDED
            and not name.startswith(("test_", "."))
        ):
            walker.add(Path(entry.path), entry.stat(follow_symlinks=False))
    for top in SOURCE_DIRS:
        root = project_dir / top
        if root.is_dir() and not root.is_symlink():
            walker.walk(root)
    found = walker.found
    if not found:
        raise UserError(
            f"no sources in {project_dir}: expected backend/, aws/ or root *.py files; "
            "pass the project root with --source DIR"
        )
    total = sum(s.size for s in found)
    if total > limits.UNZIPPED_MAX:
        largest = max(found, key=lambda s: s.size)
        raise UserError(
            f"package too large: the project's files add up to {_size(total)}, over Lambda's "
            f"{_size(limits.UNZIPPED_MAX)} unzipped limit (largest: {largest.arcname}, "
            f"{_size(largest.size)}); remove large files from backend/ and aws/"
        )
    found.sort(key=lambda s: s.arcname)
    return found
