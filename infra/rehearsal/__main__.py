"""`python -m infra.rehearsal [--stack dev] [--json] [--keep | --down]`: deploy the
stack to emulated AWS, invoke the deployed handler and show what landed. Exit 0 only
if every step passed; otherwise the failing step is named, with the reason.

--keep deploys into the persistent local cloud instead (started if none runs) and
leaves it running; run again, it deploys only what changed. --down stops it."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when needed: a bare interpreter must reach the missing-packages line
    from infra.rehearsal.run import Result

PROJECT_DIR = Path(__file__).resolve().parents[2]
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
# Said after any failure or interrupt: the rehearsal cannot change a real account.
UNTOUCHED = "nothing real was touched (the rehearsal talks to a local emulator only)"


class Stopped(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP (Ctrl-C, a CI timeout, `kill`, a closed terminal):
    unwinds, so the emulator and the temp files are cleaned up on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _orderly_stop_on_signals(received: list[int], *, keep: bool = False) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Stopped while the rehearsal runs (then
    restored); `received` collects the signals that arrived.

    The list, not the exception, is what decides the exit code: Ctrl-C reaches the
    whole process group, moto_server included, and a handler's request to the dying
    emulator can fail first. Pulumi then reports that failure in place of the
    interrupt (it re-raises the first failed registration), which is not the story.
    """

    watchdogs: list[threading.Timer] = []

    def stop_on(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            watchdogs.append(_exit_if_stuck(signum, keep=keep))
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
        # Unwound in time: the rehearsal's own code is done, so no forced exit (a caller
        # of main(argv) in process, such as a test, keeps running).
        for watchdog in watchdogs:
            watchdog.cancel()
        for sig, old in saved.items():
            signal.signal(sig, old)


# How long unwinding may take after a signal. Pulumi's engine can swallow the interrupt
# inside its event loop and wait there for registrations a kept cloud still answers; the
# --keep record marks each resource pending before its call, so leaving is safe.
UNWIND_S = 20.0


def _exit_if_stuck(signum: int, *, keep: bool) -> threading.Timer:
    def leave() -> None:
        print(
            f"error: still unwinding {UNWIND_S:.0f} s after {signal.Signals(signum).name}; "
            "leaving now (a --keep record marks what was in flight: run --keep again)",
            file=sys.stderr,
            flush=True,
        )
        if keep:
            # What an orderly stop says, and as true here: the kept cloud runs on, and
            # its record marks each resource pending before its call.
            _interrupted(signum, keep=True)
            sys.stderr.flush()
        os._exit(128 + signum)

    timer = threading.Timer(UNWIND_S, leave)
    timer.daemon = True
    timer.start()
    return timer


def python_command() -> str:
    """This interpreter as the user can type it: `.venv/bin/python` from the project,
    never a bare `python` (the system one lacks the project's packages)."""
    rel = os.path.relpath(sys.executable)
    return rel if not rel.startswith("..") else sys.executable


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument(
        "--keep",
        action="store_true",
        help="deploy into the local cloud (python -m localcloud) and leave it running; "
        "again: deploy only what changed",
    )
    parser.add_argument("--down", action="store_true", help="stop the local cloud --keep left")
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="the local cloud's state dir, for --keep/--down (default .build/localcloud/run)",
    )
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parse(_parser(), argv)
    if args is None:
        return 2
    if args.down:
        from infra.rehearsal.keep import down

        print(down(args.state_dir or _default_state_dir()), file=sys.stderr)
        return 0

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

    # Progress goes to stderr; --json alone keeps it quiet, --verbose wins.
    quiet = args.json and not args.verbose
    received: list[int] = []
    try:
        with _orderly_stop_on_signals(received, keep=args.keep):
            result = rehearse(
                args.project_dir,
                args.stack,
                overrides=overrides,
                verbose=args.verbose,
                progress=None if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True)),
                keep=(args.state_dir or _default_state_dir()) if args.keep else None,
            )
    except KeyboardInterrupt:
        received = received or [signal.SIGINT]  # raised before the handlers were set
    if received:
        return _interrupted(received[0], keep=args.keep)
    return _report(result, as_json=args.json)


