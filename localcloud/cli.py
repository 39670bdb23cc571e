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
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lambda_pkg.errors import OneLineParser, UserError, describe, report_failure
from localcloud.emulator import EMULATOR_ENV
from localcloud.state import (
    CloudState,
    StateError,
    default_cache_dir,
    default_state_dir,
    read_state,
    remove_state,
    state_path,
)

ROOT = Path(__file__).resolve().parents[1]
LOG_FILE = "localcloud.log"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
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
    st = sub.add_parser("status", help="is it running: where, since when, warm environments")
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


# --- finding the running cloud ------------------------------------------------------


def _probe(state: CloudState) -> dict[str, Any] | None:
    """The cloud's status if it answers on its port with its own token, else None."""
    try:
        with urllib.request.urlopen(  # noqa: S310 - loopback, our own port
            f"{state.url}/_localcloud/status", timeout=3
        ) as answer:
            doc = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("token") == state.token else None


def _is_daemon(pid: int) -> bool:
    """Is `pid` a `localcloud serve` process (not a stranger that reused the pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to "some process has this pid"
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"localcloud" in cmdline and b"serve" in cmdline


def _read(state_dir: Path) -> CloudState | None:
    try:
        return read_state(state_dir)
    except StateError as exc:
        raise UserError(str(exc)) from None


def _running(state_dir: Path) -> tuple[CloudState, dict[str, Any]] | None:
    state = _read(state_dir)
    if state is None:
        return None
    status = _probe(state)
    return (state, status) if status is not None else None


def export_lines(state: CloudState) -> list[str]:
    creds = {k: v for k, v in EMULATOR_ENV.items() if not k.endswith("REGION")}
    return [
        f"export AWS_ENDPOINT_URL={state.url}",
        *(f"export {key}={value}" for key, value in creds.items()),
        f"export AWS_DEFAULT_REGION={state.region}",
        f"export AWS_REGION={state.region}",
        # A profile would win over these credentials in some tools: none, here.
        "unset AWS_PROFILE AWS_DEFAULT_PROFILE",
    ]


# --- commands -------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    """Could the front listen on `port`? (SO_REUSEADDR, as the server binds: a port
    whose old connections linger in TIME_WAIT is free.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Does anything accept connections on 127.0.0.1:`port`?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "; its log ends:\n  " + "\n  ".join(tail) if tail else ""


def cmd_up(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    found = _running(state_dir)
    if found is not None:
        state, _ = found
        _err(f"localcloud: already running at {state.url} (pid {state.pid}); not starting another")
        _print_env(state)
        return 0
    stale = _read(state_dir)
    if stale is not None and _is_daemon(stale.pid):
        raise UserError(
            f"a local cloud (pid {stale.pid}) is recorded in {state_path(state_dir)} but does "
            "not answer; stop it first: python -m localcloud down"
        )
    if stale is not None:
        remove_state(state_dir)
    if args.port and not _port_free(args.port):
        raise UserError(f"--port {args.port}: already in use; pick another, or omit --port")
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE
    argv = [
        sys.executable,
        "-m",
        "localcloud",
        "serve",
        "--state-dir",
        str(state_dir),
        "--cache-dir",
        str(args.cache_dir.resolve()),
        "--port",
        str(args.port),
        "--region",
        args.region,
        "--idle-seconds",
        str(args.idle_seconds),
        "--max-environments",
        str(args.max_environments),
    ]
    if args.tick_seconds:
        argv += ["--tick-seconds", str(args.tick_seconds)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in this terminal, or this shell closing, leaves it up.
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            code = proc.returncode
            raise_as = UserError if code == 2 else RuntimeError
            raise raise_as(
                f"the local cloud exited during start (code {code}){_log_tail(log_path)}"
            )
        started = _read(state_dir)
        if started is not None and started.pid == proc.pid and _probe(started) is not None:
            _err(
                f"localcloud: up at {started.url} (moto_server {started.moto_url}, "
                f"pid {started.pid}); log {log_path}"
            )
            _err('localcloud: paste these lines, or run: eval "$(python -m localcloud env)"')
            _print_env(started)
            return 0
        time.sleep(0.1)
    _stop_pid(proc.pid)
    raise RuntimeError(f"the local cloud did not answer within {STARTUP_TIMEOUT_S:.0f} s"
                       f"{_log_tail(log_path)}")  # fmt: skip


def _print_env(state: CloudState) -> None:
    for line in export_lines(state):
        _out(line)


def cmd_env(args: argparse.Namespace) -> int:
    found = _running(args.state_dir.resolve())
    if found is None:
        raise UserError("no local cloud is running; start one: python -m localcloud up")
    _print_env(found[0])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    found = _running(state_dir)
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
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1]
    except (OSError, IndexError):
        return True
    return not status.startswith("Z")


def _stop_pid(pid: int) -> bool:
    """SIGTERM, then SIGKILL to its process group; True once it is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # its group: the daemon started its own session
    except ProcessLookupError:
        return True
    time.sleep(0.5)
    return not _alive(pid)


def cmd_down(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir.resolve()
    state = _read(state_dir)
    if state is None:
        _err(f"localcloud: not running (state dir {state_dir})")
        return 0
    if not _is_daemon(state.pid):
        remove_state(state_dir)
        _err("localcloud: not running (removed a stale state file)")
        return 0
    if not _stop_pid(state.pid):
        raise RuntimeError(f"pid {state.pid} did not stop")
    deadline = time.monotonic() + 5
    while listening(state.port) or listening(state.moto_port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"ports {state.port}/{state.moto_port} still in use after stopping")
        time.sleep(0.1)
    remove_state(state_dir)
    _err(f"localcloud: stopped (pid {state.pid}); nothing is left running")
    return 0


def cmd_fire(args: argparse.Namespace) -> int:
    import boto3

    from localcloud.schedule import RuleError, fire

    found = _running(args.state_dir.resolve())
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
    from localcloud.daemon import ServeOptions, serve

    return serve(
        ServeOptions(
            state_dir=args.state_dir.resolve(),
            cache_dir=args.cache_dir.resolve(),
            port=args.port,
            region=args.region,
            tick_seconds=args.tick_seconds,
            idle_seconds=args.idle_seconds,
            max_environments=args.max_environments,
        )
    )


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
