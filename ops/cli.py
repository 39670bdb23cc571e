"""`python -m lambda_pkg upload|rollback|status|invoke|coldstarts`: the operating commands.

Results go to stdout, warnings and progress to stderr. A user error is one line
and exit 2; a failed check (checksum, integrity, FunctionError) exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lambda_pkg import limits
from lambda_pkg.errors import OneLineParser, UserError, describe, one_line, report_failure
from ops.session import DEFAULT_MAX_ATTEMPTS
from ops.upload import MULTIPART_THRESHOLD, PART_SIZE, S3_MIN_PART, MiB


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: AWS_REGION / the profile's)")
    parser.add_argument(
        "--endpoint-url",
        type=_endpoint_url,
        metavar="URL",
        help="send AWS calls here, e.g. a local emulator http://127.0.0.1:5000",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="attempts per AWS call for throttling/5xx/connection errors "
        f"(default {DEFAULT_MAX_ATTEMPTS})",
    )


def _endpoint_url(text: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL, e.g. http://127.0.0.1:5000"
        )
    return text


def _positive_mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MiB") from None
    if value * MiB < S3_MIN_PART:
        raise argparse.ArgumentTypeError(
            f"{value} MiB is below S3's {S3_MIN_PART // MiB} MiB minimum part size"
        )
    return value * MiB


def build_parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="python -m lambda_pkg")
    sub = root.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    up = sub.add_parser("upload", help="validate, upload and verify a package in S3")
    up.add_argument("zip", metavar="ZIP", type=Path, help="the package, e.g. from lambda_pkg build")
    up.add_argument("bucket", metavar="BUCKET", help="the bucket name, without s3://")
    up.add_argument("key", metavar="KEY", help="e.g. lambda/dev/lambda_deployment.zip")
    _common(up)
    up.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="the build's manifest (default: found beside ZIP)",
    )
    up.add_argument("--runtime", choices=sorted(limits.RUNTIME_GLIBC), help="without a manifest")
    up.add_argument("--architecture", choices=limits.ARCHITECTURES, help="without a manifest")
    up.add_argument(
        "--handler-file",
        default=limits.DEFAULT_HANDLER_FILE,
        metavar="PATH",
        help=f"must be in the zip (default {limits.DEFAULT_HANDLER_FILE})",
    )
    up.add_argument(
        "--allow-any-key",
        action="store_true",
        help="only warn (instead of refusing) when KEY is not under lambda/",
    )
    up.add_argument("--force", action="store_true", help="upload even if S3 has these bytes")
    up.add_argument(
        "--multipart-threshold-mib",
        type=_positive_mib,
        default=MULTIPART_THRESHOLD,
        metavar="N",
        help=f"upload in parts above N MiB (default {MULTIPART_THRESHOLD // MiB})",
    )
    up.add_argument(
        "--part-size-mib",
        type=_positive_mib,
        default=PART_SIZE,
        metavar="N",
        help=f"default {PART_SIZE // MiB}",
    )
    up.add_argument("--json", action="store_true", help="print the result as JSON")

    rb = sub.add_parser("rollback", help="move the alias to an earlier published version")
    rb.add_argument("--function", required=True)
    rb.add_argument("--alias", default="live")
    which = rb.add_mutually_exclusive_group()
    which.add_argument("--to", type=int, metavar="VERSION")
    which.add_argument("--steps", type=int, default=1)
    _common(rb)

    st = sub.add_parser("status", help="alias -> version -> CodeSha256 -> S3 object version")
    st.add_argument("--function", required=True)
    st.add_argument("--alias", default="live", help="'' to show $LATEST")
    st.add_argument("--bucket", help="with --key: find the S3 object version the code came from")
    st.add_argument("--key")
    st.add_argument(
        "--manifest", type=Path, metavar="PATH", help="check CodeSha256 against this build"
    )
    st.add_argument("--json", action="store_true")
    _common(st)

    iv = sub.add_parser("invoke", help="invoke the function once and print its response")
    iv.add_argument("--function", required=True)
    iv.add_argument("--payload", help='JSON event (default {"test": true})')
    iv.add_argument("--qualifier", help="version or alias (default: unqualified, $LATEST)")
    iv.add_argument("--logs", action="store_true", help="also print the last 4 KB of its log")
    _common(iv)

    cs = sub.add_parser("coldstarts", help="count and percentiles of cold starts from REPORT lines")
    cs.add_argument("--function", required=True)
    cs.add_argument("--since", default="24h", help="30m, 24h, 7d ... (default 24h)")
    cs.add_argument("--log-group", help="default /aws/lambda/<function>")
    cs.add_argument("--json", action="store_true")
    _common(cs)
    return root


def _aws(args: argparse.Namespace):
    from ops.session import Aws, AwsSettings

    if args.max_attempts < 1 or args.max_attempts > 20:
        raise UserError(f"--max-attempts {args.max_attempts}: use 1 to 20")
    return Aws(AwsSettings(args.region, args.endpoint_url, args.max_attempts))


def _out(text: str = "") -> None:
    print(text)


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


# --- commands -----------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    from ops import upload as up

    # Everything local first: nothing is sent before the input is known good.
    warnings = up.check_destination(args.bucket, args.key, allow_any_key=args.allow_any_key)
    pkg = up.inspect_package(
        args.zip,
        handler_file=args.handler_file,
        runtime=args.runtime,
        architecture=args.architecture,
        manifest=args.manifest,
        part_size=args.part_size_mib,
        multipart_threshold=args.multipart_threshold_mib,
    )
    for warning in warnings:
        _warn(warning)
    aws = _aws(args)
    s3 = aws.client("s3")
    up.check_bucket(s3, args.bucket)
    result = up.upload(
        s3,
        pkg,
        args.bucket,
        args.key,
        multipart_threshold=args.multipart_threshold_mib,
        part_size=args.part_size_mib,
        force=args.force,
        progress=up.Progress(pkg.size),
    )
    for warning in result.warnings:
        _warn(warning)
    if args.json:
        _out(json.dumps(result.to_json(), indent=2))
        return 0
    if result.skipped:
        _out(f"unchanged: {result.url} already holds sha256 {result.sha256}; sent 0 bytes")
    else:
        how = f"{result.parts} parts" if result.parts > 1 else "single PUT"
        _out(f"uploaded {result.url} ({result.size / MiB:.1f} MiB, {how})")
        _out(f"  verified    ChecksumSHA256 {result.checksum} matches the local file")
    _out(f"  version id  {result.version_id or '(none: versioning is off)'}")
    _out(f"  sha256      {result.sha256}")
    _out(f"  CodeSha256  {result.sha256_b64}   (what Lambda will report)")
    # CONTRACTS.md §4: the function of environment <env> is market_data_fetcher-<env>.
    env = up.tags_for(result.key).get("environment")
    function = f"market_data_fetcher-{env}" if env else "FUNCTION"
    # The printed commands must work as printed: same region and endpoint as this run.
    where = (f" --region {args.region}" if args.region else "") + (
        f" --endpoint-url {args.endpoint_url}" if args.endpoint_url else ""
    )
    version = f" --s3-object-version {result.version_id}" if result.version_id else ""
    _out("next steps:")
    target = "this exact object version" if result.version_id else "this upload"
    _out(f"  point the function at {target} (then test it):")
    _out(
        f"    aws lambda update-function-code --function-name {function} "
        f"--s3-bucket {result.bucket} --s3-key {result.key}{version} --publish{where}"
    )
    _out(
        f"    python -m lambda_pkg status --function {function} --alias '' "
        f"--bucket {result.bucket} --key {result.key}{where}"
    )
    _out(f"    python -m lambda_pkg invoke --function {function}{where}")
    if env:
        _out(
            f"  or deploy with the stack, which uploads and pins the package itself: "
            f"scripts/deploy.sh --stack {env}"
        )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from ops import rollback as operate

    # A bad --steps/--to is refused before any AWS client exists (or is needed).
    operate.check_rollback_args(to=args.to, steps=args.steps)
    lam = _aws(args).client("lambda")
    done = operate.rollback(lam, args.function, alias=args.alias, to=args.to, steps=args.steps)
    _out(
        f"rolled back {done.function} alias {done.alias}: version {done.from_version} -> "
        f"{done.to_version} (CodeSha256 {done.code_sha256})"
    )
    _out(
        f"  undo: python -m lambda_pkg rollback --function {done.function} "
        f"--alias {done.alias} --to {done.from_version}"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from lambda_pkg.artifact import load_manifest
    from ops import rollback as operate

    if bool(args.bucket) != bool(args.key):
        raise UserError("status: --bucket and --key go together (the package's S3 location)")
    manifest_b64 = None
    if args.manifest:
        # Only its sha256 is needed: CI may keep the manifest without the zip.
        manifest_b64 = load_manifest(args.manifest, check=False).sha256_b64
    aws = _aws(args)
    lam = aws.client("lambda")
    s3 = aws.client("s3") if args.bucket else None
    st = operate.status(
        lam,
        args.function,
        alias=args.alias or None,
        s3=s3,
        bucket=args.bucket,
        key=args.key,
        manifest_sha256_b64=manifest_b64,
        manifest=str(args.manifest) if args.manifest else None,
    )
    if args.json:
        _out(json.dumps(st.to_json(), indent=2))
    else:
        head = f"alias {st.alias} -> " if st.alias else ""
        _out(f"{st.function}: {head}version {st.version}")
        _out(
            f"  CodeSha256  {st.code_sha256} ({st.code_size:,} bytes, modified {st.last_modified})"
        )
        if st.s3_version_id:
            state = "current" if st.s3_is_latest else "noncurrent"
            _out(f"  from        {st.s3_url} version {st.s3_version_id} ({state})")
        if st.manifest_sha256_b64 and st.manifest_sha256_b64 == st.code_sha256:
            _out(f"  integrity   OK: CodeSha256 equals the manifest's sha256_b64 ({st.manifest})")
    for problem in st.problems:
        print(f"error: {problem}", file=sys.stderr)
    return 0 if st.ok else 1


def cmd_invoke(args: argparse.Namespace) -> int:
    from ops import rollback as operate

    payload = operate.parse_payload(args.payload)
    lam = _aws(args).client("lambda")
    result = operate.invoke(lam, args.function, payload, qualifier=args.qualifier)
    _out(_pretty(result.payload))
    version = f", version {result.executed_version}" if result.executed_version else ""
    print(f"status {result.status_code}{version}", file=sys.stderr)
    if args.logs and result.log_tail:
        print(result.log_tail, file=sys.stderr)
    if result.function_error:
        print(
            f"error: the function failed ({result.function_error}); see the response above "
            f"and its logs in /aws/lambda/{args.function}",
            file=sys.stderr,
        )
        return 1
    return 0


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), indent=2)
    except ValueError:
        return body


def cmd_coldstarts(args: argparse.Namespace) -> int:
    from ops import coldstarts

    coldstarts.parse_since(args.since)  # a bad --since fails before any call
    logs = _aws(args).client("logs")
    result = coldstarts.coldstarts(logs, args.function, since=args.since, log_group=args.log_group)
    if args.json:
        _out(json.dumps(result.to_json(), indent=2))
    else:
        _out(coldstarts.format_table(result))
    return 0


COMMANDS = {
    "upload": cmd_upload,
    "rollback": cmd_rollback,
    "status": cmd_status,
    "invoke": cmd_invoke,
    "coldstarts": cmd_coldstarts,
}


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import ClientError

    from ops.session import RetriesExhausted
    from ops.upload import ChecksumMismatch

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        return report_failure(str(exc), 2)
    except (ChecksumMismatch, RetriesExhausted) as exc:
        return report_failure(str(exc), 1)
    except KeyboardInterrupt:
        print("interrupted: stopped before finishing; see the message above", file=sys.stderr)
        return 130
    except ClientError as exc:
        # An AWS error no rule above knows: say which call and what AWS said, on one line.
        return report_failure(_client_error(exc), 1, unexpected=True)
    except Exception as exc:
        return report_failure(describe(exc), 1, unexpected=True)


def _client_error(exc: Any) -> str:
    """'AWS s3:HeadObject: 400 Bad Request' rather than botocore's sentence with its
    '(reached max retries: 1)', which only reflects botocore's own retries being off."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code, message = error.get("Code", ""), error.get("Message", "")
    detail = " ".join(str(p) for p in (code, message) if p) or f"HTTP {status}"
    if status and str(status) != code:
        detail += f" (HTTP {status})"
    return one_line(f"AWS {getattr(exc, 'operation_name', '') or 'call'} failed: {detail}")
