"""The pieces of the account state machine: a scripted strategy and an invariant checker.

- :class:`ScriptedMachine` plays a drawn script: at its i-th timestamp it performs
  ``script[i]``, a list of actions (tuples, see :meth:`ScriptedMachine.perform`) whose
  targets (an open order, a price near the last close) are resolved against the state
  it has at that moment.
- :class:`AccountChecks` is an observer added to the real graph. After every fill and at
  the end of every timestamp (``Phase.RECORD``) it reads the portfolio and the strategy
  and records each broken guarantee as a message; a test asserts the list is empty.
- :func:`frame` builds the asset frame, sorted by (timestamp, symbol), with missing bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from ml4t.backtest import BatchStrategy
from ml4t.backtest._accounting import apply_fill
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import (
    MarketBatch,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PortfolioSnapshot,
    PositionChanged,
    SubmitOrder,
)
from ml4t.backtest.portfolio import Portfolio
from ml4t.backtest.strategy import StrategyBase
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDER_REQUESTS, PORTFOLIO, POSITIONS

START = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)  # daily bars known at the close
CHILD_LEGS = (".sl", ".tp")
REL = 1e-9  # the relative tolerance of the money identities (float sums of a few fills)

Bar = tuple[float, float, float, float, float]
Action = tuple[Any, ...]


def frame(bars: Sequence[dict[str, Bar]], start: datetime = START) -> pl.DataFrame:
    """One row per (timestamp, symbol) present in ``bars[i]`` (a missing key: no bar)."""
    rows = [
        {
            "timestamp": start + timedelta(days=i),
            "symbol": symbol,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
        }
        for i, row in enumerate(bars)
        for symbol, (o, h, lo, c, v) in sorted(row.items())
    ]
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))


class ScriptedMachine(BatchStrategy):
    """Performs ``script[i]`` at its i-th timestamp (integer quantities).

    Actions (``sym`` indexes ``symbols``; ``ticks`` are percent of the last close):

    - ``("order", sym, side, kind, qty, ticks, tif, reduce_only)``: market, limit or stop;
    - ``("bracket", sym, side, entry, qty, loss_ticks, gain_ticks)``: a market or limit
      entry with a stop-loss below and a take-profit above the last close (mirrored for
      a sell);
    - ``("cancel", k)``, ``("modify", k, field, qty, ticks)``: the k-th working order
      (the strategy's own, and the bracket children it was told of), by id order;
    - ``("replace", k, order_action)``: cancel the k-th, then place the new order;
    - ``("close", sym, reduce_only)``: ``close_position``.

    An action whose price has no reference yet (the symbol never seen) or whose target
    does not exist is skipped: the script stays valid whatever the run did before it.
    """

    def __init__(self, symbols: Sequence[str], script: Sequence[Sequence[Action]]) -> None:
        super().__init__("strategy")
        self.symbols = list(symbols)
        self.script = [list(step) for step in script]
        self.step = -1
        self.children: set[str] = set()
        self.symbol_of: dict[str, str] = {}  # order id -> symbol, for price modifies
        self.rejections: list[OrderRejected] = []

    def on_timestamp(self, timestamp, batch, context) -> None:
        self.step += 1
        if self.step < len(self.script):
            for action in self.script[self.step]:
                self.perform(action)

    def on_reject(self, rejection: OrderRejected) -> None:
        self.rejections.append(rejection)

    def on_fill(self, fill: OrderFilled) -> None:
        if fill.remaining_quantity <= 0.0:
            self.children.discard(fill.order_id)

    @on(ORDER_EVENTS, phase=Phase.EXECUTION)
    def _track_children(self, event: Any) -> None:
        if event.strategy_id != self.name or not event.order_id.endswith(CHILD_LEGS):
            return
        if isinstance(event, OrderAccepted):
            self.children.add(event.order_id)
        elif isinstance(event, OrderCancelled | OrderExpired):
            self.children.discard(event.order_id)

    # ------------------------------------------------------------ actions

    def working(self) -> list[str]:
        return sorted({*self.open_orders, *self.children})

    def _price(self, symbol: str, ticks: float) -> float | None:
        ref = self.last_price(symbol)
        if not math.isfinite(ref):
            return None
        return max(0.01, round(ref * (1.0 + ticks / 100.0), 2))

    def perform(self, action: Action) -> None:
        what = action[0]
        if what == "order":
            _, sym, side, kind, qty, ticks, tif, reduce_only = action
            symbol = self.symbols[sym]
            kwargs: dict[str, Any] = {"tif": tif, "reduce_only": reduce_only}
            if kind != "market":
                price = self._price(symbol, ticks)
                if price is None:
                    return
                kwargs["limit" if kind == "limit" else "stop"] = price
            (self.buy if side == "buy" else self.sell)(symbol, qty, **kwargs)
        elif what == "bracket":
            _, sym, side, entry, qty, loss, gain = action
            symbol = self.symbols[sym]
            sign = 1 if side == "buy" else -1
            stop_loss, take_profit = (
                self._price(symbol, -sign * loss),
                self._price(symbol, sign * gain),
            )
            if stop_loss is None or take_profit is None:
                return
            kwargs = {"stop_loss": stop_loss, "take_profit": take_profit}
            if entry == "limit":
                kwargs["limit"] = self._price(symbol, 0.0)
            (self.buy if side == "buy" else self.sell)(symbol, qty, **kwargs)
        elif what in ("cancel", "modify", "replace"):
            ids = self.working()
            if not ids:
                return
            target = ids[action[1] % len(ids)]
            if what == "modify":
                self._modify(target, action[2], action[3], action[4])
                return
            self.cancel(target)
            if what == "replace":
                self.perform(action[2])
        elif what == "close":
            _, sym, reduce_only = action
            self.close_position(self.symbols[sym], reduce_only=reduce_only)
        else:
            raise ValueError(f"unknown action {action!r}")

    def _modify(self, order_id: str, field: str, qty: float, ticks: float) -> None:
        if field == "quantity":
            self.modify(order_id, quantity=qty)
            return
        symbol = self._symbol_of(order_id)
        price = self._price(symbol, ticks) if symbol is not None else None
        if price is not None:
            self.modify(order_id, **{field: price})

    def _symbol_of(self, order_id: str) -> str | None:
        return self.symbol_of.get(order_id.removesuffix(".sl").removesuffix(".tp"))

    def submit_order(self, symbol, side, quantity, **kwargs) -> str:
        order_id = super().submit_order(symbol, side, quantity, **kwargs)
        self.symbol_of[order_id] = symbol
        return order_id


class FractionalMachine(ScriptedMachine):
    """The same machine ordering fractional quantities (``close_position`` included)."""

    fractional = True


class AccountChecks(Component):
    """Reads the portfolio and the one strategy after every fill and every timestamp and
    records each broken guarantee (a test observer: it holds the two roles it checks).

    - a cash account's cash is never below 0 (no tolerance: the broker compares
      strictly) and it holds no short;
    - a fill of a reduce-only order or a bracket child never increases |position| nor
      flips its sign (the position before it is rebuilt from the fills in order, and
      each ``PositionChanged`` of the portfolio must equal it);
    - every snapshot has equity == cash + positions value, and at the end of a timestamp
      the last snapshot is the portfolio's state with positions value == sum(quantity *
      last close), within ``REL`` of the gross exposure (at least 1);
    - the strategy's ``position()`` equals the portfolio's, exactly, for every symbol.
    """

    def __init__(self, portfolio: Portfolio, strategy: StrategyBase, *, cash_account: bool):
        super().__init__("account-checks")
        self._portfolio = portfolio
        self._strategy = strategy
        self._cash_account = cash_account
        self.violations: list[str] = []
        self.timestamps = 0
        self.fills = 0
        self.reducing_fills = 0
        self._reduce_only: set[str] = set()
        self._held: dict[str, float] = {}  # the portfolio's positions, from POSITIONS
        # positions rebuilt from the fills in FILLS order (a bar's fills all reach us
        # before the portfolio's POSITIONS events about them), checked against POSITIONS
        self._running: dict[str, float] = {}
        self._expected: dict[str, float] = {}  # fill id -> position after it
        self._last_close: dict[str, float] = {}
        self._snapshot: PortfolioSnapshot | None = None

    def _fail(self, ts: int, message: str) -> None:
        self.violations.append(f"t={ts}: {message}")

    @on(ORDER_REQUESTS, phase=Phase.RISK)
    def _on_request(self, request: Any) -> None:
        if isinstance(request, SubmitOrder) and request.reduce_only:
            self._reduce_only.add(request.order_id)

    @on(FILLS, phase=Phase.EXECUTION)
    def _on_fill(self, fill: OrderFilled) -> None:
        self.fills += 1
        before = self._running.get(fill.symbol, 0.0)
        after, _, _ = apply_fill(before, 0.0, fill.quantity * fill.side.sign, fill.price)
        self._running[fill.symbol] = after
        self._expected[fill.fill_id] = after
        if fill.order_id in self._reduce_only or fill.order_id.endswith(CHILD_LEGS):
            self.reducing_fills += 1
            if before == 0.0 or after * before < 0.0 or abs(after) > abs(before):
                self._fail(
                    fill.ts_event,
                    f"reduce-only fill {fill.fill_id} ({fill.side} {fill.quantity:g} "
                    f"{fill.symbol}) moved the position from {before:g} to {after:g}",
                )

    @on(POSITIONS, phase=Phase.EXECUTION)
    def _on_position(self, event: PositionChanged) -> None:
        expected = self._expected.pop(event.last_fill_id, None)
        if expected is None or event.quantity != expected:
            self._fail(
                event.ts_event,
                f"position {event.symbol} after fill {event.last_fill_id} is "
                f"{event.quantity!r}, the fills give {expected!r}",
            )
        self._held[event.symbol] = event.quantity
        self._check_cash(event.ts_event, f"after fill {event.last_fill_id}")

    @on(PORTFOLIO, phase=Phase.EXECUTION)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._snapshot = snapshot
        scale = max(1.0, abs(snapshot.equity), snapshot.gross_exposure)
        gap = snapshot.equity - (snapshot.cash + snapshot.positions_value)
        if not abs(gap) <= REL * scale:
            self._fail(
                snapshot.ts_event,
                f"snapshot equity {snapshot.equity!r} != cash {snapshot.cash!r} + "
                f"positions value {snapshot.positions_value!r} (gap {gap:.3g})",
            )

    @on(MARKET, phase=Phase.VALUATION)
    def _on_bar(self, batch: MarketBatch) -> None:
        closes = batch.frame.select("symbol", "close").rows()
        self._last_close.update((str(s), float(c)) for s, c in closes)

    @on(MARKET, phase=Phase.RECORD)
    def _after_timestamp(self, batch: MarketBatch) -> None:
        ts = batch.ts_event
        self.timestamps += 1
        portfolio, strategy = self._portfolio, self._strategy
        self._check_cash(ts, "at the end of the timestamp")
        symbols = sorted({*self._last_close, *self._held})
        held = {s: portfolio.position(s) for s in symbols}
        if self._cash_account:
            shorts = {s: q for s, q in held.items() if q < 0.0}
            if shorts:
                self._fail(ts, f"cash account holds shorts {shorts}")
        mine = {s: strategy.position(s) for s in symbols}
        if mine != held:
            self._fail(ts, f"strategy positions {mine} != portfolio positions {held}")
        snapshot = self._snapshot
        if snapshot is None or snapshot.ts_event != ts:
            self._fail(ts, f"no portfolio snapshot at this timestamp (last: {snapshot!r})")
            return
        if snapshot.cash != portfolio.cash:
            self._fail(ts, f"last snapshot's cash {snapshot.cash!r} != {portfolio.cash!r}")
        value = sum(q * self._last_close[s] for s, q in held.items() if q != 0.0)
        gross = sum(abs(q) * self._last_close[s] for s, q in held.items() if q != 0.0)
        if not abs(snapshot.positions_value - value) <= REL * max(1.0, gross):
            self._fail(
                ts,
                f"positions value {snapshot.positions_value!r} != sum(quantity * last "
                f"close) {value!r} for {held}",
            )

    def _check_cash(self, ts: int, when: str) -> None:
        if self._cash_account and not self._portfolio.cash >= 0.0:
            self._fail(ts, f"cash account's cash is {self._portfolio.cash!r} {when}")


def table_disagreements(results: Any) -> list[str]:
    """Where the orders table, the order history and the fills disagree (empty: agree)."""
    problems: list[str] = []
    orders = {row["order_id"]: row for row in results.orders.to_dicts()}
    if len(orders) != results.orders.height:
        problems.append(f"orders table has duplicate ids: {results.orders['order_id'].to_list()}")
    fills = results.fills
    for order_id in fills["order_id"].unique().to_list():
        if order_id not in orders:
            problems.append(f"fill of order {order_id} that the orders table lacks")
    by_order: dict[str, list[tuple[float, float]]] = {}
    for row in fills.select("order_id", "quantity", "price").rows():
        by_order.setdefault(row[0], []).append((row[1], row[2]))
    history: dict[str, list[dict[str, Any]]] = {}
    for row in results.order_history.to_dicts():
        history.setdefault(row["order_id"], []).append(row)
    for order_id, row in orders.items():
        own = by_order.get(order_id, [])
        total = sum(q for q, _ in own)
        if row["filled_quantity"] != total:
            problems.append(
                f"{order_id}: filled_quantity {row['filled_quantity']!r} != sum of its "
                f"fills {total!r}"
            )
        if own:
            vwap = sum(q * p for q, p in own) / total
            avg = row["avg_fill_price"]
            if avg is None or not math.isclose(avg, vwap, rel_tol=REL):
                problems.append(f"{order_id}: avg_fill_price {avg!r} != fills' VWAP {vwap!r}")
        rows = history.get(order_id)
        if not rows:
            problems.append(f"{order_id}: no order history")
            continue
        if rows[-1]["status"] != row["status"]:
            problems.append(
                f"{order_id}: last history status {rows[-1]['status']!r} ({rows[-1]['event']}) "
                f"!= final status {row['status']!r}"
            )
        events = {r["event"] for r in rows}
        if "rejected" in events and events & {"filled", "partially_filled"}:
            problems.append(f"{order_id}: both filled and rejected in history {sorted(events)}")
    for order_id in history:
        if order_id not in orders:
            problems.append(f"history of order {order_id} that the orders table lacks")
    return problems
