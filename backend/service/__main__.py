"""`python -m backend.service [--once | --replay N]`, `... health [--strict]`,
`... summary`, `... resume --reason TEXT` (docs/trading.md, docs/CONTRACTS.md section 10).

Exit codes: 0 done; 1 a step failed (--once/--replay) or unhealthy; 2 a user error
(settings, broker secret), printed as one line per problem, no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from backend import jsonlog
from backend.clients import AwsClients
from backend.service import health
from backend.service.runner import Heartbeat, Records, Runner
from backend.service.settings import ServiceSettings, ServiceSettingsError
from backend.trading.broker import Broker, BrokerConfigError
from backend.trading.calendar import TradingCalendar, default_calendar
from backend.trading.ledger import Ledger, LedgerConflict

# ECS sends SIGKILL stopTimeout seconds after SIGTERM (the task definition sets 30 s or
# more). A step normally ends in well under a second; if one hangs (a broker call
# without an answer), the process leaves on its own first: every write is crash-safe.
SHUTDOWN_SECONDS = 25.0


def make_broker(settings: ServiceSettings, clients: Any) -> Broker:
    config = settings.trading
    if config.trading_mode == "paper":
        from backend.trading.paper import PaperBroker

        return PaperBroker(
            cash=config.paper_cash,
            slippage_bps=config.paper_slippage_bps,
            fee_rate=config.paper_fee_rate,
        )
    if config.trading_mode == "alpaca-live" and (
        not config.live_trading or settings.environment != "prod"
    ):
        # parse_trading_config refuses this already; a second lock on the live door.
        raise BrokerConfigError(
            f"tradingMode alpaca-live refused on environment {settings.environment!r}: "
            "live trading needs liveTrading: true on prod"
        )
    from backend.secrets import SecretError
    from backend.trading.alpaca import AlpacaBroker, parse_credentials

    arn = settings.broker_secret_arn or ""
    try:
        secret = clients.secret_reader(arn).get()
    except SecretError as err:
        raise BrokerConfigError(f"BROKER_SECRET_ARN: {err}") from None
    return AlpacaBroker(
        credentials=parse_credentials(secret, arn),
        paper=config.trading_mode != "alpaca-live",
        url=settings.broker_url,
    )


def make_ledger(settings: ServiceSettings, clients: Any) -> Ledger:
    from backend.trading.dynamo import DynamoStore

    return Ledger(DynamoStore(client=clients.get("dynamodb"), table_name=settings.ledger_table))


def make_runner(
    settings: ServiceSettings,
    *,
    calendar: TradingCalendar | None = None,
    clients: AwsClients | None = None,
) -> Runner:
    from backend.layout import index_key
    from backend.service.market import MarketData
    from backend.trading.history import S3Source

    # One client per service for the whole process (market data, ledger, records).
    clients = clients or AwsClients()
    calendar = calendar or default_calendar()
    return Runner(
        config=settings.trading,
        environment=settings.environment,
        symbols=settings.symbols,
        market=MarketData(
            client=clients.get("dynamodb"),
            table=settings.market_data_table,
            interval=settings.trading.bar_interval,
            history=S3Source(client=clients.get("s3"), bucket=settings.bucket_name),
            index_key=index_key(settings.data_prefix),
            calendar=calendar,
        ),
        ledger=make_ledger(settings, clients),
        broker=make_broker(settings, clients),
        calendar=calendar,
        records=Records(
            client=clients.get("s3"), bucket=settings.bucket_name, logs_prefix=settings.logs_prefix
        ),
    )


def serve(
    runner: Runner,
    heartbeat: Heartbeat,
    *,
    poll_seconds: float,
    once: bool,
    replay: int | None,
    stop: threading.Event,
) -> int:
    """The loop: a step, a heartbeat, a wait that SIGTERM cuts short."""
    while True:
        try:
            report = runner.step(replay=replay)
        except LedgerConflict as err:
            # Someone else wrote (a second task, an operator): re-read, never overwrite.
            jsonlog.log(logging.ERROR, "ledger conflict: reloading", error=str(err))
            heartbeat.beat(None, f"ledger conflict: {err}")
            runner.engine.reload()
            ok = False
        except Exception as err:
            jsonlog.log(logging.ERROR, "step failed", exc_info=True, error=str(err))
            heartbeat.beat(None, f"{type(err).__name__}: {err}")
            ok = False
        else:
            ok = True
            heartbeat.beat(report)
            jsonlog.log(logging.INFO, "step", **report.to_json())
            if report.halted:
                jsonlog.log(logging.ERROR, "kill switch halted", reason=report.halt_reason)
            if report.stale:
                jsonlog.log(logging.WARNING, "stale data", symbols=list(report.stale))
        if once or replay is not None:
            return 0 if ok else 1
        if stop.wait(poll_seconds):
            jsonlog.log(logging.INFO, "stopping: signal received, step finished")
            return 0


def _install_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return
        stop.set()
        jsonlog.log(logging.INFO, "signal received: finishing the current step", signal=signum)

        def give_up() -> None:
            jsonlog.log(logging.ERROR, f"step still running after {SHUTDOWN_SECONDS:g} s: exiting")
            os._exit(1)

        timer = threading.Timer(SHUTDOWN_SECONDS, give_up)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def _settings(env: Mapping[str, str]) -> ServiceSettings:
    settings = ServiceSettings.from_env(env)
    jsonlog.configure()
    jsonlog.set_level(settings.log_level)
    jsonlog.bind(service="strategy", environment=settings.environment)
    return settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend.service", description=__doc__)
    p.add_argument(
        "command", nargs="?", default="run", choices=("run", "health", "summary", "resume")
    )
    p.add_argument("--once", action="store_true", help="one step, then exit")
    p.add_argument(
        "--replay", type=int, metavar="N", help="trade the newest N closed bars, then exit"
    )
    p.add_argument("--strict", action="store_true", help="health: degraded (halted, stale) exits 1")
    p.add_argument("--reason", default="", help="resume: why the kill switch may trade again")
    return p


def summary(ledger: Ledger) -> dict[str, Any]:
    """Orders, positions and equity from the ledger (the rehearsal's `strategy` object)."""
    orders = ledger.orders()
    by_status: dict[str, int] = {}
    for order in orders:
        by_status[order.status.value] = by_status.get(order.status.value, 0) + 1
    curve = ledger.equity_curve(newest=1)
    cash = ledger.cash()
    kill = ledger.kill_switch()
    return {
        "orders": len(orders),
        "orders_by_status": dict(sorted(by_status.items())),
        "fills": len(ledger.fills()),
        "positions": [
            {
                "symbol": symbol,
                "qty": p.holding.qty,
                "avg_price": p.holding.avg_price,
                "realised_pnl": p.holding.realised_pnl,
            }
            for symbol, p in sorted(ledger.positions().items())
            if p.holding.qty
        ],
        "equity": curve[-1].equity if curve else (cash.cash if cash else None),
        "equity_day": curve[-1].day if curve else None,
        "cash": cash.cash if cash else None,
        "halted": kill.halted,
        "halt_reason": kill.reason,
    }


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    calendar: TradingCalendar | None = None,
) -> int:
    args = _parser().parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "health":
        from pathlib import Path

        from backend.service.settings import DEFAULT_HEARTBEAT

        path = Path(environ.get("HEARTBEAT_FILE", "").strip() or DEFAULT_HEARTBEAT)
        result = health.check(path)
        print(
            json.dumps({"status": result.status, "problems": list(result.problems), **result.doc})
        )
        return result.exit_code(strict=args.strict)
    if args.replay is not None and args.replay < 1:
        print("error: --replay N: N must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = _settings(environ)
        if args.command in ("summary", "resume"):
            ledger = make_ledger(settings, AwsClients())
            if args.command == "summary":
                print(json.dumps(summary(ledger), sort_keys=True))
                return 0
            return _resume(ledger, args.reason)
        runner = make_runner(settings, calendar=calendar)
    except (ServiceSettingsError, BrokerConfigError) as err:
        for line in str(err).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    stop = threading.Event()
    _install_signals(stop)
    jsonlog.log(
        logging.INFO,
        "starting",
        strategy=settings.trading.strategy,
        mode=settings.trading.trading_mode,
        symbols=len(settings.symbols),
    )
    return serve(
        runner,
        Heartbeat(settings.heartbeat_file, settings.poll_seconds),
        poll_seconds=settings.poll_seconds,
        once=args.once,
        replay=args.replay,
        stop=stop,
    )


def _resume(ledger: Ledger, reason: str) -> int:
    if not reason.strip():
        print("error: resume --reason TEXT: say why trading may start again", file=sys.stderr)
        return 2
    kill = ledger.kill_switch()
    if not kill.halted:
        print(json.dumps({"halted": False, "message": "the kill switch is not halted"}))
        return 0
    curve = ledger.equity_curve(newest=1)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    updated = ledger.set_kill_switch(
        kill,
        halted=False,
        reason=f"resumed by operator: {reason.strip()} (was: {kill.reason})",
        since=now,
        resumed_through=curve[-1].day if curve else "",
    )
    print(json.dumps({"halted": updated.halted, "reason": updated.reason}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
