"""Where a package may go: the bucket name and the key, checked before any call.

The key follows the stack config's rule for `lambdaS3Key` (docs/infra.md): under
`lambda/<environment>/`, plain segments, ending in `.zip`. The deployer policy
and the lifecycle rules match prefixes, so a key that is not plainly under
`lambda/<env>/` is denied in AWS, never cleaned up, or (with `..`) reaches
another environment's or the data prefix. `--allow-any-key` relaxes where the
key may go, never what a key may contain.
"""

from __future__ import annotations

import re

from lambda_pkg.errors import UserError

KEY_PREFIX = "lambda/"
PROJECT_TAG = "cloud-trading-bot"
EXAMPLE_KEY = "lambda/dev/lambda_deployment.zip"
S3_MAX_KEY_BYTES = 1024

# The stack config's environment rule (docs/infra.md): the same names the stacks accept.
ENVIRONMENT_RE = re.compile(r"[a-z][a-z0-9-]{1,15}")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]+")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
# S3's reserved bucket name prefixes and suffixes (the S3 user guide's naming rules).
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(bucket: str) -> None:
    if bucket.startswith("s3://"):
        raise UserError(f"BUCKET {bucket!r}: give the bucket name alone, without s3://")
    reserved = bucket.startswith(_BUCKET_PREFIXES) or bucket.endswith(_BUCKET_SUFFIXES)
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket) or reserved:
        raise UserError(
            f"BUCKET {bucket!r}: not a valid S3 bucket name (3-63 characters: lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit; "
            "not an IP address, no '..', no reserved prefix or suffix such as xn-- or -s3alias)"
        )


def check_key(key: str, *, allow_any_key: bool = False) -> list[str]:
    """Refuse what no key may contain; refuse (or, with allow_any_key, warn about) a
    key that is not a package key under lambda/<environment>/. Returns warnings."""
    if not key or key.startswith("/") or key.endswith("/"):
        raise UserError(
            f"KEY {key!r}: must be an object key such as {EXAMPLE_KEY} "
            "(no leading slash, not a folder)"
        )
    bad = sorted({c for c in key if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise UserError(
            f"KEY {key!r}: contains the control character(s) {', '.join(map(repr, bad))} "
            "(a pasted newline?); remove them"
        )
    if len(key.encode("utf-8")) > S3_MAX_KEY_BYTES:
        raise UserError(f"KEY {key[:40]!r}...: longer than S3's {S3_MAX_KEY_BYTES} bytes")
    segments = key.split("/")
    odd = [s for s in segments if s in {"", ".", ".."}]
    if odd:
        raise UserError(
            f"KEY {key!r}: has a {odd[0]!r} segment; no '.', '..' or empty segments (S3 keeps "
            "them literally, so the key would not be under the prefix it seems to be); use "
            f"e.g. {EXAMPLE_KEY}"
        )
    problem = _placement_problem(segments)
    if problem is None:
        return []
    message = f"KEY {key!r} {problem}"
    if not allow_any_key:
        raise UserError(message + " (or pass --allow-any-key to upload anyway)")
    return [message]


def _placement_problem(segments: list[str]) -> str | None:
    if len(segments) < 3 or segments[0] != KEY_PREFIX.rstrip("/"):
        return (
            f"is not under {KEY_PREFIX}<environment>/: the deployer policy and lifecycle "
            f"rules cover {KEY_PREFIX}<env>/ only; use e.g. {EXAMPLE_KEY}"
        )
    if not ENVIRONMENT_RE.fullmatch(segments[1]):
        return (
            f"is not under {KEY_PREFIX}<environment>/: {segments[1]!r} is not an environment "
            "name (2-16 characters: lowercase letters, digits and hyphens, starting with a "
            f"letter, as the stacks' environment); use e.g. {EXAMPLE_KEY}"
        )
    odd = [s for s in segments if not _SEGMENT_RE.fullmatch(s)]
    if odd:
        return (
            f"has the segment {odd[0]!r}: use only letters, digits, '.', '_' and '-' in a key, "
            "as the stack config's lambdaS3Key does"
        )
    if not segments[-1].endswith(".zip"):
        return "does not end in .zip: a package key names a zip, as lambdaS3Key must"
    return None


def environment_of(key: str) -> str | None:
    """The environment of a package key lambda/<env>/..., or None for any other key."""
    segments = key.split("/")
    if len(segments) >= 3 and _placement_problem(segments) is None:
        return segments[1]
    return None


def check_destination(bucket: str, key: str, *, allow_any_key: bool = False) -> list[str]:
    """Validate BUCKET and KEY before anything runs; return warnings."""
    check_bucket_name(bucket)
    return check_key(key, allow_any_key=allow_any_key)


def tags_for(key: str) -> dict[str, str]:
    """Content-stable tags: the project, and the environment of a lambda/<env>/ key."""
    tags = {"project": PROJECT_TAG}
    environment = environment_of(key)
    if environment:
        tags["environment"] = environment
    return tags
