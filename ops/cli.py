"""`python -m ops upload|status|rollback|invoke|coldstarts|backtest`: the command line.

Every argument is checked here, before anything runs (ops.commands does the work).
Results go to stdout, warnings and progress to stderr. A user error is one line
and exit 2; a failed check (checksum, integrity, FunctionError) or the service's
trouble exits 1; a signal exits 128 + its number. AWS errors are worded here, at
the boundary, in one place (ops.failures).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from lambda_pkg import limits
from lambda_pkg.errors import OneLineParser, UserError, describe, report_failure
from ops.checksums import MULTIPART_THRESHOLD, PART_SIZE, S3_MIN_PART, MiB
from ops.commands import COMMAND_HELP, COMMANDS
from ops.session import DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT, CallLog

PROG = "python -m ops"

# Lambda's own name rules: a function name (or its ARN), an alias, a qualifier.
_FUNCTION_RE = re.compile(
    r"(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}"
)
_ALIAS_RE = re.compile(r"(?!\d+$)[A-Za-z0-9_-]{1,128}")
_QUALIFIER_RE = re.compile(r"\$LATEST|\d{1,10}|(?!\d+$)[A-Za-z0-9_-]{1,128}")
_LOG_GROUP_RE = re.compile(r"[A-Za-z0-9_./#-]{1,512}")
# botocore's own region rule, lower case: a malformed one never reaches a hostname.
_REGION_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PROFILE_RE = re.compile(r"[A-Za-z0-9_.+@=,:/-]{1,128}")
_STACK_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def _pattern(pattern: re.Pattern[str], what: str, *, empty: bool = False) -> Callable[[str], str]:
    def check(text: str) -> str:
        if (empty and text == "") or pattern.fullmatch(text):
            return text
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")

    return check


def _endpoint_url(text: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        _ = parts.port  # ValueError for a port that is not a number from 0 to 65535
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL, e.g. http://127.0.0.1:5000"
        )
    return text


def _mib(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of MiB") from None
    if value * MiB < S3_MIN_PART:
        raise argparse.ArgumentTypeError(
            f"{value} MiB is below S3's {S3_MIN_PART // MiB} MiB minimum part size"
        )
    return value * MiB


def _bounded(flag: str, low: int, high: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} {value}: use {low} to {high}")
        return value

    return check


_function = _pattern(_FUNCTION_RE, "a Lambda function name (1-64 letters, digits, - and _) or ARN")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--region",
        type=_pattern(_REGION_RE, "a region name such as us-east-1"),
        help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's)",
    )
    parser.add_argument(
        "--endpoint-url",
        type=_endpoint_url,
        metavar="URL",
        help="send AWS calls here, e.g. a local emulator http://127.0.0.1:5000 "
        "(default: AWS_ENDPOINT_URL, else AWS)",
    )
    parser.add_argument(
        "--profile",
        type=_pattern(_PROFILE_RE, "a profile name"),
        help="a profile from ~/.aws/config (default: AWS_PROFILE)",
    )
    parser.add_argument(
        "--max-attempts",
        type=_bounded("--max-attempts", 1, MAX_ATTEMPTS_LIMIT),
        default=DEFAULT_MAX_ATTEMPTS,
        metavar="N",
        help="attempts per AWS call for throttling/5xx/connection errors, botocore's "
        f"standard retry mode (default {DEFAULT_MAX_ATTEMPTS})",
    )


def build_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<12}{text}" for name, text in COMMAND_HELP.items())
    root = OneLineParser(
        prog=PROG,
        usage=f"{PROG} COMMAND [options]",
        description="Operate the deployed Lambda function and its package in S3, and backtest "
        "a stack's strategy on its stored data.",
        epilog=f"commands:\n{commands}\n\n{PROG} COMMAND --help shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The command list is the epilog above: argparse's own wraps long names badly.
    sub = root.add_subparsers(
        dest="command",
        required=True,
        parser_class=OneLineParser,
        metavar="COMMAND",
        help=argparse.SUPPRESS,
    )

    def command(name: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, prog=f"{PROG} {name}", help=COMMAND_HELP[name], description=COMMAND_HELP[name]
        )

    up = command("upload")
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
        help="only warn (instead of refusing) when KEY is not a package key under "
        "lambda/<environment>/",
    )
    up.add_argument("--force", action="store_true", help="upload even if S3 has these bytes")
    up.add_argument(
        "--multipart-threshold-mib",
        type=_mib,
        default=MULTIPART_THRESHOLD,
        metavar="N",
        help=f"upload in parts from N MiB on (default {MULTIPART_THRESHOLD // MiB})",
    )
    up.add_argument(
        "--part-size-mib",
        type=_mib,
        default=PART_SIZE,
        metavar="N",
        help=f"default {PART_SIZE // MiB}",
    )
    up.add_argument(
        "--max-concurrency",
        type=_bounded("--max-concurrency", 1, 64),
        default=10,
        metavar="N",
        help="parts sent at once (default 10, s3transfer's)",
    )
    up.add_argument("--json", action="store_true", help="print the result as JSON")

    rb = command("rollback")
    rb.add_argument("--function", required=True, type=_function)
    rb.add_argument("--alias", default="live", type=_pattern(_ALIAS_RE, "an alias name"))
    which = rb.add_mutually_exclusive_group()
    which.add_argument("--to", type=int, metavar="VERSION")
    which.add_argument("--steps", type=int, default=1)
    _common(rb)

    st = command("status")
    st.add_argument("--function", required=True, type=_function)
    st.add_argument(
        "--alias",
        default="live",
        type=_pattern(_ALIAS_RE, "an alias name", empty=True),
        help="'' to show $LATEST",
    )
    st.add_argument("--bucket", help="with --key: find the S3 object version the code came from")
    st.add_argument("--key")
    st.add_argument(
        "--manifest", type=Path, metavar="PATH", help="check CodeSha256 against this build"
    )
    st.add_argument("--json", action="store_true")
    _common(st)

    iv = command("invoke")
    iv.add_argument("--function", required=True, type=_function)
    iv.add_argument("--payload", help='JSON event (default {"test": true})')
    iv.add_argument(
        "--qualifier",
        type=_pattern(_QUALIFIER_RE, "a version number, $LATEST or an alias"),
        help="version or alias (default: unqualified, $LATEST)",
    )
    iv.add_argument("--logs", action="store_true", help="also print the last 4 KB of its log")
    _common(iv)

    cs = command("coldstarts")
    cs.add_argument("--function", required=True, type=_function)
    cs.add_argument("--since", default="24h", help="30m, 24h, 7d ... (default 24h)")
    cs.add_argument(
        "--log-group",
        type=_pattern(_LOG_GROUP_RE, "a log group name"),
        help="default /aws/lambda/<function>",
    )
    cs.add_argument("--json", action="store_true")
    _common(cs)

    _backtest_options(command("backtest"))
    return root


def _backtest_options(bt: argparse.ArgumentParser) -> None:
    from backend.trading.backtest import add_options
    from ops.commands import ROOT

    bt.add_argument(
        "--stack",
        required=True,
        type=_pattern(_STACK_RE, "a stack name (letters, digits, '.', '-' and '_')"),
        help="read Pulumi.<stack>.yaml: the bucket, environment, symbols and trading keys",
    )
    bt.add_argument(
        "--project-dir",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="where Pulumi.yaml is (default: this checkout)",
    )
    add_options(bt, symbols_help="comma-separated; default: the stack's symbols")
    _common(bt)


def _with_notes(message: str, exc: BaseException) -> str:
    """The message, then what became of the work (an aborted upload), on one line."""
    notes: list[str] = getattr(exc, "__notes__", [])
    return "; ".join(part for part in [message, *notes] if part)


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from ops import failures, signals
    from ops.upload import ChecksumMismatch

    argv = list(sys.argv[1:] if argv is None else argv)
    calls = CallLog()
    profile_from = "AWS_PROFILE"
    try:
        with signals.interruptible():
            args = build_parser().parse_args(argv)
            profile_from = "--profile" if args.profile else "AWS_PROFILE"
            code = COMMANDS[args.command](args, calls)
    except UserError as exc:
        code = report_failure(_with_notes(str(exc), exc), 2)
    except ChecksumMismatch as exc:
        code = report_failure(_with_notes(str(exc), exc), 1)
    except KeyboardInterrupt as exc:
        what = _with_notes("", exc) or "interrupted: stopped before finishing"
        print(f"error: {what} ({signals.signal_name(exc)})", file=sys.stderr)
        code = signals.exit_code(exc)
    except (BotoCoreError, ClientError) as exc:
        failure = failures.explain(exc, calls.last, profile_from=profile_from)
        if failure is not None:
            code = report_failure(_with_notes(failure.message, exc), failure.exit_code)
        else:
            known = failures.unknown_client_error(exc) if isinstance(exc, ClientError) else None
            code = report_failure(_with_notes(known or describe(exc), exc), 1, unexpected=True)
    except Exception as exc:
        code = report_failure(_with_notes(describe(exc), exc), 1, unexpected=True)
    return code
