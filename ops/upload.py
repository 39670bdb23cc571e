"""Upload a Lambda package to S3: validate, skip if unchanged, upload with SHA-256
checksums (multipart for large files), then verify what S3 stored.

Order matters: every check that can fail on the user's input runs before the
first byte is written, and success is only reported after S3 has confirmed the
checksum of the exact object version we created.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from lambda_pkg import BUILDER_VERSION, limits
from lambda_pkg.artifact import find_manifest, hex_to_b64, load_manifest
from lambda_pkg.errors import UserError
from ops.session import error_code

MiB = 1024 * 1024
# Above this size the file goes up in parts: a failed part is retried alone, and
# the progress bar has something to show. S3 needs parts of at least 5 MiB.
MULTIPART_THRESHOLD = 16 * MiB
PART_SIZE = 8 * MiB
S3_MIN_PART = 5 * MiB
S3_MAX_PARTS = 10_000
KEY_PREFIX = "lambda/"
PROJECT_TAG = "cloud-trading-bot"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ChecksumMismatch(Exception):
    """S3 reports a checksum that differs from the local file's: never a success."""


# --- the local package -------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPackage:
    path: Path
    size: int
    sha256: str
    unzipped_size: int
    metadata: dict[str, str]
    manifest: Path | None = None
    # Digests of the parts a multipart upload would send, from the same read as
    # sha256: the skip check and the verification need them, and a second pass
    # over a 60 MB file would cost more than the whole unchanged re-upload may.
    part_size: int = 0
    part_digests: tuple[bytes, ...] = ()

    @property
    def sha256_b64(self) -> str:
        return hex_to_b64(self.sha256)

    def composite(self, part_size: int) -> str:
        """S3's multipart checksum of this file for that part size."""
        if part_size == self.part_size and self.part_digests:
            return composite_sha256(list(self.part_digests))
        return composite_sha256(hash_file(self.path, part_size)[1])


def hash_file(path: Path, part_size: int, *, parts: bool = True) -> tuple[str, list[bytes]]:
    """One read: the file's sha256 (hex) and, if asked, each part's raw sha256
    digest. The whole-file digest runs in a worker thread (hashlib releases the
    GIL), so the two digests cost about one pass of wall time on two cores."""
    whole = hashlib.sha256()
    digests: list[bytes] = []
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as pool, open(path, "rb") as fh:
        for _offset, length in part_ranges(path.stat().st_size, part_size):
            chunk = fh.read(length)
            if not parts:
                whole.update(chunk)
                continue
            if pending is not None:
                pending.result()  # keeps updates in order and memory bounded
            pending = pool.submit(whole.update, chunk)
            digests.append(hashlib.sha256(chunk).digest())
        if pending is not None:
            pending.result()
    return whole.hexdigest(), digests


