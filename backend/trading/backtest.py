"""The backtester: the service's own strategy, risk, paper-broker and ledger code over
stored history. `python -m backend.trading.backtest (--data DIR | --bucket NAME --prefix
data/<env>/) [--json]`; a stack's own data and config: `python -m ops backtest --stack NAME`.

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

from backend.adjust import factors
from backend.models import INTERVAL_SECONDS, Bar
from backend.settings import PREFIX_RE
from backend.trading import metrics
from backend.trading.engine import BarEvent, Engine
from backend.trading.history import (
    DirectorySource,
    HistoryError,
    ObjectSource,
    S3Source,
    load_history,
)
from backend.trading.ledger import memory_ledger
from backend.trading.orders import Fill
from backend.trading.paper import PaperBroker
from backend.trading.settings import TradingConfig, TradingConfigError, parse_trading_config


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
    # Every fill, as the service's ledger books them (not in --json: the trades say it).
    executions: tuple[Fill, ...] = ()

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
    step = timedelta(seconds=INTERVAL_SECONDS[config.bar_interval])
    # Each symbol's views in one tight pass (a Signal is O(1) a bar), then the engine
    # day by day. Adjusting the whole history once equals adjusting at each bar: the
    # signals are scale-invariant (backend.trading.strategies). Only the close is
    # adjusted: the engine trades and marks on raw bars.
    by_day: dict[date, list[BarEvent]] = {}
    for symbol in symbols:
        final = [
            b for b in history[symbol] if b.final and (end is None or b.timestamp.date() <= end)
        ]
        closes = [raw.close * factor for raw, factor in zip(final, factors(final), strict=True)]
        for raw, direction in zip(final, strategy.views(closes), strict=True):
            day = raw.timestamp.date()
            if start is None or day >= start:  # before it: warm-up only
                by_day.setdefault(day, []).append(BarEvent(raw, direction))
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
    curve: list[tuple[str, float]] = []
    bars = 0
    for day in sorted(by_day):
        events = by_day[day]
        bars += len(events)
        # A daily bar's time is its session's date (docs/CONTRACTS.md section 8), the
        # same for every symbol: the step runs one interval after it.
        result = engine.step(events, now=events[-1].bar.timestamp + step)
        curve.append((day.isoformat(), result.equity))
    values = [v for _, v in curve]
    final_equity = values[-1] if values else config.paper_cash
    first_day = date.fromisoformat(curve[0][0]) if curve else None
    last_day = date.fromisoformat(curve[-1][0]) if curve else None
    cash = engine.ledger.cash()
    fills = engine.ledger.fills()
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
        trades=tuple(metrics.trades_from_fills(fills, engine.marks)),
        equity=tuple(curve),
        executions=tuple(fills),
    )


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


# -- the command line (this module's and `python -m ops backtest`'s) --------------------


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


def add_options(
    p: argparse.ArgumentParser,
    *,
    symbols_help: str = "comma-separated; default: every stored series",
) -> None:
    """The options both command lines share: what to trade and how to report it."""
    p.add_argument("--strategy", help="override the strategy (sma_crossover, rsi_mean_reversion)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="strategyParams.K")
    p.add_argument("--risk", action="append", default=[], metavar="K=V", help="riskLimits.K")
    p.add_argument("--symbols", help=symbols_help)
    p.add_argument("--start", type=date.fromisoformat, help="first day traded (YYYY-MM-DD)")
    p.add_argument("--end", type=date.fromisoformat, help="last day traded (YYYY-MM-DD)")
    p.add_argument("--cash", type=float, help="paperCash")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")


def config_from(raw: Mapping[str, Any], args: argparse.Namespace) -> TradingConfig:
    """The trading config to backtest: `raw` (a stack's trading keys, or none) with the
    command line's overrides. Raises TradingConfigError (one line per key) or UsageError."""
    merged = dict(raw)
    merged.setdefault("environment", "backtest")
    if args.strategy:
        merged["strategy"] = args.strategy
        merged["strategyParams"] = {}
    _merge(merged, "strategyParams", _pairs(args.param, "--param"))
    _merge(merged, "riskLimits", _pairs(args.risk, "--risk"))
    if args.cash is not None:
        merged["paperCash"] = args.cash
    # A backtest never trades live: the switch is irrelevant here, and a prod stack's
    # `liveTrading: true` must not stop its own backtest.
    merged.pop("liveTrading", None)
    if merged.get("tradingMode") == "alpaca-live":
        merged["tradingMode"] = "paper"
    return parse_trading_config(merged)


def symbols_from(
    args: argparse.Namespace, default: Sequence[str] | None = None
) -> list[str] | None:
    if args.symbols:
        return [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    return list(default) if default else None


def backtest_stored(
    source: ObjectSource,
    index_key: str,
    config: TradingConfig,
    *,
    symbols: Sequence[str] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> BacktestResult:
    """Read the stored series (the index, then the objects it lists) and trade them.
    Raises HistoryError (one line naming the file) for anything unreadable."""
    history = load_history(source, index_key, interval=config.bar_interval, symbols=symbols)
    if not history:
        raise HistoryError(f"{source.where(index_key)}: no {config.bar_interval} series stored")
    return run_backtest(history, config, start=start, end=end)


def render(result: BacktestResult, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(result.to_json(), sort_keys=True, separators=(",", ":"))
    return _text(result)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m backend.trading.backtest",
        description="Backtest a strategy on stored bars (docs/trading.md). A stack's own "
        "data and trading config: python -m ops backtest --stack NAME.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--data", type=Path, help="a local copy of data/<env>/ (index.json, market/)"
    )
    where.add_argument(
        "--bucket", help="read from this S3 bucket (with --prefix; honours AWS_ENDPOINT_URL)"
    )
    p.add_argument("--prefix", help="with --bucket: the data prefix, e.g. data/dev/")
    add_options(p)
    return p


def _source(args: argparse.Namespace) -> tuple[ObjectSource, str]:
    if args.data is not None:
        if args.prefix:
            raise UsageError("--prefix goes with --bucket; --data DIR is the prefix's copy")
        return DirectorySource(args.data), "index.json"
    prefix = args.prefix or ""
    if not PREFIX_RE.match(prefix) or ".." in prefix:
        raise UsageError(
            f"--prefix {prefix!r}: --bucket needs the data prefix, a key prefix ending in "
            "'/', e.g. --prefix data/dev/"
        )
    from backend.clients import AwsClients

    return S3Source(client=AwsClients().get("s3"), bucket=args.bucket), f"{prefix}index.json"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        source, index_key = _source(args)
        config = config_from({}, args)
        result = backtest_stored(
            source, index_key, config, symbols=symbols_from(args), start=args.start, end=args.end
        )
    except TradingConfigError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (UsageError, HistoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        # No credentials or region, an unreachable endpoint: botocore's own words, one
        # line (this module does not import botocore to name its exception classes).
        if not type(err).__module__.startswith("botocore"):
            raise
        print(f"error: S3: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(result, as_json=args.json) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
