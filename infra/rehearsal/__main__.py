"""`python -m infra.rehearsal [--stack dev] [--json]`: deploy the stack to emulated
AWS, invoke the deployed handler and show what landed. Exit 0 only if every step
passed; otherwise the failing step is named, with the reason."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Said after any failure or interrupt: the rehearsal cannot change a real account.
UNTOUCHED = "nothing real was touched (the rehearsal talks to a local emulator only)"


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI timeout, `kill`, a closed terminal): unwinds like
    Ctrl-C, so the emulator and the temp files are cleaned up on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on(signum: int, _frame: object) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def _orderly_stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped while the rehearsal runs (then restored)."""
    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        # Left alone where the caller chose to ignore it (e.g. nohup), or off the
        # main thread, where Python cannot install handlers.
        if sig is None or signal.getsignal(sig) is not signal.SIG_DFL:
            continue
        with contextlib.suppress(ValueError):
            saved[sig] = signal.signal(sig, _stop_on)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.rehearsal",
        description="Deploy the stack to a local emulated AWS (moto_server), invoke the "
        "deployed function and show what landed. Needs no AWS account.",
    )
    parser.add_argument("--stack", default="dev", help="the stack to rehearse (default: dev)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack config value for this rehearsal (repeatable), "
        "e.g. --config marketDataProvider=fixture",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show each resource as it is created, the handler's log lines, and "
        "the emulator's log if a step fails (scripts/deploy.sh sets it for DEBUG=true)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.stack):
        print(f"error: --stack {args.stack!r} is not a stack name", file=sys.stderr)
        return 2

    from infra.config import ConfigError, parse_overrides

    try:
        overrides = parse_overrides(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from infra.rehearsal.run import rehearse
    from infra.rehearsal.summary import render

    # Progress goes to stderr; --json alone keeps it quiet, --verbose wins.
    quiet = args.json and not args.verbose
    try:
        with _orderly_stop_on_signals():
            result = rehearse(
                args.project_dir,
                args.stack,
                overrides=overrides,
                verbose=args.verbose,
                progress=None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True)),
            )
    except KeyboardInterrupt as exc:
        # The emulator and temp files are already cleaned up by the context managers.
        if isinstance(exc, Stopped):
            how, code = f"stopped by {exc}", 128 + exc.signum
        else:
            how, code = "interrupted (Ctrl-C)", 130
        print(f"{how}: the emulator was stopped; {UNTOUCHED}", file=sys.stderr)
        return code
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print()
        print(render(result))
    if result.ok:
        return 0
    print(f"error: rehearsal step '{result.failed_step}' failed: {result.error}", file=sys.stderr)
    print(f"The rehearsal failed; {UNTOUCHED}.", file=sys.stderr)
    # A stack or config value that is wrong is the user's to fix; anything else is a
    # failed check.
    return 2 if result.user_error else 1


if __name__ == "__main__":
    sys.exit(main())