def inspect_package(
    zip_path: Path,
    *,
    handler_file: str = limits.DEFAULT_HANDLER_FILE,
    runtime: str | None = None,
    architecture: str | None = None,
    manifest: Path | None = None,
    part_size: int = 0,
    multipart_threshold: int = 0,
) -> LocalPackage:
    """Check the zip (no network) and derive its metadata. With a manifest the
    metadata is the builder's own (`Artifact.metadata()`); without, it is computed
    here from the file's sha256 and the runtime/architecture flags."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise UserError(
            f"ZIP {zip_path}: no such file; build it with 'python -m lambda_pkg build' "
            "or check the path"
        )
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(
            f"ZIP {zip_path}: not a zip archive ({exc}); pass the package built by "
            "'python -m lambda_pkg build'"
        ) from None
    unzipped = sum(info.file_size for info in infos)
    if unzipped > limits.UNZIPPED_MAX:
        raise UserError(
            f"ZIP {zip_path}: unzipped size {unzipped:,} bytes exceeds Lambda's limit of "
            f"{limits.UNZIPPED_MAX:,}; move dependencies to a layer (dependencyLayer: true) "
            "or drop unused ones"
        )
    names = {info.filename for info in infos}
    if handler_file not in names:
        raise UserError(
            f"ZIP {zip_path}: handler file {handler_file} is not in the package; rebuild it, "
            "or pass --handler-file PATH if the handler lives elsewhere"
        )
    part_size = part_size or PART_SIZE
    # Part digests only for a file that goes up in parts: a single PUT needs none.
    multipart = zip_path.stat().st_size > (multipart_threshold or MULTIPART_THRESHOLD)
    sha, digests = hash_file(zip_path, part_size, parts=multipart)
    manifest = manifest or find_manifest(zip_path)
    if manifest is not None:
        # check=False: the zip was hashed just above, once, and is compared here.
        artifact = load_manifest(manifest, check=False)
        if artifact.path.resolve() != zip_path.resolve():
            raise UserError(
                f"--manifest {manifest}: it describes {artifact.path}, not {zip_path}; "
                "pass the manifest written beside this zip"
            )
        if artifact.sha256 != sha:
            raise UserError(
                f"{zip_path}: sha256 {sha} does not match its manifest {manifest} "
                f"({artifact.sha256}); the file changed after the build: rebuild it with "
                "'python -m lambda_pkg build'"
            )
        _check_flag("--runtime", runtime, artifact.runtime, manifest)
        _check_flag("--architecture", architecture, artifact.architecture, manifest)
        metadata = artifact.metadata()
    else:
        metadata = {
            "sha256": sha,
            "runtime": runtime or limits.DEFAULT_RUNTIME,
            "architecture": architecture or limits.DEFAULT_ARCHITECTURE,
            "builder-version": BUILDER_VERSION,
        }
    return LocalPackage(
        path=zip_path,
        size=zip_path.stat().st_size,
        sha256=sha,
        unzipped_size=unzipped,
        metadata=metadata,
        manifest=manifest,
        part_size=part_size,
        part_digests=tuple(digests),
    )


def _check_flag(flag: str, given: str | None, built: str, manifest: Path) -> None:
    if given is not None and given != built:
        raise UserError(
            f"{flag} {given} contradicts the manifest {manifest} ({built}); drop the flag "
            f"or rebuild the package for {given}"
        )


# --- the destination ---------------------------------------------------------------------


def check_destination(bucket: str, key: str, *, allow_any_key: bool = False) -> list[str]:
    """Validate BUCKET and KEY; return warnings. Refusing a key outside lambda/ is
    the default because the deployer policy and the lifecycle rules cover only
    lambda/: an upload elsewhere is denied in AWS or never cleaned up."""
    if bucket.startswith("s3://"):
        raise UserError(f"BUCKET {bucket!r}: give the bucket name alone, without s3://")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise UserError(
            f"BUCKET {bucket!r}: not a valid S3 bucket name (3-63 characters: lowercase "
            "letters, digits, dots and hyphens)"
        )
    if not key or key.startswith("/") or key.endswith("/"):
        raise UserError(
            f"KEY {key!r}: must be an object key such as lambda/dev/lambda_deployment.zip "
            "(no leading slash, not a folder)"
        )
    if key.startswith(KEY_PREFIX):
        return []
    message = (
        f"KEY {key!r} is not under {KEY_PREFIX}: the deployer policy and lifecycle rules "
        f"cover {KEY_PREFIX}<env>/ only; use e.g. lambda/dev/lambda_deployment.zip"
    )
    if not allow_any_key:
        raise UserError(message + " (or pass --allow-any-key to upload anyway)")
    return [message]


def tags_for(key: str) -> dict[str, str]:
    """Content-stable tags: the project, and the environment read from lambda/<env>/..."""
    tags = {"project": PROJECT_TAG}
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "lambda" and parts[1]:
        tags["environment"] = parts[1]
    return tags


def check_bucket(s3: Any, bucket: str) -> None:
    """HeadBucket: exists, reachable, ours. awsclient turns 404/403/301/no
    credentials into distinct one-line UserErrors."""
    s3.head_bucket(Bucket=bucket)


# --- checksums -----------------------------------------------------------------------------


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each part; S3 allows at most 10,000 parts, so the
    part size grows for very large files."""
    while size > part_size * S3_MAX_PARTS:
        part_size *= 2
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)] or [
        (0, 0)
    ]


def composite_sha256(part_digests: list[bytes]) -> str:
    """S3's checksum of a multipart upload with ChecksumAlgorithm=SHA256: it is
    COMPOSITE (SHA-256 has no FULL_OBJECT type; only the CRCs do), i.e. the
    SHA-256 of the concatenated raw part digests, base64, then '-<parts>'."""
    combined = hashlib.sha256(b"".join(part_digests)).digest()
    return f"{base64.b64encode(combined).decode('ascii')}-{len(part_digests)}"


def same_checksum(stored: str | None, expected: str) -> bool:
    """S3 returns a multipart object's checksum as "<base64>-<parts>"; some stores
    (moto in-process) leave the suffix off. The digest must match either way, and
    a suffix, when present, must give the same number of parts."""
    if stored is None:
        return False
    if stored == expected:
        return True
    base, _, parts = expected.partition("-")
    return bool(parts) and stored == base


