"""The Lambda's requirements file: which one, is it valid, and its fingerprint.

Order: --requirements FILE, else requirements_Version9.txt (the seed's name), else
requirements-lambda.txt (the seed's fallback), else none: the package is code only.
Every line is checked here, before pip runs, so a typo names its file and line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg.errors import UserError

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # the program's own venv may lack packaging; pip always vendors it
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.utils import canonicalize_name

DEFAULT_NAMES = ("requirements_Version9.txt", "requirements-lambda.txt")
_COMMENT = re.compile(r"(^|\s+)#.*$")
# File-level options pip understands and that still give binary wheels.
_PASS_THROUGH = {
    "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index",
    "--pre", "--prefer-binary", "--trusted-host", "--only-binary",
}  # fmt: skip
_INCLUDE = {"-r", "--requirement", "-c", "--constraint"}


@dataclass(frozen=True)
class Requirements:
    path: Path
    names: tuple[str, ...]  # canonical project names, in file order
    fingerprint: str  # sha256 of the normalised lines of the file and its includes

    @property
    def empty(self) -> bool:
        return not self.names


def find_requirements(
    project_dir: Path, explicit: Path | str | None
) -> tuple[Requirements | None, str | None]:
    """(requirements, note). The note says which file was used or why there is none."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"--requirements {path}: no such file")
        return parse(path), None
    for name in DEFAULT_NAMES:
        path = project_dir / name
        if path.is_file():
            note = None if name == DEFAULT_NAMES[0] else f"using the fallback {name}"
            return parse(path), note
    return None, (
        f"no requirements file ({' or '.join(DEFAULT_NAMES)}) in {project_dir}: "
        "building the code only, without dependencies"
    )


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read requirements ({exc})") from None
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        stripped = raw.rstrip()
        if stripped.endswith("\\"):  # a continuation line, as pip reads it
            pending += stripped[:-1] + " "
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            out.append((start, line))
    if pending.strip():
        out.append((start, _COMMENT.sub("", pending).strip()))
    return out


def parse(path: Path) -> Requirements:
    names: list[str] = []
    files: list[tuple[str, list[str]]] = []
    _parse_into(path, path.parent, names, files, seen=set())
    digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()
    return Requirements(path=path, names=tuple(names), fingerprint=digest)


def _parse_into(path: Path, base: Path, names: list[str], files: list, seen: set[Path]) -> None:
    resolved = path.resolve()
    if resolved in seen:
        return
    seen.add(resolved)
    kept: list[str] = []
    # Paths are recorded relative to the top file, so the checkout path never matters.
    rel = Path(*_relative_parts(resolved, base.resolve())).as_posix()
    files.append((rel, kept))
    for number, line in _logical_lines(path):
        where = f"{path.name}:{number}"
        tokens = line.split()
        if tokens[0].startswith("-"):
            if included := _option(where, path, tokens):
                _parse_into(included, base, names, files, seen)
            kept.append(" ".join(tokens))
            continue
        # Per-requirement options start at the first token beginning with '-'.
        cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        spec, options = " ".join(tokens[:cut]), tokens[cut:]
        for opt in options:
            if not opt.startswith("--hash") and not _is_hash_value(opt, options):
                raise UserError(f"{where}: unsupported option {opt!r} after {spec!r}")
        if spec.endswith(".whl"):
            names.append(canonicalize_name(Path(spec).name.split("-")[0]))
        else:
            try:
                req = Requirement(spec)
            except InvalidRequirement as exc:
                first = str(exc).splitlines()[0]
                raise UserError(
                    f"{where}: {spec!r} is not a valid requirement ({first}){_hint(spec)}"
                ) from None
            names.append(canonicalize_name(req.name))
        kept.append(" ".join(tokens))


_TYPOS = (
    (re.compile(r"=>"), ">="),
    (re.compile(r"=<"), "<="),
    (re.compile(r"(?<![=!<>~])=(?![=])"), "=="),
)


def _hint(spec: str) -> str:
    """'; did you mean yfinance>=1?' for the usual operator typos, else ''."""
    for pattern, right in _TYPOS:
        if pattern.search(spec):
            return f"; did you mean {pattern.sub(right, spec, count=1)!r}?"
    return ""


def _option(where: str, path: Path, tokens: list[str]) -> Path | None:
    """Check a file-level option line; return the file it includes, if any."""
    option, _, value = tokens[0].partition("=")
    value = value or (tokens[1] if len(tokens) > 1 else "")
    if option in ("-e", "--editable"):
        raise UserError(f"{where}: editable requirements cannot be packaged; use a version")
    if option == "--no-binary":
        raise UserError(f"{where}: --no-binary is not possible: Lambda targets need binary wheels")
    if option in _INCLUDE:
        if not value:
            raise UserError(f"{where}: {option} needs a file name")
        included = path.parent / value
        if not included.is_file():
            raise UserError(f"{where}: {option} {value}: no such file")
        return included
    if option not in _PASS_THROUGH:
        raise UserError(f"{where}: unsupported option {option!r} in a Lambda requirements file")
    return None


def _is_hash_value(token: str, options: list[str]) -> bool:
    # `--hash sha256:...` written as two tokens.
    i = options.index(token)
    return i > 0 and options[i - 1] == "--hash"


def _relative_parts(path: Path, base: Path) -> tuple[str, ...]:
    try:
        return path.relative_to(base).parts
    except ValueError:
        common = 0
        for a, b in zip(path.parts, base.parts, strict=False):
            if a != b:
                break
            common += 1
        return ("..",) * (len(base.parts) - common) + path.parts[common:]
