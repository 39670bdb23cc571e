"""The backtester: the service's own strategy, risk, paper-broker and ledger code over
stored history. `python -m backend.trading.backtest (--data DIR | --stack NAME) [--json]`.

Conventions (docs/trading.md): the strategy sees adjusted, final bars (back_adjust over
each symbol's whole history: the signals are scale-invariant, so that equals adjusting
at every bar); orders are decided on a bar's close and fill at the next bar's open plus
slippage, paying fees as a fraction of notional; splits and dividends move the paper
account's shares and cash; equity is marked at each day's raw closes. The same input
gives the same bytes of `--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from backend.adjust import back_adjust
from backend.models import INTERVAL_SECONDS, Bar
from backend.trading import metrics
from backend.trading.engine import BarEvent, Engine
from backend.trading.history import (
    INDEX_NAME,
    DirectorySource,
    HistoryError,
    ObjectSource,
    S3Source,
    load_history,
)
from backend.trading.ledger import memory_ledger
from backend.trading.paper import PaperBroker
from backend.trading.settings import TradingConfig, TradingConfigError, parse_trading_config

DEFAULT_BUCKET = "cloud-trading-bot-lambda-deployment-m6x4p8e"


@dataclass(frozen=True, slots=True)
class BacktestResult:
    config: TradingConfig
    symbols: tuple[str, ...]
    bars: int
    start: str
    end: str
    initial_cash: float
    final_equity: float
    total_return: float
    cagr: float | None
    max_drawdown: float
    sharpe: float | None
    orders: int
    fills: int
    fees: float
    halted: str
    trades: tuple[metrics.Trade, ...]
    equity: tuple[tuple[str, float], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_raw(),
            "symbols": list(self.symbols),
            "bars": self.bars,
            "start": self.start,
            "end": self.end,
            "initial_cash": self.initial_cash,
            "final_equity": self.final_equity,
            "total_return": self.total_return,
            "cagr": self.cagr,
            "max_drawdown": self.max_drawdown,
            "sharpe": self.sharpe,
            "sharpe_convention": "daily simple returns, mean/stdev(ddof=1) x sqrt(252), rf 0",
            "fill_convention": "next bar's open +/- paperSlippageBps; fee paperFeeRate x notional",
            "orders": self.orders,
            "fills": self.fills,
            "trades_count": len(self.trades),
            "fees": self.fees,
            "halted": self.halted or None,
            "trades": [t.to_json() for t in self.trades],
            "equity": [list(point) for point in self.equity],
        }


def run_backtest(
    history: Mapping[str, Sequence[Bar]],
    config: TradingConfig,
    *,
    start: date | None = None,
    end: date | None = None,
) -> BacktestResult:
    """Trade `config` over raw `history` (per symbol). Bars before `start` only warm the
    strategy up; bars after `end` are ignored; unfinished bars are never used."""
    strategy = config.make_strategy()
    symbols = tuple(sorted(history))
    step = INTERVAL_SECONDS[config.bar_interval]
    by_day: dict[str, list[tuple[Bar, float]]] = {}
    for symbol in symbols:
        final = [
            b for b in history[symbol] if b.final and (end is None or b.timestamp.date() <= end)
        ]
        for raw, adjusted in zip(final, back_adjust(final), strict=True):
            by_day.setdefault(raw.timestamp.date().isoformat(), []).append((raw, adjusted.close))
    broker = PaperBroker(
        cash=config.paper_cash,
        slippage_bps=config.paper_slippage_bps,
        fee_rate=config.paper_fee_rate,
    )
    engine = Engine(
        config=config,
        universe=len(symbols),
        ledger=memory_ledger(),
        broker=broker,
        namespace="backtest",
        log_holds=False,
        track_cursor=False,
    )
    signals = {symbol: strategy.signal() for symbol in symbols}
    first = start.isoformat() if start else ""
    curve: list[tuple[str, float]] = []
    bars = 0
    for day in sorted(by_day):
        entries = by_day[day]
        if day < first:
            for raw, close in entries:
                signals[raw.symbol].update(close)
            continue
        events = []
        for raw, close in entries:
            signal = signals[raw.symbol]
            events.append(BarEvent(raw, signal.update(close)))
        bars += len(events)
        latest = max(raw.timestamp for raw, _ in entries)
        result = engine.step(events, now=latest + timedelta(seconds=step))
        curve.append((day, result.equity))
    values = [v for _, v in curve]
    final_equity = values[-1] if values else config.paper_cash
    first_day = date.fromisoformat(curve[0][0]) if curve else None
    last_day = date.fromisoformat(curve[-1][0]) if curve else None
    cash = engine.ledger.cash()
    return BacktestResult(
        config=config,
        symbols=symbols,
        bars=bars,
        start=curve[0][0] if curve else "",
        end=curve[-1][0] if curve else "",
        initial_cash=config.paper_cash,
        final_equity=final_equity,
        total_return=metrics.total_return(config.paper_cash, final_equity),
        cagr=(
            metrics.cagr(config.paper_cash, final_equity, first_day, last_day)
            if first_day and last_day
            else None
        ),
        max_drawdown=metrics.max_drawdown([config.paper_cash, *values]),
        sharpe=metrics.sharpe([config.paper_cash, *values]),
        orders=engine.orders_placed,
        fills=engine.fills_recorded,
        fees=cash.fees if cash else 0.0,
        halted=engine.kill.reason if engine.kill.halted else "",
        trades=tuple(metrics.trades_from_fills(engine.ledger.fills(), engine.marks)),
        equity=tuple(curve),
    )


# -- the CLI ---------------------------------------------------------------------------


class UsageError(ValueError):
    """A user error: printed as one line, exit 2."""


def _pairs(items: Sequence[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item!r}: use KEY=VALUE, e.g. {flag} fast=10")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _merge(raw: dict[str, Any], key: str, overrides: dict[str, Any]) -> None:
    """Command-line K=V pairs over an object key, which may still be the CLI's JSON text."""
    if not overrides:
        return
    given = raw.get(key) or {}
    if isinstance(given, str):
        try:
            given = json.loads(given)
        except json.JSONDecodeError:
            raise UsageError(f"{key}: not a JSON object in the stack config") from None
    if not isinstance(given, dict):
        raise UsageError(f"{key}: must be an object (a YAML map)")
    raw[key] = {**given, **overrides}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m backend.trading.backtest",
        description="Backtest a strategy on stored bars (docs/trading.md).",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--data", type=Path, help="a local copy of data/<env>/ (index.json, market/)"
    )
    where.add_argument("--stack", help="read the stack's bucket and its trading config")
    p.add_argument(
        "--project-dir", type=Path, default=Path("."), help="where Pulumi.<stack>.yaml is"
    )
    p.add_argument("--strategy", help="override the strategy (sma_crossover, rsi_mean_reversion)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="strategyParams.K")
    p.add_argument("--risk", action="append", default=[], metavar="K=V", help="riskLimits.K")
    p.add_argument("--symbols", help="comma-separated; default: every stored series")
    p.add_argument("--start", type=date.fromisoformat, help="first day traded (YYYY-MM-DD)")
    p.add_argument("--end", type=date.fromisoformat, help="last day traded (YYYY-MM-DD)")
    p.add_argument("--cash", type=float, help="paperCash")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    return p


def _config_and_source(
    args: argparse.Namespace,
) -> tuple[TradingConfig, ObjectSource, str, list[str] | None]:
    raw: dict[str, Any] = {}
    symbols: list[str] | None = None
    if args.stack:
        try:
            from infra.stackfile import StackFileError, read_stack_file
        except ImportError:
            raise UsageError(
                "--stack needs the project checkout (infra/); use --data DIR"
            ) from None
        try:
            stack = read_stack_file(args.project_dir, args.stack)
        except StackFileError as err:
            raise UsageError(f"--stack {args.stack}: {err}") from None
        raw.update(stack.project_values())
        environment = raw.get("environment") or args.stack
        raw["environment"] = environment
        if raw.get("symbols"):
            symbols = [str(s) for s in json.loads(raw["symbols"])]
        from backend.clients import AwsClients

        source: ObjectSource = S3Source(
            client=AwsClients().get("s3"), bucket=raw.get("bucketName") or DEFAULT_BUCKET
        )
        index_key = f"data/{environment}/{INDEX_NAME}"
    else:
        raw["environment"] = "backtest"
        source = DirectorySource(args.data)
        index_key = INDEX_NAME
    if args.strategy:
        raw["strategy"] = args.strategy
        raw["strategyParams"] = {}
    _merge(raw, "strategyParams", _pairs(args.param, "--param"))
    _merge(raw, "riskLimits", _pairs(args.risk, "--risk"))
    if args.cash is not None:
        raw["paperCash"] = args.cash
    # A backtest never trades live: the switch is irrelevant here, and a prod stack's
    # `liveTrading: true` must not stop its own backtest.
    raw.pop("liveTrading", None)
    if raw.get("tradingMode") == "alpaca-live":
        raw["tradingMode"] = "paper"
    config = parse_trading_config(raw)
    if args.symbols:
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    return config, source, index_key, symbols


def _text(result: BacktestResult) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    lines = [
        f"strategy      {result.config.strategy} {dict(result.config.strategy_params)}",
        f"symbols       {len(result.symbols)} ({', '.join(result.symbols[:8])}"
        + (", ..." if len(result.symbols) > 8 else "")
        + ")",
        f"period        {result.start} .. {result.end} ({result.bars} bars)",
        f"equity        {result.initial_cash:,.2f} -> {result.final_equity:,.2f}",
        f"total return  {pct(result.total_return)}",
        f"CAGR          {pct(result.cagr)}",
        f"max drawdown  {pct(result.max_drawdown)}",
        "sharpe        "
        + ("n/a" if result.sharpe is None else f"{result.sharpe:.2f}")
        + " (daily returns, x sqrt(252), rf 0)",
        f"orders        {result.orders} ({result.fills} fills, fees {result.fees:,.2f})",
        f"trades        {len(result.trades)}",
    ]
    if result.halted:
        lines.append(f"kill switch   {result.halted}")
    for t in result.trades[-10:]:
        lines.append(
            f"  {t.symbol:<8} {t.side:<5} {t.qty:>6} {t.entry_time} @ {t.entry_price:.2f} -> "
            f"{t.exit_time or 'open'} @ {t.exit_price:.2f}  pnl {t.pnl:,.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config, source, index_key, symbols = _config_and_source(args)
        history = load_history(source, index_key, interval=config.bar_interval, symbols=symbols)
        if not history:
            raise UsageError(f"{source.where(index_key)}: no {config.bar_interval} series stored")
        result = run_backtest(history, config, start=args.start, end=args.end)
    except TradingConfigError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (UsageError, HistoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), sort_keys=True, separators=(",", ":")) + "\n")
    else:
        print(_text(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
