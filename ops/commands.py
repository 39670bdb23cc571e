"""The operator commands: each takes the parsed arguments, does its job through
one AwsSession, prints its result, and returns the exit code. Failures are
exceptions, worded by ops.cli."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from lambda_pkg.errors import UserError
from lambda_pkg.progress import Progress
from ops.checksums import MiB
from ops.session import AwsSession, AwsSettings, CallLog

ROOT = Path(__file__).resolve().parents[1]

COMMAND_HELP = {
    "upload": "validate, upload and verify a package in S3",
    "rollback": "move the alias to an earlier published version",
    "status": "what the function runs and which S3 object it came from",
    "invoke": "invoke the function once and print its response",
    "coldstarts": "cold starts and durations from the REPORT log lines",
    "backtest": "backtest the stack's strategy on the market data its fetcher stored",
}


def _aws(args: argparse.Namespace, calls: CallLog) -> AwsSession:
    settings = AwsSettings(args.region, args.endpoint_url, args.profile, args.max_attempts)
    return AwsSession(settings, calls=calls)


def _out(text: str = "") -> None:
    print(text)


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def ops_command() -> str:
    """How to run this CLI again from a shell, as printed in next steps: the
    interpreter running now (the venv's, which has boto3; the system Python may
    not) from the project root, where `-m ops` imports."""
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    command = f"{shlex.quote(str(python))} -m ops"
    if Path.cwd().resolve() == ROOT:
        return command
    return f"cd {shlex.quote(str(ROOT))} && {command}"


def _where(aws: AwsSession, service: str) -> str:
    """The options that make a printed command (ours or the AWS CLI's, which takes
    the same three) reach what this run reached: the region, the endpoint (given,
    or from AWS_ENDPOINT_URL*) and the profile."""
    parts = ["--region", aws.region]
    endpoint = aws.configured_endpoint(service)
    if endpoint:
        parts += ["--endpoint-url", endpoint]
    if aws.profile:
        parts += ["--profile", aws.profile]
    return " " + shlex.join(parts)


# --- commands -----------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace, calls: CallLog) -> int:
    from ops import upload as up
    from ops.destination import check_destination, environment_of
    from ops.package import inspect_package

    # Everything local first: nothing is sent before the input is known good.
    warnings = check_destination(args.bucket, args.key, allow_any_key=args.allow_any_key)
    pkg = inspect_package(
        args.zip,
        multipart_threshold=args.multipart_threshold_mib,
        part_size=args.part_size_mib,
        handler_file=args.handler_file,
        runtime=args.runtime,
        architecture=args.architecture,
        manifest=args.manifest,
    )
    for warning in warnings:
        _warn(warning)
    aws = _aws(args, calls)
    s3 = aws.s3()
    up.check_bucket(s3, args.bucket)
    transfer = up.TransferSettings(
        args.multipart_threshold_mib, args.part_size_mib, args.max_concurrency
    )
    result = up.upload(
        s3,
        pkg,
        args.bucket,
        args.key,
        transfer=transfer,
        force=args.force,
        progress=Progress.on_terminal(),
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
    env = environment_of(result.key)
    function = f"market_data_fetcher-{env}" if env else "FUNCTION"
    # The printed commands must work as printed: same region, endpoint and profile.
    version = f" --s3-object-version {result.version_id}" if result.version_id else ""
    ops = ops_command()
    bucket_key = f"--bucket {shlex.quote(result.bucket)} --key {shlex.quote(result.key)}"
    _out("next steps:")
    target = "this exact object version" if result.version_id else "this upload"
    _out(f"  point the function at {target} (then test it):")
    _out(
        f"    aws lambda update-function-code --function-name {function} "
        f"--s3-bucket {shlex.quote(result.bucket)} --s3-key {shlex.quote(result.key)}{version} "
        f"--publish{_where(aws, 'lambda')}"
    )
    _out(f"    {ops} status --function {function} --alias '' {bucket_key}{_where(aws, 'lambda')}")
    _out(f"    {ops} invoke --function {function}{_where(aws, 'lambda')}")
    if env:
        _out(
            f"  or deploy with the stack, which uploads and pins the package itself: "
            f"scripts/deploy.sh --stack {env}"
        )
    return 0


def cmd_rollback(args: argparse.Namespace, calls: CallLog) -> int:
    from ops import rollback

    # A bad --steps/--to is refused before any AWS client exists (or is needed).
    rollback.check_rollback_args(to=args.to, steps=args.steps)
    aws = _aws(args, calls)
    done = rollback.rollback(
        aws.lambda_(), args.function, alias=args.alias, to=args.to, steps=args.steps
    )
    _out(
        f"rolled back {done.function} alias {done.alias}: version {done.from_version} -> "
        f"{done.to_version} (CodeSha256 {done.code_sha256})"
    )
    # Pasted as printed, the undo reaches the same endpoint, region and profile.
    _out(
        f"  undo: {ops_command()} rollback --function {done.function} --alias {done.alias} "
        f"--to {done.from_version}{_where(aws, 'lambda')}"
    )
    return 0


def cmd_status(args: argparse.Namespace, calls: CallLog) -> int:
    from lambda_pkg.artifact import load_manifest
    from ops import status
    from ops.destination import check_bucket_name, check_key

    if bool(args.bucket) != bool(args.key):
        raise UserError("status: --bucket and --key go together (the package's S3 location)")
    if args.bucket:
        check_bucket_name(args.bucket)
        check_key(args.key, allow_any_key=True)  # only what no key may contain
    manifest_b64 = None
    if args.manifest:
        # Only its sha256 is needed: CI may keep the manifest without the zip.
        manifest_b64 = load_manifest(args.manifest, check=False).sha256_b64
    aws = _aws(args, calls)
    st = status.status(
        aws.lambda_(),
        args.function,
        alias=args.alias or None,
        s3=aws.s3() if args.bucket else None,
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


def cmd_invoke(args: argparse.Namespace, calls: CallLog) -> int:
    from ops import invoke

    payload = invoke.parse_payload(args.payload)
    lam = _aws(args, calls).lambda_()
    result = invoke.invoke(lam, args.function, payload, qualifier=args.qualifier)
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


def cmd_coldstarts(args: argparse.Namespace, calls: CallLog) -> int:
    from ops import coldstarts

    coldstarts.parse_since(args.since)  # a bad --since fails before any call
    logs = _aws(args, calls).logs()
    result = coldstarts.coldstarts(logs, args.function, since=args.since, log_group=args.log_group)
    if args.json:
        _out(json.dumps(result.to_json(), indent=2))
    else:
        _out(coldstarts.format_table(result))
    return 0


def cmd_backtest(args: argparse.Namespace, calls: CallLog) -> int:
    """The stack's bucket, environment, symbols and trading keys, read through
    infra.config (the one reader of stack files), then the backtester's own API."""
    from backend.trading import backtest
    from backend.trading.history import HistoryError, S3Source
    from backend.trading.settings import TradingConfigError
    from infra.config import ConfigError, load_stack_file

    try:
        cfg, values = load_stack_file(args.stack, args.project_dir)
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    try:
        config = backtest.config_from(
            {**cfg.trading_settings, "environment": cfg.environment}, args
        )
    except TradingConfigError as exc:
        raise UserError("; ".join(exc.problems)) from None
    except backtest.UsageError as exc:
        raise UserError(str(exc)) from None
    # The stack's region unless told otherwise: its bucket lives there.
    region = args.region or os.environ.get("AWS_REGION") or values.get("aws:region")
    settings = AwsSettings(region, args.endpoint_url, args.profile, args.max_attempts)
    source = S3Source(client=AwsSession(settings, calls=calls).s3(), bucket=cfg.bucket_name)
    try:
        result = backtest.backtest_stored(
            source,
            f"{cfg.names.data_prefix}index.json",
            config,
            symbols=backtest.symbols_from(args, cfg.symbols),
            start=args.start,
            end=args.end,
        )
    except HistoryError as exc:
        raise UserError(str(exc)) from None
    _out(backtest.render(result, as_json=args.json))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, CallLog], int]] = {
    "upload": cmd_upload,
    "rollback": cmd_rollback,
    "status": cmd_status,
    "invoke": cmd_invoke,
    "coldstarts": cmd_coldstarts,
    "backtest": cmd_backtest,
}
