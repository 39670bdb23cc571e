"""The ledger: orders, fills, positions, cash, daily equity, the cursor and the kill switch.

One `Ledger` holds the logic; it stores items through a `LedgerStore`, of which there
are two with the same semantics: `MemoryStore` (backtests, tests) and
`backend.trading.dynamo.DynamoStore` (the service, on `cloud-trading-bot-<env>-ledger`).

Every write is conditional. An item that is created must not exist yet
(`attribute_not_exists`); an item that is changed carries a `version` and is written only
if the stored version is still the one read (then version + 1). Several writes that must
happen together (a fill: the fill, its order, the position and the cash) go in one
transaction. A second writer, or a step repeated after a crash, therefore fails with
`LedgerConflict` instead of booking anything twice. The layout of every item, and the
argument that a crash at any point recovers, are in docs/trading.md.

Batching (the engine's steps): between `begin()` and `end()` writes are kept, each call's
writes a group, and `flush()` sends consecutive groups as few transactions as DynamoDB
allows (`pack`: 100 items; two puts of one item merge into one, conditioned on the first's
version and storing the last's). Each transaction is therefore the net effect of whole
groups in order: a crash between two leaves the ledger as the unbatched writes would
have at some point. New orders (`record_intents`) are written at once, with what is
kept, before any is sent: an order is never sent before it is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from backend.trading.book import Holding
from backend.trading.orders import Fill, Order, OrderStatus

Item = dict[str, Any]

ACCOUNT, CASH, CURSOR, KILL = "ACCOUNT", "CASH", "CURSOR", "KILL"
POS, ORDER, OPEN, FILL, EQUITY, ACTION = "POS", "ORDER", "OPEN", "FILL", "EQUITY", "ACTION"


class LedgerConflict(RuntimeError):
    """A conditional write failed: another writer, or a repeated step, got there first.
    Nothing of the failed write was stored; reload and decide again."""


@dataclass(frozen=True, slots=True)
class Put:
    """Store `item`. `expect` None: unconditionally; 0: only if absent; n: only if the
    stored item has version n. A versioned put writes version expect + 1, or `writes`
    when set (puts merged by `pack`)."""

    item: Item
    expect: int | None
    writes: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    pk: str
    sk: str
    expect_exists: bool = True


class LedgerStore(Protocol):
    def get(self, pk: str, sk: str) -> Item | None: ...

    def query(self, pk: str, *, newest: int | None = None) -> list[Item]:
        """Every item of a partition (or its `newest` by sort key), in sort-key order."""

    def write(self, ops: Sequence[Put | Delete]) -> None:
        """All of `ops` or none; LedgerConflict if a condition fails."""


def _written(put: Put) -> int | None:
    if put.writes is not None:
        return put.writes
    return None if put.expect is None else put.expect + 1


def versioned(put: Put) -> Item:
    """The item a Put stores: with its new version when it is conditional."""
    version = _written(put)
    return put.item if version is None else {**put.item, "version": version}


MAX_TRANSACTION = 100  # items in one TransactWriteItems (DynamoDB's limit)


def _key(op: Put | Delete) -> tuple[str, str]:
    return (op.item["pk"], op.item["sk"]) if isinstance(op, Put) else (op.pk, op.sk)


def pack(
    groups: Sequence[Sequence[Put | Delete]], limit: int = MAX_TRANSACTION
) -> list[tuple[list[Put | Delete], int]]:
    """Consecutive groups as few transactions as possible, each (its writes, how many
    groups it holds). Within one, puts of the same item merge: the first's condition,
    the last's item and version. Any other second write of an item (a delete), or more
    than `limit` items, starts the next transaction."""
    out: list[tuple[list[Put | Delete], int]] = []
    ops: dict[tuple[str, str], Put | Delete] = {}
    count = 0
    for group in groups:
        merged = _merge(ops, group)
        if merged is None or len(merged) > limit:
            if not ops:
                raise ValueError(f"a write of {len(group)} items exceeds one transaction")
            out.append((list(ops.values()), count))
            ops, count = {}, 0
            merged = _merge(ops, group)
            if merged is None or len(merged) > limit:
                raise ValueError(f"a write of {len(group)} items exceeds one transaction")
        ops, count = merged, count + 1
    if ops:
        out.append((list(ops.values()), count))
    return out


def _merge(
    ops: dict[tuple[str, str], Put | Delete], group: Sequence[Put | Delete]
) -> dict[tuple[str, str], Put | Delete] | None:
    merged = dict(ops)
    for op in group:
        key = _key(op)
        previous = merged.get(key)
        if previous is None:
            merged[key] = op
        elif isinstance(previous, Put) and isinstance(op, Put):
            merged[key] = Put(op.item, previous.expect, _written(op))
        else:
            return None
    return merged


def _copy(item: Item) -> Item:
    """A copy deep enough for ledger items: scalars, and maps of scalars (the cursor)."""
    return {k: dict(v) if isinstance(v, dict) else v for k, v in item.items()}


class MemoryStore:
    """A dict with DynamoDB's conditional-write semantics (all-or-nothing, the same
    conditions), for backtests and tests. Items are copied in and out, as a real table's
    would be, so a caller can never change a stored item by accident."""

    def __init__(self) -> None:
        self._partitions: dict[str, dict[str, Item]] = {}
        self.writes = 0  # write calls that succeeded, for tests

    def get(self, pk: str, sk: str) -> Item | None:
        item = self._partitions.get(pk, {}).get(sk)
        return None if item is None else _copy(item)

    def query(self, pk: str, *, newest: int | None = None) -> list[Item]:
        partition = self._partitions.get(pk, {})
        keys = sorted(partition)
        if newest is not None:
            keys = keys[-newest:] if newest else []
        return [_copy(partition[sk]) for sk in keys]

    def write(self, ops: Sequence[Put | Delete]) -> None:
        for op in ops:
            if isinstance(op, Put):
                pk, sk = op.item["pk"], op.item["sk"]
                current = self._partitions.get(pk, {}).get(sk)
                if op.expect == 0 and current is not None:
                    raise LedgerConflict(f"{pk}/{sk} already exists")
                if op.expect and (current is None or current.get("version") != op.expect):
                    raise LedgerConflict(f"{pk}/{sk} is not at version {op.expect}")
            elif op.expect_exists and op.sk not in self._partitions.get(op.pk, {}):
                raise LedgerConflict(f"{op.pk}/{op.sk} does not exist")
        for op in ops:
            if isinstance(op, Put):
                stored = _copy(versioned(op))
                self._partitions.setdefault(stored["pk"], {})[stored["sk"]] = stored
            else:
                self._partitions.get(op.pk, {}).pop(op.sk, None)
        self.writes += 1


@dataclass(frozen=True, slots=True)
class CashRecord:
    cash: float
    fees: float = 0.0
    dividends: float = 0.0
    version: int = 0


@dataclass(frozen=True, slots=True)
class PositionRecord:
    symbol: str
    holding: Holding
    version: int = 0


@dataclass(frozen=True, slots=True)
class KillSwitch:
    halted: bool = False
    reason: str = ""
    since: str = ""
    # After an operator resumes, the daily-loss check skips bars up to this day (the
    # loss that halted it is already known and accepted).
    resumed_through: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class Cursor:
    """The newest bar time (ISO UTC) processed per symbol."""

    bars: Mapping[str, str] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True, slots=True)
class EquityPoint:
    day: str  # YYYY-MM-DD of the bars it marks
    equity: float
    cash: float
    gross: float
    positions: int
    version: int = 0


def _order_item(order: Order) -> Item:
    return {
        "pk": ORDER,
        "sk": order.client_order_id,
        "strategy": order.strategy,
        "symbol": order.symbol,
        "bar_time": order.bar_time,
        "side": order.side,
        "qty": order.qty,
        "status": order.status.value,
        "filled_qty": order.filled_qty,
        "filled_avg_price": order.filled_avg_price,
        "fee": order.fee,
        "broker_order_id": order.broker_order_id,
        "reason": order.reason,
    }


def _order(item: Item) -> Order:
    return Order(
        client_order_id=str(item["sk"]),
        strategy=str(item["strategy"]),
        symbol=str(item["symbol"]),
        bar_time=str(item["bar_time"]),
        side=str(item["side"]),
        qty=int(item["qty"]),
        status=OrderStatus(item["status"]),
        filled_qty=int(item["filled_qty"]),
        filled_avg_price=float(item["filled_avg_price"]),
        fee=float(item.get("fee", 0.0)),
        broker_order_id=str(item.get("broker_order_id", "")),
        reason=str(item.get("reason", "")),
        version=int(item["version"]),
    )


def _order_put(order: Order) -> Put:
    return Put(_order_item(order), expect=order.version)


def _open_marker(order: Order) -> Put:
    return Put({"pk": OPEN, "sk": order.client_order_id, "symbol": order.symbol}, expect=0)


def _position_put(record: PositionRecord) -> Put:
    h = record.holding
    item = {
        "pk": POS,
        "sk": record.symbol,
        "qty": h.qty,
        "avg_price": h.avg_price,
        "realised_pnl": h.realised_pnl,
    }
    return Put(item, expect=record.version)


def _cash_put(record: CashRecord) -> Put:
    item = {
        "pk": ACCOUNT,
        "sk": CASH,
        "cash": record.cash,
        "fees": record.fees,
        "dividends": record.dividends,
    }
    return Put(item, expect=record.version)


class Ledger:
    """Typed reads and conditional writes over a LedgerStore. Each write method takes
    records as read (their `version`) and returns them as stored (version + 1)."""

    def __init__(self, store: LedgerStore):
        self.store = store
        self._kept: list[list[Put | Delete]] | None = None
        self.failed = False  # a flush raised: kept writes were lost (read the ledger again)

    # -- batching ----------------------------------------------------------------------

    def begin(self) -> None:
        """Keep writes until `flush` (module docstring, "Batching")."""
        self._kept = []
        self.failed = False

    def end(self) -> None:
        """Write at once again. Anything still kept is dropped: flush first."""
        self._kept = None

    @property
    def kept(self) -> int:
        return len(self._kept or ())

    def flush(self) -> None:
        """Write what is kept, packed into transactions. If one fails, what was not yet
        written is dropped, `failed` is set and the error propagates."""
        groups, self._kept = self._kept or [], ([] if self._kept is not None else None)
        try:
            self._write_packed(groups)
        except BaseException:
            self.failed = True
            raise

    def _write_packed(self, groups: list[list[Put | Delete]]) -> None:
        """Write `groups` in order; each transaction that lands leaves `groups`, so after
        an error the list holds exactly what was not written."""
        for ops, count in pack(groups):
            self.store.write(ops)
            del groups[:count]

    def _write(self, ops: list[Put | Delete]) -> None:
        if self._kept is None:
            self.store.write(ops)
        else:
            self._kept.append(ops)

    def _kept_item(self, pk: str, sk: str) -> bool:
        return any(_key(op) == (pk, sk) for group in self._kept or () for op in group)

    # -- reads -------------------------------------------------------------------------

    def cash(self) -> CashRecord | None:
        item = self.store.get(ACCOUNT, CASH)
        if item is None:
            return None
        return CashRecord(
            cash=float(item["cash"]),
            fees=float(item["fees"]),
            dividends=float(item["dividends"]),
            version=int(item["version"]),
        )

    def positions(self) -> dict[str, PositionRecord]:
        out = {}
        for item in self.store.query(POS):
            holding = Holding(
                int(item["qty"]), float(item["avg_price"]), float(item["realised_pnl"])
            )
            out[str(item["sk"])] = PositionRecord(str(item["sk"]), holding, int(item["version"]))
        return out

    def order(self, client_order_id: str) -> Order | None:
        item = self.store.get(ORDER, client_order_id)
        return None if item is None else _order(item)

    def orders(self) -> list[Order]:
        return [_order(item) for item in self.store.query(ORDER)]

    def open_orders(self) -> list[Order]:
        out = []
        for marker in self.store.query(OPEN):
            order = self.order(str(marker["sk"]))
            if order is not None:
                out.append(order)
        return out

    def fills(self) -> list[Fill]:
        return [
            Fill(
                client_order_id=str(item["client_order_id"]),
                seq=int(item["seq"]),
                symbol=str(item["symbol"]),
                side=str(item["side"]),
                qty=int(item["qty"]),
                price=float(item["price"]),
                fee=float(item["fee"]),
                time=str(item["time"]),
            )
            for item in self.store.query(FILL)
        ]

    def cursor(self) -> Cursor:
        item = self.store.get(ACCOUNT, CURSOR)
        if item is None:
            return Cursor()
        return Cursor(
            bars={str(k): str(v) for k, v in dict(item["bars"]).items()},
            version=int(item["version"]),
        )

    def kill_switch(self) -> KillSwitch:
        item = self.store.get(ACCOUNT, KILL)
        if item is None:
            return KillSwitch()
        return KillSwitch(
            halted=bool(item["halted"]),
            reason=str(item["reason"]),
            since=str(item["since"]),
            resumed_through=str(item.get("resumed_through", "")),
            version=int(item["version"]),
        )

    def equity_curve(self, *, newest: int | None = None) -> list[EquityPoint]:
        """Daily equity, oldest first (only the `newest` days when given: the engine
        needs two, and the curve grows by a day every session)."""
        return [
            EquityPoint(
                day=str(item["sk"]),
                equity=float(item["equity"]),
                cash=float(item["cash"]),
                gross=float(item["gross"]),
                positions=int(item["positions"]),
                version=int(item["version"]),
            )
            for item in self.store.query(EQUITY, newest=newest)
        ]

    def action_applied(self, symbol: str, bar_time: str) -> bool:
        key = f"{symbol}#{bar_time}"
        return self._kept_item(ACTION, key) or self.store.get(ACTION, key) is not None

    # -- writes ------------------------------------------------------------------------

    def open_account(self, cash: float) -> CashRecord:
        """Create the cash item with the starting cash; if it exists, return it as is
        (a restart never resets the account)."""
        existing = self.cash()
        if existing is not None:
            return existing
        record = CashRecord(cash=cash)
        self._write([_cash_put(record)])
        return replace(record, version=1)

    def record_intents(self, orders: Sequence[Order]) -> list[tuple[Order, bool]]:
        """`record_intent` for several new orders, written at once with whatever is kept
        (in as few transactions as fit). If one of them exists already, what is kept is
        written, then each order not yet written is recorded on its own."""
        for order in orders:
            if order.status is not OrderStatus.INTENT or order.version:
                raise ValueError("record_intents takes new orders in state intent")
        intents = [[_order_put(o), _open_marker(o)] for o in orders]
        groups = [*(self._kept or ()), *intents]
        if self._kept is not None:
            self._kept = []
        try:
            self._write_packed(groups)
        except LedgerConflict:
            left = min(len(groups), len(intents))  # intents not written
            try:
                self._write_packed(groups[: len(groups) - left])  # a conflict here: a writer
            except BaseException:
                self.failed = True
                raise
            done = len(orders) - left
            return [(replace(o, version=1), True) for o in orders[:done]] + [
                self.record_intent(o) for o in orders[done:]
            ]
        except BaseException:
            self.failed = True
            raise
        return [(replace(o, version=1), True) for o in orders]

    def record_intent(self, order: Order) -> tuple[Order, bool]:
        """Record an order before it is sent, with its open marker, in one transaction,
        at once (never kept). Returns (the stored order, True), or (the order already
        stored under that client order id, False): the decision was made before, by an
        earlier attempt."""
        if order.status is not OrderStatus.INTENT or order.version:
            raise ValueError("record_intent takes a new order in state intent")
        try:
            self.store.write([_order_put(order), _open_marker(order)])
        except LedgerConflict:
            existing = self.order(order.client_order_id)
            if existing is None:
                raise
            return existing, False
        return replace(order, version=1), True

    def update_order(self, order: Order) -> Order:
        """Store `order` (its status moved with Order.moved) over the version it was read
        at; a terminal order loses its open marker in the same transaction."""
        ops: list[Put | Delete] = [_order_put(order)]
        if order.status.terminal:
            ops.append(Delete(OPEN, order.client_order_id))
        self._write(ops)
        return replace(order, version=order.version + 1)

    def record_fill(
        self,
        fill: Fill,
        order: Order,
        position: PositionRecord,
        cash: CashRecord,
    ) -> tuple[Order, PositionRecord, CashRecord]:
        """One transaction: the fill (new), its order, the position and the cash (each at
        the version read). Applying the same fill twice fails: the fill item exists and
        the order's version has moved on."""
        item = {
            "pk": FILL,
            "sk": f"{fill.client_order_id}#{fill.seq:010d}",
            "client_order_id": fill.client_order_id,
            "seq": fill.seq,
            "symbol": fill.symbol,
            "side": fill.side,
            "qty": fill.qty,
            "price": fill.price,
            "fee": fill.fee,
            "time": fill.time,
        }
        ops: list[Put | Delete] = [
            Put(item, expect=0),
            _order_put(order),
            _position_put(position),
            _cash_put(cash),
        ]
        if order.status.terminal:
            ops.append(Delete(OPEN, order.client_order_id))
        self._write(ops)
        return (
            replace(order, version=order.version + 1),
            replace(position, version=position.version + 1),
            replace(cash, version=cash.version + 1),
        )

    def record_action(
        self,
        *,
        symbol: str,
        bar_time: str,
        split: float,
        dividend: float,
        position: PositionRecord,
        cash: CashRecord,
    ) -> tuple[PositionRecord, CashRecord]:
        """A split or dividend applied to a position and the cash, once: the ACTION item
        must not exist yet."""
        marker = {
            "pk": ACTION,
            "sk": f"{symbol}#{bar_time}",
            "split": split,
            "dividend": dividend,
            "qty_after": position.holding.qty,
        }
        self._write([Put(marker, expect=0), _position_put(position), _cash_put(cash)])
        return replace(position, version=position.version + 1), replace(
            cash, version=cash.version + 1
        )

    def advance_cursor(self, cursor: Cursor, bars: Mapping[str, str]) -> Cursor:
        merged = {**cursor.bars, **bars}
        self._write([Put({"pk": ACCOUNT, "sk": CURSOR, "bars": merged}, cursor.version)])
        return Cursor(merged, cursor.version + 1)

    def set_kill_switch(
        self,
        current: KillSwitch,
        *,
        halted: bool,
        reason: str,
        since: str,
        resumed_through: str = "",
    ) -> KillSwitch:
        """Halt or resume, over the version read: the engine and an operator's `resume`
        can never overwrite each other's change unseen."""
        item = {
            "pk": ACCOUNT,
            "sk": KILL,
            "halted": halted,
            "reason": reason,
            "since": since,
            "resumed_through": resumed_through,
        }
        self._write([Put(item, current.version)])
        return KillSwitch(halted, reason, since, resumed_through, current.version + 1)

    def record_equity(self, point: EquityPoint) -> EquityPoint:
        """The day's equity (a re-run of the same day overwrites it, at the version read)."""
        self._write([_equity_put(point)])
        return replace(point, version=point.version + 1)

    def close_step(
        self, point: EquityPoint, cursor: Cursor, bars: Mapping[str, str]
    ) -> tuple[EquityPoint, Cursor]:
        """The day's equity and the cursor past the step's bars, in one transaction: the
        cursor still moves last (nothing of the step is written after it), and a step
        ends with one request instead of two."""
        merged = {**cursor.bars, **bars}
        cursor_put = Put({"pk": ACCOUNT, "sk": CURSOR, "bars": merged}, cursor.version)
        self._write([_equity_put(point), cursor_put])
        return replace(point, version=point.version + 1), Cursor(merged, cursor.version + 1)


def _equity_put(point: EquityPoint) -> Put:
    item = {
        "pk": EQUITY,
        "sk": point.day,
        "equity": point.equity,
        "cash": point.cash,
        "gross": point.gross,
        "positions": point.positions,
    }
    return Put(item, point.version)


def memory_ledger() -> Ledger:
    return Ledger(MemoryStore())
