"""Upload a Lambda package to S3: skip if unchanged, send it with s3transfer, then
verify what S3 stored.

s3transfer does the sending: one PUT or a multipart upload with parts in
parallel, a SHA-256 checksum per part (ChecksumAlgorithm=SHA256), botocore's
retries per request, and AbortMultipartUpload when anything fails or the user
interrupts. What it does not do is kept here:

- skip-if-unchanged: a HeadObject, and 0 body bytes when S3 has these bytes;
- the checksum S3 must end up with, computed locally (ops.checksums), checked
  against every part S3 acknowledges (a mismatch aborts before completion) and
  against the stored object afterwards;
- verification of the exact object version created;
- the progress display (lambda_pkg.progress).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from lambda_pkg.progress import Progress
from ops.checksums import MULTIPART_THRESHOLD, PART_SIZE, same_checksum
from ops.destination import tags_for
from ops.package import LocalPackage
from ops.session import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

# s3transfer's default; `--max-concurrency 1` sends one part at a time.
MAX_CONCURRENCY = 10


class ChecksumMismatch(Exception):
    """S3 reports a checksum that differs from the local file's: never a success."""


@dataclass(frozen=True)
class TransferSettings:
    multipart_threshold: int = MULTIPART_THRESHOLD
    part_size: int = PART_SIZE
    max_concurrency: int = MAX_CONCURRENCY

    def config(self, *, multipart: bool) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.part_size,
            max_concurrency=self.max_concurrency,
            # A single PUT is one request: sent from this thread, Ctrl-C (or SIGTERM)
            # stops it mid-body and S3 keeps nothing. In a worker thread it would
            # complete after the interrupt.
            use_threads=multipart,
            # The classic s3transfer: the CRT client (when awscrt is installed) has
            # its own part sizes, which the local composite checksum must match.
            preferred_transfer_client="classic",
        )


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


def object_version(response: Any) -> str | None:
    """The version id S3 gave the object, or None when there is none to pin: no
    versioning, or versioning suspended, where S3 (and moto) say "null" and the
    next upload overwrites that very version."""
    version = response.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def check_bucket(s3: S3Client, bucket: str) -> None:
    """HeadBucket: exists, reachable, ours. A failure is worded at the CLI boundary
    (ops.failures: 404, 403, 301, credentials)."""
    s3.head_bucket(Bucket=bucket)


def current_matches(
    s3: S3Client, bucket: str, key: str, pkg: LocalPackage
) -> HeadObjectOutputTypeDef | None:
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
    if checksum and not (checksum == pkg.sha256_b64 or same_checksum(checksum, pkg.checksum)):
        return None
    return head


def verify(
    s3: S3Client, bucket: str, key: str, *, version_id: str | None, pkg: LocalPackage, checksum: str
) -> HeadObjectOutputTypeDef:
    """Read back the exact version we created: checksum, length and sha256
    metadata must all match the local file. Any difference is an error."""
    if version_id:
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    else:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
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


