"""What a function runs: alias -> version -> CodeSha256 -> the S3 object version
its code came from, and an integrity check against the build's manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lambda_pkg.artifact import hex_to_b64
from lambda_pkg.errors import UserError
from ops.functions import DEFAULT_ALIAS, alias_version
from ops.session import error_code

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client


@dataclass
class Status:
    function: str
    alias: str | None
    version: str
    code_sha256: str
    code_size: int
    last_modified: str
    s3_url: str | None = None
    s3_version_id: str | None = None
    s3_is_latest: bool | None = None
    manifest: str | None = None
    manifest_sha256_b64: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True)
class S3Source:
    """The object version a function's code came from."""

    version_id: str
    is_latest: bool


def find_s3_version(s3: S3Client, bucket: str, key: str, code_sha256: str) -> S3Source | None:
    """Which object version of s3://bucket/key holds the function's code.

    Lambda's GetFunction does not say which S3 version the code came from, so
    compare: each version's ChecksumSHA256 (a single-part upload's equals
    CodeSha256) or its sha256 metadata (set by every upload) against CodeSha256.
    Newest first; the lifecycle rule keeps this list short. botocore's paginator
    follows the key and version markers.
    """
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
    for page in pages:
        for version in page.get("Versions", []):
            if version.get("Key") != key:
                continue
            version_id = version.get("VersionId", "null")
            if version_id != "null":  # "null": an unversioned object, the current one
                head = s3.head_object(
                    Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED"
                )
            else:
                head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            from_meta = _metadata_b64(head.get("Metadata", {}).get("sha256", ""))
            if code_sha256 in {head.get("ChecksumSHA256"), from_meta}:
                return S3Source(version_id, bool(version.get("IsLatest")))
    return None


def _metadata_b64(hex_digest: str) -> str | None:
    """The sha256 metadata as Lambda's CodeSha256; None when it is not hex (another tool's)."""
    try:
        return hex_to_b64(hex_digest)
    except ValueError:
        return None


def status(
    lam: LambdaClient,
    function: str,
    *,
    alias: str | None = DEFAULT_ALIAS,
    s3: S3Client | None = None,
    bucket: str | None = None,
    key: str | None = None,
    manifest_sha256_b64: str | None = None,
    manifest: str | None = None,
) -> Status:
    version = alias_version(lam, function, alias) if alias else "$LATEST"
    try:
        config = lam.get_function_configuration(FunctionName=function, Qualifier=version)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise UserError(
                f"--function {function}: no such Lambda function (version {version}) in this "
                "account/region; check the name and --region"
            ) from None
        raise
    result = Status(
        function=function,
        alias=alias,
        version=version,
        code_sha256=config.get("CodeSha256", ""),
        code_size=int(config.get("CodeSize", 0)),
        last_modified=str(config.get("LastModified", "")),
    )
    if s3 is not None and bucket and key:
        result.s3_url = f"s3://{bucket}/{key}"
        found = find_s3_version(s3, bucket, key, result.code_sha256)
        if found is None:
            result.problems.append(
                f"no object version of {result.s3_url} holds this code (CodeSha256 "
                f"{result.code_sha256}): it was deployed from elsewhere, or that version expired"
            )
        else:
            result.s3_version_id, result.s3_is_latest = found.version_id, found.is_latest
    if manifest_sha256_b64 is not None:
        result.manifest = manifest
        result.manifest_sha256_b64 = manifest_sha256_b64
        if manifest_sha256_b64 != result.code_sha256:
            result.problems.append(
                f"integrity check FAILED: CodeSha256 {result.code_sha256} != manifest "
                f"sha256_b64 {manifest_sha256_b64} ({manifest}): the function does not run "
                "this build; deploy it (pulumi up) or roll back"
            )
    return result
