"""A function's (or layer's) code, as Lambda would run it: the pinned bytes, checked
against the CodeSha256 the function declares, unpacked once per sha256 into the cache
(treecache.py: never used half-unpacked or changed since).
"""

from __future__ import annotations

import base64
import hashlib
import io
import stat
import zipfile
from pathlib import Path
from typing import Any

from localcloud import treecache
from localcloud.registry import CodeSource, S3Code, ZipCode


class CodeError(RuntimeError):
    """The code cannot be fetched, does not match, or cannot be unpacked."""


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def fetch(source: CodeSource, s3: Any) -> bytes:
    if isinstance(source, ZipCode):
        try:
            return source.path.read_bytes()
        except OSError as exc:
            raise CodeError(f"cannot read {source.path}: {exc}") from None
    return _fetch_s3(source, s3)


def _fetch_s3(source: S3Code, s3: Any) -> bytes:
    params = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id:
        params["VersionId"] = source.version_id
    try:
        body: bytes = s3.get_object(**params)["Body"].read()
    except Exception as exc:  # botocore's ClientError and connection errors alike
        raise CodeError(f"cannot read {source.describe()}: {exc}") from None
    return body


def fetch_checked(sources: list[CodeSource], expected_b64: str | None, s3: Any, what: str) -> bytes:
    """The first source whose bytes have the expected sha256 (any, if none is expected)."""
    if not sources:
        raise CodeError(
            f"the local cloud has no record of where {what}'s code came from: create or "
            "update it through the local cloud's endpoint (its S3 location, with "
            "S3ObjectVersion, or a ZipFile), so the pinned code is known"
        )
    problems = []
    for source in sources:
        data = fetch(source, s3)
        actual = sha256_b64(data)
        if expected_b64 is None or actual == expected_b64:
            return data
        problems.append(f"{source.describe()} has sha256 {actual}")
    raise CodeError(
        f"{what} declares CodeSha256 {expected_b64}, but {'; '.join(problems)}. moto computes "
        "CodeSha256 from the object that is current when the function is created or "
        "updated (it ignores S3ObjectVersion), so a pinned older version disagrees: "
        "deploy the pinned bytes as a ZipFile, or make that version current first"
    )


def unpacked(data: bytes, sha256: str, cache: Path) -> tuple[Path, bool]:
    """(`data` unzipped, whether it was before): <cache>/<sha256>/tree, by the hex digest
    the caller checked the bytes against, so versions, restarts and runs share it. Kept
    while intact (treecache.py): sealed, read-only, unzipped afresh if changed."""
    return treecache.cached_tree(cache, sha256, lambda tree: extract(data, tree))


def extract(data: bytes | Path, dest: Path) -> Path:
    """`data` (a zip's bytes or path) unzipped into `dest`, as Lambda unpacks code: no
    entry may land outside it, and each file keeps its mode bits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile as exc:
        raise CodeError(f"the code is not a zip file ({exc})") from None
    root = dest.resolve()
    with archive:
        for info in archive.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(root):
                raise CodeError(f"zip entry {info.filename!r} escapes the code directory")
        archive.extractall(dest)
        # zipfile drops permissions; Lambda keeps them (an executable stays one).
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                (dest / info.filename).chmod(mode | stat.S_IRUSR)
    return dest
