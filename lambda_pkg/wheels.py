"""Reading a downloaded wheel as untrusted input: every member checked, nothing run.

A wheel is a zip. Each member is inflated once, with its output capped at the size the
zip declares, and checked against the CRC and against the wheel's own RECORD (sha256
and size): a member RECORD does not list, a RECORD entry with no member, or bytes that
differ from RECORD mean a corrupt or tampered wheel. Names must be clean relative
paths; the `.dist-info` directory must be the wheel's own. What could run code at
interpreter start-up (a top-level `.pth` file) or hold credentials (a `.env` file, a
key in any file, whatever its encoding) is refused. The compressed bytes of each kept
member are then copied into the package as they are.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lambda_pkg import limits
from lambda_pkg.audit import is_shared_object, scan_secrets
from lambda_pkg.errors import UserError
from lambda_pkg.sources import is_env_file
from lambda_pkg.zipper import DEFLATED, STORED, make_entry, normalize_mode

_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")
_CHUNK = 1 << 20


@dataclass
class Member:
    name: str  # path in the package
    dist: str
    mode: int
    method: int
    crc: int
    size: int
    raw: memoryview | bytes  # compressed bytes as stored in the wheel


@dataclass(frozen=True)
class Wheel:
    dist: str  # canonical name
    version: str
    filename: str
    sha256: str
    members: list[Member]
    contents: dict[str, bytes]  # the modules and libraries, inflated (later steps read them)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_name(filename: str) -> tuple[str, str]:
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise UserError(f"{filename}: not a wheel; only binary wheels can be packaged")
    return canonical(match["name"]), match["version"]


def _check_member_name(wheel: str, name: str) -> None:
    parts = name.split("/")
    if (
        name.startswith("/")
        or _BAD_CHARS.search(name)
        or any(p in ("", ".", "..") for p in parts)
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise UserError(
            f"{wheel}: unsafe path {name!r} in the wheel (absolute, '..', a backslash or a "
            "control character); the wheel is malformed or hostile: drop the dependency"
        )


def _record(wheel: str, zf: zipfile.ZipFile, dist_info: str) -> dict[str, tuple[str, int]]:
    try:
        text = zf.read(f"{dist_info}/RECORD").decode("utf-8")
    except KeyError:
        raise UserError(f"{wheel}: no {dist_info}/RECORD; the wheel is malformed") from None
    except UnicodeDecodeError:
        raise UserError(f"{wheel}: its RECORD is not UTF-8; the wheel is malformed") from None
    rows: dict[str, tuple[str, int]] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        if len(row) != 3:
            raise UserError(f"{wheel}: malformed RECORD row {row!r}")
        path, digest, size = row
        if path.startswith(f"{dist_info}/RECORD"):
            continue
        algo, _, value = digest.partition("=")
        if algo != "sha256" or not size.isdigit():
            raise UserError(
                f"{wheel}: RECORD has no sha256 and size for {path}; the wheel is malformed"
            )
        rows[path] = (value, int(size))
    return rows


def _inflate(wheel: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, never more than the zip declares (a bomb stops there)."""
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                out += chunk
                if len(out) > info.file_size:
                    break
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
        raise UserError(
            f"{wheel}: member {info.filename} is corrupt ({exc}); drop or re-download it"
        ) from None
    if len(out) != info.file_size:
        raise UserError(
            f"{wheel}: member {info.filename} does not hold the {info.file_size:,} bytes its "
            "header declares; the wheel is corrupt or hostile"
        )
    return bytes(out)