class _Watch:
    """botocore event hooks on the S3 client for the length of one transfer: what
    s3transfer does not return (the new version id, the upload id, whether the
    abort happened), and each part's acknowledged checksum against the local one.
    Parts run in worker threads, hence the lock."""

    def __init__(self, s3: S3Client, pkg: LocalPackage, bucket: str, key: str) -> None:
        self.s3, self.pkg, self.bucket, self.key = s3, pkg, bucket, key
        self._lock = threading.Lock()
        self.upload_id: str | None = None
        self.aborted = False
        self.result: dict[str, Any] | None = None  # PutObject/CompleteMultipartUpload's answer
        self._hooks = [
            ("before-parameter-build.s3.UploadPart", self._part_number),
            ("after-call.s3.CreateMultipartUpload", self._created),
            ("after-call.s3.UploadPart", self._part_done),
            ("after-call.s3.PutObject", self._finished),
            ("after-call.s3.CompleteMultipartUpload", self._finished),
            ("after-call.s3.AbortMultipartUpload", self._aborted),
        ]

    def __enter__(self) -> _Watch:
        for event, handler in self._hooks:
            self.s3.meta.events.register(event, handler)
        return self

    def __exit__(self, *_: object) -> None:
        for event, handler in self._hooks:
            self.s3.meta.events.unregister(event, handler)

    @staticmethod
    def _part_number(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["ops_part_number"] = params.get("PartNumber")

    def _created(self, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            with self._lock:
                self.upload_id = parsed.get("UploadId")

    def _part_done(
        self, parsed: dict[str, Any], http_response: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """Raising here fails the part, so s3transfer aborts instead of completing."""
        if http_response.status_code >= 300:
            return
        number = int(context.get("ops_part_number") or 0)
        expected = self.pkg.part_checksum(number)
        returned = parsed.get("ChecksumSHA256")
        if returned is not None and returned != expected:
            raise ChecksumMismatch(
                f"S3 acknowledged part {number} of s3://{self.bucket}/{self.key} with "
                f"ChecksumSHA256 {returned}, expected {expected} (the file changed after it "
                "was read, or the store is faulty)"
            )

    def _finished(self, parsed: dict[str, Any], http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            with self._lock:
                self.result = dict(parsed)

    def _aborted(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            with self._lock:
                self.aborted = True

    def outcome(self, cause: BaseException) -> str:
        """What became of the upload that `cause` stopped: one clause for the error line."""
        why = "interrupted" if isinstance(cause, KeyboardInterrupt) else "failed"
        url = f"s3://{self.bucket}/{self.key}"
        if self.result is not None:
            version = object_version(self.result) or "(unversioned)"
            return f"upload {why} after S3 stored {url} version {version}: it is NOT verified"
        if self.upload_id is None:
            return f"upload {why}: {url} is unchanged"
        if self.aborted:
            return f"upload {why}: multipart upload aborted; {url} is unchanged"
        return (
            f"upload {why}: could not abort multipart upload {self.upload_id}; the bucket's "
            f"lifecycle rule removes it; {url} is unchanged"
        )


def _send(
    s3: S3Client,
    pkg: LocalPackage,
    bucket: str,
    key: str,
    *,
    extra: dict[str, Any],
    transfer: TransferSettings,
    progress: Progress,
) -> _Watch:
    from boto3.s3.transfer import ProgressCallbackInvoker, create_transfer_manager

    meter = progress.meter("upload", pkg.size)
    with _Watch(s3, pkg, bucket, key) as watch:
        try:
            config = transfer.config(multipart=pkg.layout.multipart)
            with create_transfer_manager(s3, config) as manager:
                future = manager.upload(
                    str(pkg.path), bucket, key, extra, [ProgressCallbackInvoker(meter)]
                )
                future.result()
        except BaseException as exc:
            # The CLI prints the note on the same line as the error (PEP 678).
            exc.add_note(watch.outcome(exc))
            raise
        finally:
            progress.done()
    return watch


def upload(
    s3: S3Client,
    pkg: LocalPackage,
    bucket: str,
    key: str,
    *,
    transfer: TransferSettings | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> UploadResult:
    """Skip-if-unchanged, upload, verify. The caller has run inspect_package (with
    the same threshold and part size), check_destination and check_bucket."""
    transfer = transfer or TransferSettings()
    if not force:
        head = current_matches(s3, bucket, key, pkg)
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
    extra: dict[str, Any] = {
        "Metadata": pkg.metadata,
        "Tagging": urlencode(tags_for(key)),
        "ContentType": "application/zip",
        # ChecksumAlgorithm also tells S3 (and emulators) to store the checksum with
        # the object, so HeadObject can return it for verification.
        "ChecksumAlgorithm": "SHA256",
    }
    if not pkg.layout.multipart:
        # The digest from the one read that inspected the file: S3 refuses a body
        # that no longer matches it. (Parts are checked by _Watch instead.)
        extra["ChecksumSHA256"] = pkg.sha256_b64
    watch = _send(
        s3, pkg, bucket, key, extra=extra, transfer=transfer, progress=progress or Progress()
    )
    response = watch.result or {}
    returned = response.get("ChecksumSHA256")
    if returned is not None and not same_checksum(returned, pkg.checksum):
        raise ChecksumMismatch(
            f"S3 acknowledged s3://{bucket}/{key} with ChecksumSHA256 {returned}, expected "
            f"{pkg.checksum}: the upload is NOT verified; do not deploy it, re-run the upload"
        )
    version_id = object_version(response)
    verify(s3, bucket, key, version_id=version_id, pkg=pkg, checksum=pkg.checksum)
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
        checksum=pkg.checksum,
        skipped=False,
        bytes_sent=pkg.size,
        parts=pkg.layout.parts,
        size=pkg.size,
        warnings=warnings,
    )