def _interrupted(signum: int, *, keep: bool) -> int:
    how = (
        "interrupted (Ctrl-C)"
        if signum == signal.SIGINT
        else f"stopped by {signal.Signals(signum).name}"
    )
    if keep:
        # The record is rewritten after each resource the cloud accepts (infra.rehearsal.keep).
        print(
            f"{how}: the local cloud keeps running and its record names what it holds; "
            "run --keep again to finish, or --down to stop it",
            file=sys.stderr,
        )
    else:
        # The emulator and temp files are already cleaned up by the context managers.
        print(f"{how}: the emulator was stopped; {UNTOUCHED}", file=sys.stderr)
    return 128 + signum


def _report(result: Result, *, as_json: bool) -> int:
    from infra.rehearsal.summary import render

    if as_json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print()
        print(render(result))
        if result.kept is not None and result.ok:
            _print_handoff(result)
    if result.ok:
        return 0
    print(f"error: rehearsal step '{result.failed_step}' failed: {result.error}", file=sys.stderr)
    print(f"The rehearsal failed; {UNTOUCHED}.", file=sys.stderr)
    if result.kept is not None:
        print(
            f"The local cloud keeps running at {result.kept.url} with what was deployed "
            "before the failure; fix the cause and run --keep again, or --down to stop it.",
            file=sys.stderr,
        )
    # A stack or config value that is wrong is the user's to fix; anything else is a
    # failed check.
    return 2 if result.user_error else 1


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | None:
    """The arguments, or None after a one-line error for a combination that makes no sense."""
    args = parser.parse_args(argv)
    bad = None
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.stack):
        bad = f"--stack {args.stack!r} is not a stack name"
    elif args.keep and args.down:
        bad = "--keep and --down do not combine: --keep deploys and leaves it up, --down stops it"
    elif args.down and (args.json or args.config):
        bad = "--down stops the local cloud; it takes no --json or --config"
    elif args.state_dir is not None and not (args.keep or args.down):
        bad = "--state-dir is for --keep and --down (the plain rehearsal uses a throwaway emulator)"
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return None
    return args


def _default_state_dir() -> Path:
    from localcloud.state import default_state_dir

    return default_state_dir()


def _print_handoff(result: Result) -> None:
    """What to paste next: the export lines, then the seed guide's commands."""
    from localcloud.control import probe

    kept, deployed, python = result.kept, result.deployed, python_command()
    if kept is None or deployed is None:
        return
    fn, bucket, key = deployed.function, deployed.bucket, deployed.key
    rules = [r.physical_id for r in result.resources if r.token == EVENT_RULE]
    # The strategy service's task, if the cloud runs one (paper mode): where it logs.
    status = probe(kept.cloud) or {}
    service_logs = next((t["log_group"] for t in status.get("tasks") or []), None)
    lines = [
        "",
        f"The local cloud keeps running at {kept.url} ({kept.changes.summary()}).",
        "Point a shell at it (paste these lines):",
        *(f"  {line}" for line in kept.export_lines()),
        "Then the seed guide's commands work as written:",
        f"  aws s3 ls s3://{bucket}/{key.rsplit('/', 1)[0]}/",
        f"  aws lambda invoke --function-name {fn} --payload '{{\"test\": true}}' "
        "--cli-binary-format raw-in-base64-out out.json && cat out.json",
        "    (AWS CLI v1: leave out --cli-binary-format raw-in-base64-out)",
        f"  aws logs filter-log-events --log-group-name /aws/lambda/{fn} --filter-pattern REPORT",
        f"  aws lambda get-function --function-name {fn} --qualifier live",
    ]
    if rules:
        lines.append(f"  {python} -m localcloud fire {rules[0]}    # the schedule, now")
    if service_logs:
        lines += [
            f"  {python} -m localcloud status    # the strategy service's task runs here",
            f"  aws logs filter-log-events --log-group-name {service_logs}",
        ]
    lines += [
        f"  {python} -m ops coldstarts --function {fn}",
        "Redeploy after a change (only what changed is deployed): scripts/deploy.sh --local --keep",
        "Stop it (nothing is left running): scripts/deploy.sh --local --down",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown. Everything of ours is already unwound by
    # its context manager (the emulator stopped, temp dirs gone, a --keep record saved),
    # and the teardown only costs time: freeing pulumi_aws's and moto's classes one by
    # one takes ~1.4 s (bench/rehearsal.py's wall time against its in-process time).
    # When interrupted (code >= 128) it would also wait on Pulumi's worker threads, still
    # blocked on the engine loop the signal stopped; against a kept cloud, which still
    # answers them, they would wait forever.
    with contextlib.suppress(OSError):  # a closed pipe: nothing left to tell
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
