"""The Lambda's requirements file: which one, is it valid, and its fingerprint.

Order: --requirements FILE, else requirements_Version9.txt (the seed's name), else
requirements-lambda.txt (the seed's fallback), else none: the package is code only.
Every line is checked here, before any resolver runs, so a typo names its file and line.

This file is the human-edited *input*; builds install its lock (lock.py). Only what
keeps every package a binary wheel from the index, pinned by hash in the lock, is
accepted: name @ URL, paths, VCS links, -e, index and find-links options, ${VAR}
expansion and per-requirement build options are refused, because each either runs a
dependency's code (an sdist's setup.py) or changes where packages come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambda_pkg.artifact import sha256_json
from lambda_pkg.errors import UserError

if TYPE_CHECKING:
    from lambda_pkg.statcache import HashCache

DEFAULT_NAMES = ("requirements_Version9.txt", "requirements-lambda.txt")
_COMMENT = re.compile(r"(^|\s+)#.*$")
# File-level options that leave every package a binary wheel from the index.
_PASS_THROUGH = {"--pre", "--prefer-binary", "--only-binary"}
_INCLUDE = {"-r", "--requirement", "-c", "--constraint"}
_SOURCE_OPTIONS = {
    "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index",
    "--trusted-host", "--index", "--default-index",
}  # fmt: skip
_BUILD_OPTIONS = {
    "--config-settings", "--global-option", "--install-option", "--use-pep517",
    "--no-build-isolation", "--use-feature", "--editable", "-e", "--src",
}  # fmt: skip
# What pip would read as a URL, a path or a VCS link rather than a project name.
_NOT_A_NAME = re.compile(r"(://|^[a-z]+\+|^[./~]|^[A-Za-z]:[\\/]|[\\/]|\.(whl|zip|tar\.gz|tgz)$)")
_MAX_DEPTH = 10
FIX_SOURCE = "pin a released version from the index instead (name==version)"


@dataclass(frozen=True)
class Requirements:
    path: Path
    names: tuple[str, ...]  # canonical project names, in file order
    fingerprint: str  # sha256 of the normalised lines of the file and its includes
    files: tuple[Path, ...] = ()  # the file and every file it includes

    @property
    def empty(self) -> bool:
        return not self.names


def find_requirements(
    project_dir: Path, explicit: Path | str | None, cache: HashCache | None = None
) -> tuple[Requirements | None, str | None]:
    """(requirements, note). The note says which file was used or why there is none.
    With a cache, an unchanged file (and includes) is not parsed again."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"--requirements {path}: no such file")
        return _parse_cached(path, cache), None
    for name in DEFAULT_NAMES:
        path = project_dir / name
        if path.is_file():
            note = None if name == DEFAULT_NAMES[0] else f"using the fallback {name}"
            return _parse_cached(path, cache), note
    return None, (
        f"no requirements file ({' or '.join(DEFAULT_NAMES)}) in {project_dir}: "
        "building the code only, without dependencies"
    )


def _parse_cached(path: Path, cache: HashCache | None) -> Requirements:
    if cache is None:
        return parse(path)
    key = f"requirements:{path.resolve()}"
    if isinstance(memo := cache.recall(key), dict):
        return Requirements(
            path=path,
            names=tuple(memo["names"]),
            fingerprint=memo["fingerprint"],
            files=tuple(Path(f) for f in memo["files"]),
        )
    reqs = parse(path)
    value = {"names": list(reqs.names), "fingerprint": reqs.fingerprint,
             "files": [str(f) for f in reqs.files]}  # fmt: skip
    cache.remember(key, list(reqs.files), value)
    return reqs


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as pip reads it
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; save the requirements file as UTF-8") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read requirements ({exc.strerror or exc})") from None
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
    path = Path(path)
    names: list[str] = []
    files: list[tuple[str, list[str]]] = []
    done: set[Path] = set()
    _parse_into(path, path.resolve().parent, names, files, chain=[], done=done)
    digest = sha256_json(files)  # lists only: the locks' fingerprints stay as they were
    return Requirements(
        path=path, names=tuple(names), fingerprint=digest, files=tuple(sorted(done))
    )


def _parse_into(
    path: Path,
    base: Path,
    names: list[str],
    files: list[tuple[str, list[str]]],
    *,
    chain: list[Path],
    done: set[Path],
) -> None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    resolved = path.resolve()
    if resolved in done:  # included twice (a diamond), not a cycle: read once
        return
    done.add(resolved)
    kept: list[str] = []
    # Paths are recorded relative to the top file, so the checkout path never matters.
    rel = resolved.relative_to(base).as_posix()
    files.append((rel, kept))
    for number, line in _logical_lines(path):
        where = f"{path.name}:{number}"
        if "${" in line:
            raise UserError(
                f"{where}: {line.split('${', 1)[1].split('}', 1)[0]!r} in ${{...}} would be read "
                "from the build's environment by pip; write the value itself"
            )
        tokens = line.split()
        if tokens[0].startswith("-"):
            if included := _option(where, path, tokens, base):
                if included.resolve() == resolved or included.resolve() in {
                    p.resolve() for p in chain
                }:
                    cycle = " -> ".join(p.name for p in [*chain, path, included])
                    raise UserError(
                        f"{where}: {tokens[0]} {included.name} includes a file that includes "
                        f"it ({cycle}); remove the line"
                    )
                if len(chain) >= _MAX_DEPTH:
                    raise UserError(f"{where}: includes nest deeper than {_MAX_DEPTH} files")
                _parse_into(included, base, names, files, chain=[*chain, path], done=done)
            kept.append(" ".join(tokens))
            continue
        # Per-requirement options start at the first token beginning with '-'.
        cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        spec, options = " ".join(tokens[:cut]), tokens[cut:]
        for opt in options:
            if not opt.startswith("--hash") and not _is_hash_value(opt, options):
                raise UserError(f"{where}: unsupported option {opt!r} after {spec!r}")
        head = spec.split(";", 1)[0].strip()
        if _NOT_A_NAME.search(head.split("@", 1)[0].strip()) or "@" in head:
            raise UserError(
                f"{where}: {spec!r} is a URL, path or VCS requirement, which can run a "
                f"package's build code and skips the index; {FIX_SOURCE}"
            )
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


def _option(where: str, path: Path, tokens: list[str], base: Path) -> Path | None:
    """Check a file-level option line; return the file it includes, if any."""
    option, _, value = tokens[0].partition("=")
    value = value or (tokens[1] if len(tokens) > 1 else "")
    if option in ("-e", "--editable"):
        raise UserError(f"{where}: editable requirements cannot be packaged; use a version")
    if option == "--no-binary":
        raise UserError(f"{where}: --no-binary is not possible: Lambda targets need binary wheels")
    if option in _SOURCE_OPTIONS:
        raise UserError(
            f"{where}: {option} in a requirements file changes where packages come from; "
            "remove it (give an index to the lock command: python -m lambda_pkg.lock "
            "--index-url URL)"
        )
    if option in _BUILD_OPTIONS:
        raise UserError(
            f"{where}: {option} configures building a package from source; remove it "
            "(only binary wheels are packaged)"
        )
    if option in _INCLUDE:
        if not value:
            raise UserError(f"{where}: {option} needs a file name")
        if "://" in value:
            raise UserError(f"{where}: {option} {value}: only local files can be included")
        included = path.parent / value
        if not included.resolve().is_relative_to(base):
            raise UserError(
                f"{where}: {option} {value} is outside the project ({base}); keep included "
                "requirements files beside the one that includes them"
            )
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
