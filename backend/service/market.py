"""Bars from the market-data table (docs/CONTRACTS.md sections 5 and 8), read-only.

`pk = BAR#<SYM>#<interval>`, `sk = TS#<ISO UTC>`, one item per bar with raw OHLCV and
`split`, `dividend`, `final`. The service keeps each symbol's bars in memory and asks
only for those after the newest it has (`sk > TS#<last>`), so a steady-state step reads
one small page per symbol; the symbols are read in parallel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from backend.models import Bar, BarError

READ_WORKERS = 16
KEEP_BARS = 1_000  # per symbol in memory: far more than any strategy's warm-up


def _value(attr: dict[str, Any]) -> Any:
    if "N" in attr:
        number = Decimal(attr["N"])
        return int(number) if number == number.to_integral_value() else float(number)
    if "BOOL" in attr:
        return bool(attr["BOOL"])
    if "S" in attr:
        return attr["S"]
    return None


def bar_from_item(item: dict[str, Any]) -> Bar:
    def get(name: str, default: Any = None) -> Any:
        attr = item.get(name)
        return default if attr is None else _value(attr)

    return Bar.create(
        symbol=get("symbol"),
        interval=get("interval"),
        timestamp=datetime.fromisoformat(get("ts")),
        open=get("open"),
        high=get("high"),
        low=get("low"),
        close=get("close"),
        volume=get("volume", 0),
        split=get("split", 1.0),
        dividend=get("dividend", 0.0),
        final=get("final", True),
    )


class MarketData:
    def __init__(self, *, client: Any, table: str, interval: str = "1d"):
        self._client = client
        self._table = table
        self._interval = interval
        self.bars: dict[str, list[Bar]] = {}
        self.skipped = 0  # items that were not valid bars (logged by the caller)

    def _query(self, symbol: str, after: str | None) -> list[Bar]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ExpressionAttributeValues": {":pk": {"S": f"BAR#{symbol}#{self._interval}"}},
        }
        if after is None:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :ts)"
            kwargs["ExpressionAttributeValues"][":ts"] = {"S": "TS#"}
        else:
            kwargs["KeyConditionExpression"] = "pk = :pk AND sk > :after"
            kwargs["ExpressionAttributeValues"][":after"] = {"S": f"TS#{after}"}
        out: list[Bar] = []
        while True:
            response = self._client.query(**kwargs)
            for item in response.get("Items", []):
                try:
                    out.append(bar_from_item(item))
                except (BarError, KeyError, TypeError, ValueError):
                    self.skipped += 1
            last = response.get("LastEvaluatedKey")
            if not last:
                return out
            kwargs["ExclusiveStartKey"] = last

    def refresh(self, symbols: Iterable[str]) -> None:
        """Read what is new for each symbol. An unfinished bar is kept aside until the
        fetcher rewrites it as final; it never enters the history."""
        symbols = list(symbols)

        def one(symbol: str) -> tuple[str, list[Bar]]:
            have = self.bars.get(symbol)
            after = have[-1].iso_time if have else None
            return symbol, self._query(symbol, after)

        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, max(1, len(symbols)))) as pool:
            results = list(pool.map(one, symbols))
        for symbol, new in results:
            # Stop at the first unfinished bar: what comes after it is not history yet.
            final: list[Bar] = []
            for bar in new:
                if not bar.final:
                    break
                final.append(bar)
            merged = self.bars.get(symbol, []) + final
            self.bars[symbol] = merged[-KEEP_BARS:]

    def history(self, symbol: str) -> Sequence[Bar]:
        return self.bars.get(symbol, [])
