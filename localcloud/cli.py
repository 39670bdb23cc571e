"""`python -m localcloud up|status|env|fire|down`: the local cloud as a background
service.

`up` starts it (or finds the one already running) and prints, on stdout, the lines
that point a shell at it; everything else goes to stderr, so
`eval "$(python -m localcloud up)"` works. A user error is one line and exit 2;
`status` exits 3 when nothing is running (as an init script's status does).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambda_pkg.errors import OneLineParser, UserError, describe, report_failure
from localcloud.control import (
    LOG_FILE,
    CloudSettings,
    ensure_running,
    export_lines,
    running,
    stop,
)
from localcloud.emulator import EMULATOR_ENV
from localcloud.state import CloudState, default_cache_dir, default_state_dir

NOT_RUNNING = 3


def _out(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
        return value

    return parse


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535, or 0: a free one)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="python -m localcloud", description=__doc__.split("\n\n")[0])
    sub = root.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state-dir",
            type=Path,
            default=default_state_dir(),
            metavar="DIR",
            help=f"where the running cloud is recorded (default {default_state_dir()})",
        )

    def settings(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=_port, default=0, help="the endpoint's port (default: free)")
        p.add_argument("--region", default=EMULATOR_ENV["AWS_REGION"], help="default us-east-1")
        p.add_argument(
            "--cache-dir",
            type=Path,
            default=default_cache_dir(),
            metavar="DIR",
            help="Lambda runtimes and unpacked code (default %(default)s)",
        )
        p.add_argument(
            "--tick-seconds",
            type=_positive(float),
            metavar="S",
            help="compressed clock: fire every enabled scheduled rule every S seconds",
        )
        p.add_argument(
            "--idle-seconds",
            type=_positive(float),
            default=300.0,
            metavar="S",
            help="retire a warm execution environment after S idle seconds (default 300)",
        )
        p.add_argument(
            "--max-environments",
            type=_positive(int),
            default=4,
            metavar="N",
            help="concurrent environments per unreserved function (default 4)",
        )

    up = sub.add_parser("up", help="start the local cloud in the background; print its env")
    state_dir(up)
    settings(up)
    st = sub.add_parser("status", help="is it running: where, since when, warm environments, tasks")
    state_dir(st)
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    env = sub.add_parser("env", help="print the export lines for the running cloud")
    state_dir(env)
    fire = sub.add_parser("fire", help="fire an EventBridge rule's Lambda targets now")
    fire.add_argument("rule", metavar="RULE", help="the rule's name")
    fire.add_argument("--event-bus", default="default", help="default: default")
    state_dir(fire)
    down = sub.add_parser("down", help="stop it; nothing is left running")
    state_dir(down)
    serve = sub.add_parser("serve", help="run in the foreground (what `up` starts)")
    state_dir(serve)
    settings(serve)
    return root


# --- commands -------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> CloudSettings:
    return CloudSettings(
        state_dir=args.state_dir.resolve(),
        cache_dir=args.cache_dir.resolve(),
        port=args.port,
        region=args.region,
        tick_seconds=args.tick_seconds,
        idle_seconds=args.idle_seconds,
        max_environments=args.max_environments,
    )


def _print_env(state: CloudState) -> None:
    for line in export_lines(state):
        _out(line)


def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings(args)
    state, started = ensure_running(settings)
    if not started:
        _err(f"localcloud: already running at {state.url} (pid {state.pid}); not starting another")
    else:
        _err(
            f"localcloud: up at {state.url} (moto_server {state.moto_url}, pid {state.pid}); "
            f"log {settings.state_dir / LOG_FILE}"
        )
        _err('localcloud: paste these lines, or run: eval "$(python -m localcloud env)"')
    _print_env(state)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    found = running(args.state_dir)
    if found is None:
        raise UserError("no local cloud is running; start one: python -m localcloud up")
    _print_env(found[0])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    found = running(state_dir)
    if found is None:
        if args.json:
            _out(json.dumps({"running": False, "state_dir": str(state_dir)}))
        else:
            _err(f"localcloud: not running (state dir {state_dir})")
        return NOT_RUNNING
    state, status = found
    if args.json:
        _out(json.dumps({"running": True, **{k: v for k, v in status.items() if k != "token"}}))
        return 0
    tick = f", firing schedules every {state.tick_seconds:g} s" if state.tick_seconds else ""
    _out(
        f"localcloud: running at {state.url} (pid {state.pid}, up {status.get('uptime_s')} s, "
        f"moto_server {state.moto_url}{tick})"
    )
    envs = status.get("environments") or []
    _out(f"execution environments: {len(envs)}")
    for env in envs:
        _out(
            f"  {env['function']}:{env['version']}  pid {env['pid']}  "
            f"{'busy' if env['busy'] else 'idle ' + str(env['idle_s']) + ' s'}  "
            f"{env['invocations']} invocation(s)"
        )
    tasks = status.get("tasks") or []
    _out(f"tasks: {len(tasks)}")
    for task in tasks:
        since = datetime.fromtimestamp(task["since"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _out(
            f"  {task['name']}  pid {task['pid']}  {task['task_definition']}  since {since}  "
            f"logs {task['log_group']} {task['log_stream']}"
        )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = stop(args.state_dir)
    if stopped.state is not None:
        _err(f"localcloud: stopped (pid {stopped.state.pid}); nothing is left running")
    elif stopped.stale:
        _err("localcloud: not running (removed a stale state file)")
    else:
        _err(f"localcloud: not running (state dir {args.state_dir.resolve()})")
    return 0


def cmd_fire(args: argparse.Namespace) -> int:
    import boto3

    from localcloud.schedule import RuleError, fire

    found = running(args.state_dir)
    if found is None:
        raise UserError("no local cloud is running; start one: python -m localcloud up")
    state = found[0]
    session = boto3.session.Session(
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=state.region,
    )
    events = session.client("events", endpoint_url=state.url)
    lam = session.client("lambda", endpoint_url=state.url)
    try:
        rule, fired = fire(args.rule, events=events, lam=lam, bus=args.event_bus)
    except RuleError as exc:
        raise UserError(
            f"{exc}; list them: aws events list-rules --endpoint-url {state.url}"
        ) from None
    if rule.get("State") == "DISABLED":
        _err(f"localcloud: rule {args.rule} is DISABLED; fired anyway, as asked")
    if not fired:
        _err(f"localcloud: rule {args.rule} has no targets; nothing to fire")
    for target in fired:
        rid = f" (request {target.request_id})" if target.request_id else ""
        _out(f"{args.rule} -> {target.arn}: {target.outcome}{rid}")
    return 0 if all(target.ok for target in fired) else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from localcloud.daemon import serve

    return serve(_settings(args))


COMMANDS = {
    "up": cmd_up,
    "status": cmd_status,
    "env": cmd_env,
    "fire": cmd_fire,
    "down": cmd_down,
    "serve": cmd_serve,
}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        return report_failure(str(exc), UserError.exit_code)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return report_failure(describe(exc), 1, unexpected=True)