# --- the upload ----------------------------------------------------------------------------


@dataclass
class UploadResult:
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    sha256_b64: str
    checksum: str  # what S3 reports: the plain base64 digest, or composite "...-N"
    skipped: bool
    bytes_sent: int
    parts: int
    size: int
    warnings: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "sha256": self.sha256,
            "sha256_b64": self.sha256_b64,
            "checksum_sha256": self.checksum,
            "skipped": self.skipped,
            "bytes_sent": self.bytes_sent,
            "parts": self.parts,
            "size": self.size,
        }


def object_version(response: dict[str, Any]) -> str | None:
    """The version id S3 gave the object, or None when there is none to pin: no
    versioning, or versioning suspended, where S3 (and moto) say "null" and the
    next upload overwrites that very version."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else version


def current_matches(s3: Any, bucket: str, key: str, pkg: LocalPackage, part_size: int):
    """The current object's HeadObject when it already holds this exact package,
    else None. Same content-derived metadata (sha256 first) and length, and a
    stored SHA-256 checksum, when there is one, that belongs to this file. An
    object written without a SHA-256 checksum (e.g. by `pulumi up`, with the same
    Artifact.metadata()) is judged by its sha256 metadata alone."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as exc:
        if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    stored = {k: head.get("Metadata", {}).get(k) for k in pkg.metadata}
    if stored != pkg.metadata or head.get("ContentLength") != pkg.size:
        return None
    checksum = head.get("ChecksumSHA256")
    if checksum and not _checksum_consistent(checksum, pkg, part_size):
        return None
    return head


def _checksum_consistent(checksum: str, pkg: LocalPackage, part_size: int) -> bool:
    """Whether a stored checksum belongs to this file: the whole-file SHA-256 (a
    single PUT), or the composite for our part layout (a multipart upload; with
    or without the "-<parts>" suffix, see same_checksum)."""
    if checksum == pkg.sha256_b64:
        return True
    return same_checksum(checksum, pkg.composite(part_size))


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, *, enabled: bool | None = None, stream: Any = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = max(total, 1)
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        percent = 100 * self.done // self.total
        self.stream.write(
            f"\rupload [{bar}] {percent:3d}% {self.done / MiB:.1f}/{self.total / MiB:.1f} MiB"
        )
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _put_single(s3: Any, pkg: LocalPackage, bucket: str, key: str, extra: dict[str, Any]):
    body = pkg.path.read_bytes()
    if hashlib.sha256(body).hexdigest() != pkg.sha256:
        raise UserError(f"ZIP {pkg.path}: the file changed while uploading; rebuild and retry")
    try:
        response = s3.put_object(
            # ChecksumAlgorithm too: it tells S3 (and emulators) to store the checksum
            # with the object, so HeadObject can return it for verification.
            Bucket=bucket,
            Key=key,
            Body=body,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=pkg.sha256_b64,
            **extra,
        )
    except KeyboardInterrupt:
        # A single PUT is all or nothing: S3 never shows a half-written object.
        print(f"upload interrupted: s3://{bucket}/{key} is unchanged", file=sys.stderr)
        raise
    returned = response.get("ChecksumSHA256")
    if returned is not None and returned != pkg.sha256_b64:
        raise ChecksumMismatch(
            f"S3 acknowledged s3://{bucket}/{key} with ChecksumSHA256 {returned}, expected "
            f"{pkg.sha256_b64}: the upload is NOT verified; do not deploy it, re-run the upload"
        )
    return response, pkg.sha256_b64, len(body), 1