def read_wheel(path: Path, *, excluded: frozenset[str]) -> Wheel:
    """Read and police one wheel. `excluded`: top-level names of distributions left out
    of the package (boto3 & co.), which another distribution may not install."""
    wheel = path.name
    dist, version = parse_name(wheel)
    blob = path.read_bytes()
    data = memoryview(blob)
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as exc:
        raise UserError(f"{wheel}: not a valid wheel ({exc})") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        declared = sum(i.file_size for i in infos)
        if declared > limits.UNZIPPED_MAX:
            raise UserError(
                f"package too large: {wheel} alone unpacks to {declared:,} bytes, over "
                f"Lambda's {limits.UNZIPPED_MAX:,}-byte limit (unzipped); drop the dependency"
            )
        names = [i.filename for i in infos]
        for name in names:
            _check_member_name(wheel, name)
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise UserError(f"{wheel}: {dup} appears twice in the wheel; the wheel is malformed")
        tops = {n.split("/", 1)[0] for n in names if "/" in n}
        dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
        own = [
            t
            for t in dist_infos
            if canonical(t.removesuffix(".dist-info").rsplit("-", 1)[0]) == dist
        ]
        if len(dist_infos) != 1 or not own:
            raise UserError(
                f"{wheel}: expected one {dist}-{version}.dist-info directory, found "
                f"{', '.join(dist_infos) or 'none'}; the wheel is malformed"
            )
        dist_info = own[0]
        data_dir = dist_info.removesuffix(".dist-info") + ".data"
        record = _record(wheel, zf, dist_info)
        unlisted = [
            n
            for n in names
            if n not in record
            and not n.startswith(f"{dist_info}/RECORD")
            and n.removeprefix(f"{dist_info}/") not in _SIGNATURES
        ]
        if unlisted or set(record) - set(names):
            what = unlisted[0] if unlisted else sorted(set(record) - set(names))[0]
            raise UserError(
                f"{wheel}: RECORD does not match the wheel's contents ({what}); the wheel is "
                "corrupt or tampered with: drop or re-download it"
            )
        members: list[Member] = []
        contents: dict[str, bytes] = {}
        for info in infos:
            content = _inflate(wheel, zf, info)
            _check_content(wheel, info.filename, content, record.get(info.filename))
            name = info.filename
            if name.startswith(data_dir + "/"):
                # purelib/platlib install into site-packages; scripts, headers and data
                # are for an installed environment and are not packaged.
                kind, _, rest = name[len(data_dir) + 1 :].partition("/")
                if kind not in ("purelib", "platlib") or not rest:
                    continue
                name = rest
            _police(wheel, dist, name, excluded)
            members.append(_member(wheel, data, info, name=name, dist=dist, content=content))
            if name.endswith(".py") or is_shared_object(name):
                contents[name] = content
    return Wheel(
        dist=dist,
        version=version,
        filename=wheel,
        sha256=hashlib.sha256(blob).hexdigest(),
        members=members,
        contents=contents,
    )


def _check_content(wheel: str, name: str, content: bytes, recorded: tuple[str, int] | None) -> None:
    if recorded is not None:
        value, size = recorded
        got = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        if size != len(content) or got.decode() != value.rstrip("="):
            raise UserError(
                f"{wheel}: {name} does not match its RECORD entry (sha256 or size); "
                "the wheel is corrupt or tampered with: drop or re-download it"
            )
    if is_env_file(name.rsplit("/", 1)[-1]):
        raise UserError(
            f"secret scan: {wheel}: {name}:1: a .env file would ship in the package; "
            "drop the dependency"
        )
    if hits := scan_secrets(name, content):
        raise UserError(
            f"secret scan: {wheel}: {hits[0]}; drop the dependency or pin a clean version"
        )


def _police(wheel: str, dist: str, name: str, excluded: frozenset[str]) -> None:
    top = name.split("/", 1)[0]
    if "/" not in name and name.endswith(".pth"):
        raise UserError(
            f"{wheel}: {name} is a .pth file, which would run code whenever Python starts "
            "where it is installed; drop the dependency"
        )
    module = top.removesuffix(".py").split(".", 1)[0] if "/" not in name else top
    if module in excluded and dist != canonical(module):
        raise UserError(
            f"{wheel}: installs {name}, shadowing {module}, which the Lambda runtime provides; "
            "drop the dependency (or build with --bundle-boto3 to ship the real one)"
        )


def _member(
    wheel: str,
    data: memoryview,
    info: zipfile.ZipInfo,
    *,
    name: str,
    dist: str,
    content: bytes,
) -> Member:
    offset = info.header_offset
    if bytes(data[offset : offset + 4]) != b"PK\x03\x04":
        raise UserError(f"{wheel}: corrupt member {info.filename!r}")
    n, e = struct.unpack_from("<HH", data, offset + 26)
    start = offset + 30 + n + e
    raw: memoryview | bytes = data[start : start + info.compress_size]
    method = info.compress_type
    if method not in (STORED, DEFLATED):  # bzip2/lzma: recompress to plain deflate
        entry = make_entry(name, content)
        method, raw = entry.method, bytes(entry.data)
    mode = normalize_mode(info.external_attr >> 16)
    return Member(name, dist, mode, method, zlib.crc32(content), len(content), raw)
