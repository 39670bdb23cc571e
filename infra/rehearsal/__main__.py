"""`python -m infra.rehearsal [--stack dev] [--json]`: deploy the stack to emulated
AWS, invoke the deployed handler and show what landed. Exit 0 only if every step
passed; otherwise the failing step is named, with the reason."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Said after any failure or interrupt: the rehearsal cannot change a real account.
UNTOUCHED = "nothing real was touched (the rehearsal talks to a local emulator only)"


class Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP (Ctrl-C, a CI timeout, `kill`, a closed terminal):
    unwinds, so the emulator and the temp files are cleaned up on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _orderly_stop_on_signals(received: list[int]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Stopped while the rehearsal runs (then
    restored); `received` collects the signals that arrived.

    The list, not the exception, is what decides the exit code: Ctrl-C reaches the
    whole process group, moto_server included, and a handler's request to the dying
    emulator can fail first. Pulumi then reports that failure in place of the
    interrupt (it re-raises the first failed registration), which is not the story.
    """

    def stop_on(signum: int, _frame: object) -> None:
        received.append(signum)
        raise Stopped(signum)

    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        # Left alone where the caller chose to ignore it (e.g. nohup), or off the
        # main thread, where Python cannot install handlers.
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        if sig is None or signal.getsignal(sig) is not default:
            continue
        with contextlib.suppress(ValueError):
            saved[sig] = signal.signal(sig, stop_on)
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def python_command() -> str:
    """This interpreter as the user can type it: `.venv/bin/python` from the project,
    never a bare `python` (the system one lacks the project's packages)."""
    rel = os.path.relpath(sys.executable)
    return rel if not rel.startswith("..") else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"{python_command()} -m infra.rehearsal",
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

    missing = [m for m in ("pulumi", "boto3", "moto") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: {sys.executable} lacks the project's packages ({', '.join(missing)}): "
              "run scripts/bootstrap.sh, then .venv/bin/python -m infra.rehearsal "
              "(or scripts/deploy.sh --local, which does both)", file=sys.stderr)  # fmt: skip
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
    received: list[int] = []
    try:
        with _orderly_stop_on_signals(received):
            result = rehearse(
                args.project_dir,
                args.stack,
                overrides=overrides,
                verbose=args.verbose,
                progress=None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True)),
            )
    except KeyboardInterrupt:
        received = received or [signal.SIGINT]  # raised before the handlers were set
    if received:
        # The emulator and temp files are already cleaned up by the context managers.
        signum = received[0]
        how = (
            "interrupted (Ctrl-C)"
            if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}"
        )
        print(f"{how}: the emulator was stopped; {UNTOUCHED}", file=sys.stderr)
        return 128 + signum
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