def _put_multipart(
    s3: Any,
    pkg: LocalPackage,
    bucket: str,
    key: str,
    *,
    extra: dict[str, Any],
    part_size: int,
    progress: Progress,
    on_part: Callable[[int], None] | None,
):
    ranges = part_ranges(pkg.size, part_size)
    upload_id = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **extra
    )["UploadId"]
    parts, digests, sent = [], [], 0
    whole = hashlib.sha256()
    try:
        with open(pkg.path, "rb") as fh:
            for number, (_offset, length) in enumerate(ranges, start=1):
                data = fh.read(length)
                whole.update(data)
                digest = hashlib.sha256(data).digest()
                b64 = base64.b64encode(digest).decode("ascii")
                response = s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ChecksumSHA256=b64,
                )
                returned = response.get("ChecksumSHA256")
                if returned is not None and returned != b64:
                    raise ChecksumMismatch(
                        f"S3 acknowledged part {number} of s3://{bucket}/{key} with "
                        f"ChecksumSHA256 {returned}, expected {b64}; the upload was aborted"
                    )
                parts.append(
                    {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": b64}
                )
                digests.append(digest)
                sent += len(data)
                progress.advance(len(data))
                if on_part:
                    on_part(number)
        if whole.hexdigest() != pkg.sha256:
            raise UserError(f"ZIP {pkg.path}: the file changed while uploading; rebuild and retry")
        response = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException as exc:
        _abort(s3, bucket, key, upload_id, exc)
        raise
    return response, composite_sha256(digests), sent, len(parts)


def _abort(s3: Any, bucket: str, key: str, upload_id: str, cause: BaseException) -> None:
    """Abort so no partial object becomes visible and no parts linger (and cost)."""
    why = "interrupted" if isinstance(cause, KeyboardInterrupt) else "failed"
    # A UserError is already one line that says what to fix; the abort is implied.
    quiet = isinstance(cause, UserError)
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        if not quiet:
            print(
                f"upload {why}: multipart upload aborted; s3://{bucket}/{key} is unchanged",
                file=sys.stderr,
            )
    except Exception as exc:  # the original failure matters more than this one
        print(
            f"upload {why}: could not abort multipart upload {upload_id} ({exc}); "
            f"the bucket's lifecycle rule removes it; s3://{bucket}/{key} is unchanged",
            file=sys.stderr,
        )


def verify(
    s3: Any, bucket: str, key: str, *, version_id: str | None, pkg: LocalPackage, checksum: str
):
    """Read back the exact version we created: checksum, length and sha256
    metadata must all match the local file. Any difference is an error."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id:
        params["VersionId"] = version_id
    head = s3.head_object(**params)
    problems = []
    stored = head.get("ChecksumSHA256")
    if not same_checksum(stored, checksum):
        problems.append(f"ChecksumSHA256 {stored} (expected {checksum})")
    if head.get("ContentLength") != pkg.size:
        problems.append(f"length {head.get('ContentLength')} (expected {pkg.size})")
    if head.get("Metadata", {}).get("sha256") != pkg.sha256:
        problems.append(f"sha256 metadata {head.get('Metadata', {}).get('sha256')}")
    if problems:
        raise ChecksumMismatch(
            f"verification failed for s3://{bucket}/{key} version {version_id}: "
            f"{'; '.join(problems)}; the upload is NOT verified: do not deploy it, re-run "
            "the upload"
        )
    return head


def upload(
    s3: Any,
    pkg: LocalPackage,
    bucket: str,
    key: str,
    *,
    multipart_threshold: int = MULTIPART_THRESHOLD,
    part_size: int = PART_SIZE,
    force: bool = False,
    progress: Progress | None = None,
    on_part: Callable[[int], None] | None = None,
) -> UploadResult:
    """Skip-if-unchanged, upload, verify. The caller has run inspect_package,
    check_destination and check_bucket already."""
    multipart = pkg.size > multipart_threshold
    if not force:
        head = current_matches(s3, bucket, key, pkg, part_size)
        if head is not None:
            return UploadResult(
                bucket=bucket,
                key=key,
                version_id=object_version(head),
                sha256=pkg.sha256,
                sha256_b64=pkg.sha256_b64,
                checksum=head.get("ChecksumSHA256") or pkg.sha256_b64,
                skipped=True,
                bytes_sent=0,
                parts=0,
                size=pkg.size,
            )
    extra = {
        "Metadata": pkg.metadata,
        "Tagging": urlencode(tags_for(key)),
        "ContentType": "application/zip",
    }
    progress = progress or Progress(pkg.size, enabled=False)
    if multipart:
        response, checksum, sent, result_parts = _put_multipart(
            s3,
            pkg,
            bucket,
            key,
            extra=extra,
            part_size=part_size,
            progress=progress,
            on_part=on_part,
        )
    else:
        response, checksum, sent, result_parts = _put_single(s3, pkg, bucket, key, extra)
        progress.advance(sent)
    version_id = object_version(response)
    verify(s3, bucket, key, version_id=version_id, pkg=pkg, checksum=checksum)
    warnings = []
    if not version_id:
        warnings.append(
            f"bucket {bucket} has versioning off (or suspended): the function cannot pin "
            "this upload's version and rollback by object version is impossible; enable "
            "versioning (the stack that owns the bucket does)"
        )
    return UploadResult(
        bucket=bucket,
        key=key,
        version_id=version_id,
        sha256=pkg.sha256,
        sha256_b64=pkg.sha256_b64,
        checksum=checksum,
        skipped=False,
        bytes_sent=sent,
        parts=result_parts,
        size=pkg.size,
        warnings=warnings,
    )
