"""Strategies: adjusted, final bar history (and the current position) in, target out.

A strategy only says which way it wants to be: long (+1), flat (0), short (-1), or no
view (None: keep what you hold). How many shares that means, and whether it is allowed,
is decided outside it (backend.trading.engine sizes, backend.trading.risk vetoes), the
way freqtrade keeps its protections out of IStrategy.

Each strategy is an incremental `Signal`: `update(close)` costs O(1) per bar. The
backtester feeds one Signal bar by bar; `Strategy.target(history, position)` feeds a
fresh one the whole history, which is what the service does at every step. Both are
the same code, so a backtest and the service agree on every bar they both see.

Signals compare indicators with each other (fast SMA with slow SMA, RSI with fixed
thresholds), never with an absolute price. They are therefore unchanged when the whole
history is rescaled by a later split or dividend (backend.adjust), which is why the
backtester may adjust the full history once (docs/trading.md, "Adjusted history").
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from backend.models import Bar

LONG, FLAT, SHORT = 1, 0, -1


@dataclass(frozen=True, slots=True)
class Position:
    """What is held in one symbol: signed shares (negative: short) at an average price."""

    symbol: str
    qty: int = 0
    avg_price: float = 0.0

    @property
    def direction(self) -> int:
        return (self.qty > 0) - (self.qty < 0)


@dataclass(frozen=True, slots=True)
class Target:
    """The strategy's answer for one bar. `direction` is +1, 0 or -1; `reason` says why
    (it goes into the decision's log line), `values` the indicators it used."""

    direction: int
    reason: str
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a strategy: its type, default and allowed range (inclusive)."""

    name: str
    kind: type[int] | type[float]
    default: float
    minimum: float
    maximum: float
    help: str


class Signal(Protocol):
    def update(self, close: float) -> int | None:
        """Take the next adjusted close; return the view after it (+1, 0, -1), or None
        for no view: not enough history yet, or between the thresholds."""

    def values(self) -> dict[str, float]:
        """The indicators behind the last view, for the decision log."""


class Strategy(ABC):
    """A named strategy with validated parameters. Subclasses declare PARAMS, check the
    rules between parameters in `rules()`, and build their Signal in `signal()`."""

    name: ClassVar[str]
    PARAMS: ClassVar[tuple[Param, ...]]
    # Two parameters where the first must stay below the second (a fast and a slow
    # window, a low and a high threshold); None when there is no such pair.
    ORDERED: ClassVar[tuple[str, str] | None] = None

    def __init__(self, params: Mapping[str, float] | None = None):
        given = dict(params or {})
        self.params: dict[str, float] = {p.name: given.get(p.name, p.default) for p in self.PARAMS}

    @classmethod
    def rules(cls, params: Mapping[str, float]) -> list[str]:
        """Problems between parameters (each line names its keys); [] when none."""
        if cls.ORDERED is None:
            return []
        low_key, high_key = cls.ORDERED
        low, high = params[low_key], params[high_key]
        if low >= high:
            return [
                f"strategyParams.{low_key}: must be < strategyParams.{high_key} "
                f"(got {low:g} >= {high:g})"
            ]
        return []

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Bars of history needed before the first view."""

    @property
    def lookback(self) -> int:
        """Bars of history after which the view no longer depends on older bars (to
        within 1e-6 for a recursive indicator): what the service reads at start."""
        return self.warmup

    @abstractmethod
    def signal(self) -> Signal:
        """A fresh incremental signal."""

    def views(self, closes: Sequence[float]) -> list[int | None]:
        """A fresh signal's view after each close: the backtester's whole series at once.
        The same as feeding `signal()` one close at a time (a subclass may do it faster,
        with the same arithmetic in the same order; a test holds it to that)."""
        update = self.signal().update
        return [update(close) for close in closes]

    def target(self, history: Sequence[Bar], position: Position) -> Target:
        """The target for the newest bar of `history` (adjusted, final, oldest first).
        With no view the target is the current position's direction: hold."""
        signal = self.signal()
        view: int | None = None
        for bar in history:
            view = signal.update(bar.close)
        return self.conclude(view, signal.values(), len(history), position)

    def conclude(
        self, view: int | None, values: Mapping[str, float], bars: int, position: Position
    ) -> Target:
        """The target from a signal's last view after `bars` bars: what `target` answers,
        for a caller that keeps its own Signal and feeds it bar by bar (the service)."""
        if bars < self.warmup:
            return Target(position.direction, f"warming up: {bars} of {self.warmup} bars", values)
        if view is None:
            return Target(position.direction, "no signal: hold", values)
        return Target(view, self.explain(view, values), values)

    def explain(self, view: int, values: Mapping[str, float]) -> str:
        return {LONG: "long", FLAT: "flat", SHORT: "short"}[view]


class _SmaCross:
    """Fast and slow simple moving averages over one ring buffer of the last `slow`
    closes, as two running sums: O(1) per bar, no list slicing."""

    __slots__ = ("_buf", "_fast", "_i", "_n", "_slow", "_sum_fast", "_sum_slow")

    def __init__(self, fast: int, slow: int):
        self._fast = fast
        self._slow = slow
        self._buf = [0.0] * slow
        self._i = 0
        self._n = 0
        self._sum_fast = 0.0
        self._sum_slow = 0.0

    def update(self, close: float) -> int | None:
        buf, i, fast, slow = self._buf, self._i, self._fast, self._slow
        n = self._n + 1
        self._n = n
        self._sum_fast += close
        self._sum_slow += close
        if n > fast:
            # fast < slow, so this slot is not the one about to be overwritten.
            self._sum_fast -= buf[(i - fast) % slow]
        if n > slow:
            self._sum_slow -= buf[i]
        buf[i] = close
        self._i = i + 1 if i + 1 < slow else 0
        if n < slow:
            return None
        f = self._sum_fast / fast
        s = self._sum_slow / slow
        return 1 if f > s else -1 if f < s else None

    def values(self) -> dict[str, float]:
        if self._n < self._slow:
            return {}
        return {"sma_fast": self._sum_fast / self._fast, "sma_slow": self._sum_slow / self._slow}


class SmaCrossover(Strategy):
    """Long while the fast SMA is above the slow one, short (flat unless shorting is
    allowed) while it is below; equal: hold. State-based rather than event-based, so a
    step that missed the crossing bar (a restart) still ends up on the right side."""

    name = "sma_crossover"
    PARAMS = (
        Param("fast", int, 20, 1, 499, "fast SMA window, in bars"),
        Param("slow", int, 50, 2, 500, "slow SMA window, in bars"),
    )
    ORDERED = ("fast", "slow")

    @property
    def warmup(self) -> int:
        return int(self.params["slow"])

    def signal(self) -> _SmaCross:
        return _SmaCross(int(self.params["fast"]), int(self.params["slow"]))

    def views(self, closes: Sequence[float]) -> list[int | None]:
        # _SmaCross.update's sums, in the same order, over the list itself instead of a
        # ring buffer, with no attribute access per bar: three times faster over a
        # backtest's 252,000 bars, and the same floats, so the same views.
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        out: list[int | None] = []
        append = out.append
        sum_fast = sum_slow = 0.0
        for n, close in enumerate(closes, 1):
            sum_fast += close
            sum_slow += close
            if n > fast:
                sum_fast -= closes[n - 1 - fast]
            if n > slow:
                sum_slow -= closes[n - 1 - slow]
            if n < slow:
                append(None)
                continue
            f = sum_fast / fast
            s = sum_slow / slow
            append(1 if f > s else -1 if f < s else None)
        return out

    def explain(self, view: int, values: Mapping[str, float]) -> str:
        relation = ">" if view > 0 else "<"
        return f"sma({self.params['fast']:g}) {relation} sma({self.params['slow']:g})"


class _WilderRsi:
    """Wilder's RSI, incrementally, exactly as backend.analytics.rsi computes it: plain
    averages of the first `period` changes, then Wilder's smoothing."""

    __slots__ = (
        "_avg_gain",
        "_avg_loss",
        "_n",
        "_overbought",
        "_oversold",
        "_period",
        "_prev",
        "_rsi",
    )

    def __init__(self, period: int, oversold: float, overbought: float):
        self._period = period
        self._oversold = oversold
        self._overbought = overbought
        self._prev: float | None = None
        self._n = 0
        self._avg_gain = 0.0
        self._avg_loss = 0.0
        self._rsi: float | None = None

    def update(self, close: float) -> int | None:
        prev = self._prev
        self._prev = close
        if prev is None:
            return None
        change = close - prev
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        period = self._period
        n = self._n + 1
        self._n = n
        if n <= period:
            # Sums for now; they become the first averages at the period-th change.
            self._avg_gain += gain
            self._avg_loss += loss
            if n < period:
                return None
            self._avg_gain /= period
            self._avg_loss /= period
        else:
            self._avg_gain = (self._avg_gain * (period - 1) + gain) / period
            self._avg_loss = (self._avg_loss * (period - 1) + loss) / period
        if self._avg_loss == 0:
            rsi = 50.0 if self._avg_gain == 0 else 100.0
        else:
            rsi = 100.0 - 100.0 / (1.0 + self._avg_gain / self._avg_loss)
        self._rsi = rsi
        if rsi < self._oversold:
            return 1
        if rsi > self._overbought:
            return -1
        return None

    def values(self) -> dict[str, float]:
        return {} if self._rsi is None else {"rsi": self._rsi}


class RsiMeanReversion(Strategy):
    """Long when RSI falls below `oversold`, short (flat unless shorting is allowed) when
    it rises above `overbought`; in between, hold whatever is held."""

    name = "rsi_mean_reversion"
    PARAMS = (
        Param("period", int, 14, 2, 200, "RSI period, in bars"),
        Param("oversold", float, 30.0, 0.0, 100.0, "buy below this RSI"),
        Param("overbought", float, 70.0, 0.0, 100.0, "sell above this RSI"),
    )
    ORDERED = ("oversold", "overbought")

    @property
    def warmup(self) -> int:
        return int(self.params["period"]) + 1

    @property
    def lookback(self) -> int:
        # Wilder's averages forget their start by (1 - 1/period) a bar: 1e-6 of it is
        # left after ln(1e-6) / ln(1 - 1/period) bars (186 for RSI(14)).
        period = int(self.params["period"])
        return self.warmup + math.ceil(math.log(1e-6) / math.log(1.0 - 1.0 / period))

    def signal(self) -> _WilderRsi:
        return _WilderRsi(
            int(self.params["period"]), self.params["oversold"], self.params["overbought"]
        )

    def explain(self, view: int, values: Mapping[str, float]) -> str:
        if view > 0:
            return f"rsi < {self.params['oversold']:g}"
        return f"rsi > {self.params['overbought']:g}"


STRATEGIES: dict[str, type[Strategy]] = {
    SmaCrossover.name: SmaCrossover,
    RsiMeanReversion.name: RsiMeanReversion,
}
