"""Trade records from fills: the FIFO-lot rule, and MFE/MAE tracked bar by bar.

Pure and synchronous: feed it events in the order the recorder sees them
(``on_market``, ``on_order``, ``on_order_event``, ``on_fill``, ``on_action``,
``on_cash_in_lieu``) and call ``finish``.

The rule (``docs/results.md`` has the worked examples):

- Positions are kept per (strategy_id, symbol). Each **entry order** opens a **lot**; the
  partial fills of one entry order merge into its lot while nothing of it has been
  closed and no split came in between (entry price = VWAP of the lot's fills).
- A fill against the position's direction closes lots **first in, first out**. Each
  (lot, exit order) pair gives **one trade record**; the exit order's partial fills
  against that lot merge into it (exit price = VWAP). A lot closed by two exit orders
  gives two records, an exit order closing two lots gives two records.
- A fill larger than the open position closes every lot and opens a new lot in the
  other direction with the rest (a **flip**); its commission and slippage are split
  between the two in proportion to quantity. Entry costs of a lot are allocated to its
  records in proportion to the quantity each closes.
- MFE/MAE: from the entry price, over the high/low of the symbol's bars the lot held
  from their open, plus the exit fill price. A fill is either **at its bar's close**
  (the whole bar came before it) or at its open or within the bar (:func:`fills_at_close`
  says which). The window is the entry bar unless the entry filled at its close, every
  bar in between, and the exit bar only if the exit filled at its close. Holding period
  in bars = the number of bars in the window. ``docs/execution.md`` has the table for
  every fill timing.
- Corporate actions (:mod:`~ml4t.backtest.record._actions`): a trade stays one trade
  across a split (in post-split shares, ``split_ratio`` on its row) and a symbol change
  (``symbol`` at exit, ``entry_symbol`` at entry); cash in lieu of a fractional share
  closes that fraction (exit reason ``cash_in_lieu``); the broker's delisting fill
  closes the rest (``delisted``). Both happen at the action's time, before any bar of
  that time, so that bar is never in their window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pyarrow as pa

from ml4t.backtest._span import MarketSpan
from ml4t.backtest.errors import ConfigError, ProtocolError
from ml4t.backtest.events import (
    ActionKind,
    CorporateAction,
    MarketBatch,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    OrderUpdated,
    SessionStarted,
    SubmitOrder,
    UniverseChanged,
)
from ml4t.backtest.record import _actions
from ml4t.backtest.record._lots import (
    OHLCV,
    CapturedValues,
    DeferredBars,
    MarketView,
    OpenLots,
)
from ml4t.backtest.record._rows import ExitPart, ExitRecord, Lot, TradeRows
from ml4t.backtest.record.tables import TableBuffer, trades_schema

__all__ = [
    "EXIT_REASONS",
    "FILL_TIMINGS",
    "OHLCV",
    "TradeBuilder",
    "check_fill_rules",
    "fills_at_close",
    "trades_schema",
]

EXIT_REASONS = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "time_exit",
    "end_of_backtest",
    "open_at_stop",
    "risk_halt",
    "manual",
    "delisted",
    "cash_in_lieu",
)
FILL_TIMINGS = ("next_open", "same_close", "next_close")
_EPS = 1e-9
# exits a corporate action makes, at its time, before any bar of that time
_AT_ACTION = frozenset({"delisted", "cash_in_lieu"})
_DELIST_PREFIX = "delist:"


def check_fill_rules(fill_timing: str, intrabar: str) -> None:
    """Raise :class:`ConfigError` unless these are values of the broker's
    ``execution.fill_timing`` and ``execution.intrabar``."""
    if fill_timing not in FILL_TIMINGS:
        raise ConfigError(
            f"fill_timing {fill_timing!r} is not one of {', '.join(FILL_TIMINGS)}; pass the "
            "broker's execution.fill_timing"
        )
    if intrabar not in ("ohlc", "close"):
        raise ConfigError(
            f"intrabar {intrabar!r} is not one of ohlc, close; pass the broker's execution.intrabar"
        )


def fills_at_close(
    fill_timing: str, intrabar: str, order_type: OrderType | None, same_timestamp: bool
) -> bool:
    """Whether a fill happened at its bar's close, so the whole bar came before it.

    ``order_type`` is that of the filled order (None: an order the recorder never saw
    requested, such as a bracket child), ``same_timestamp`` whether the fill came at the
    timestamp the order was requested. At the close: every fill under ``intrabar:
    close`` (the bar is one trade at its close); a market order under ``next_close``; a
    market order filled as it is routed under ``same_close``. Any other fill is at the
    open (a next-open market fill, a gap) or within the bar (a limit or stop).

    >>> fills_at_close("same_close", "ohlc", OrderType.MARKET, same_timestamp=True)
    True
    >>> fills_at_close("same_close", "ohlc", OrderType.STOP, same_timestamp=False)
    False
    """
    if intrabar == "close":
        return True
    if order_type is not OrderType.MARKET:
        return False
    return fill_timing == "next_close" or (fill_timing == "same_close" and same_timestamp)


class _PendingOrder:
    """What the builder keeps of an order until it is done."""

    __slots__ = ("capture", "order_type", "reason", "stop_loss", "symbol", "take_profit", "ts")

    def __init__(self, order: SubmitOrder, capture: CapturedValues | None) -> None:
        self.ts = order.ts_event
        self.symbol = order.symbol
        self.reason = order.reason
        self.order_type = order.order_type
        self.stop_loss = order.stop_loss
        self.take_profit = order.take_profit
        self.capture = capture


class TradeBuilder:
    """Turns fills into FIFO-lot trade records with MFE/MAE (see the module docstring).

    ``signals``/``context`` name the frame columns and context fields captured at entry
    and exit (``None``: every non-OHLCV column / every context field of the first batch).
    ``fill_timing`` and ``intrabar`` are the broker's (``execution.fill_timing``,
    ``execution.intrabar``): they say which fills are at their bar's close, and so which
    bars count for MFE/MAE (:func:`fills_at_close`).
    ``make_table(schema)`` returns the buffer records go to (in memory by default).
    """

    def __init__(
        self,
        *,
        signals: Iterable[str] | None = None,
        context: Iterable[str] | None = None,
        fill_timing: str = "next_open",
        intrabar: str = "ohlc",
        make_table: Callable[[pa.Schema], TableBuffer] | None = None,
    ) -> None:
        check_fill_rules(fill_timing, intrabar)
        self.fill_timing = fill_timing
        self.intrabar = intrabar
        self._market = MarketView(
            tuple(signals) if signals is not None else None,
            tuple(context) if context is not None else None,
        )
        self._open = OpenLots()
        self._rows = TradeRows(
            self._market,
            make_table
            or (
                lambda schema: TableBuffer("trades", schema, output_dir=None, row_group_size=65_536)
            ),
        )
        self._lots: dict[tuple[str, str], deque[Lot]] = {}
        self._orders: dict[str, _PendingOrder] = {}
        self._exits: dict[tuple[str, str], dict[tuple[str, str], ExitRecord]] = {}
        self._exit_keys: dict[str, set[tuple[str, str]]] = {}
        self._last_fill_price: dict[str, float] = {}
        self._instant = _actions.Instant()
        self._bar_due = False  # the current batch is not yet applied to the lots
        self._deferred = DeferredBars()  # earlier batches not yet applied to them
        self._lot_seq = 0

    # ------------------------------------------------------------ inputs

    @property
    def open_lots(self) -> int:
        return self._open.n

    @property
    def table(self) -> TableBuffer | None:
        return self._rows.table

    @property
    def trades(self) -> int:
        return self._rows.count

    def on_session(self, event: SessionStarted | UniverseChanged) -> None:
        """The run's universe (the codes the batches carry)."""
        self._apply_deferred()  # in the codes they were taken in
        self._market.on_session(event)

    def on_market(self, batch: MarketBatch) -> None:
        """A new bar: the previous one is applied to the lots open now (or deferred)."""
        self._catch_up(defer=True)
        self._market.set(batch)
        self._bar_due = True
        self._instant.on_batch()

    def span_ready(self) -> bool:
        """Whether a quiet span's bars can wait for the open lots (not while the lots
        are to be re-coded after a universe change)."""
        return not (self._open.n and self._market.recoded)

    def on_span(self, span: MarketSpan) -> None:
        """The bars of a quiet span, as :meth:`on_market` one by one leaves them: all
        but the last wait in the run of deferred bars, the last is current."""
        self._catch_up(defer=True)
        if self._open.n and span.steps > 1:
            chunk, earlier = span.chunk, span.times[:-1]
            if not self._deferred.take_steps(chunk, span.first, earlier, self._open):
                self._apply_deferred()
                if not self._deferred.take_steps(chunk, span.first, earlier, self._open):
                    raise ProtocolError(
                        f"a quiet span from {span.times[0]} to {span.times[-1]} cannot be "
                        "applied to the open lots (its rows are not one block of its chunk, "
                        "or it does not follow every entry)"
                    )
        self._market.set(span.batch)
        self._bar_due = True
        for _ in range(min(span.steps, 2)):  # an instant is forgotten after two batches
            self._instant.on_batch()

    def on_order(self, order: SubmitOrder) -> None:
        """An order request: remember its reason, bracket levels and the decision bar."""
        if order.order_id not in self._orders:
            self._orders[order.order_id] = _PendingOrder(order, self._market.capture(order.symbol))

    def on_order_event(self, event: Any) -> None:
        if isinstance(event, OrderUpdated):
            self._update_levels(event)
        elif isinstance(event, OrderCancelled | OrderExpired | OrderRejected):
            self._settle_order(event.order_id)
            self._orders.pop(event.order_id, None)

    def on_fill(self, fill: OrderFilled) -> None:
        self._apply_deferred()
        if self._at_action(fill):
            # made by an action of this instant: after a rename in it, the symbol's new name
            symbol = self._instant.resolve(fill.symbol)
            if symbol != fill.symbol:
                fill = msgspec.structs.replace(fill, symbol=symbol)
        key = (fill.strategy_id, fill.symbol)
        self._last_fill_price[fill.symbol] = fill.price
        order = self._orders.get(fill.order_id)
        at_close = not self._at_action(fill) and fills_at_close(
            self.fill_timing,
            self.intrabar,
            order.order_type if order is not None else None,
            order is not None and order.ts == fill.ts_event,
        )
        if self._exits.get(key):
            self._settle(key, keep_order=fill.order_id)
        sign = 1 if fill.side is OrderSide.BUY else -1
        lots = self._lots.get(key)
        remaining = fill.quantity
        if lots and lots[0].direction != sign:
            while lots and remaining > _EPS * max(1.0, fill.quantity):
                lot = lots[0]
                take = min(lot.open, remaining)
                self._close_part(key, lot, take, fill, at_close)
                remaining -= take
                if lot.open <= _EPS * max(1.0, lot.filled):
                    lots.popleft()
                    self._release(lot)
            if not lots:
                del self._lots[key]
        if remaining > _EPS * max(1.0, fill.quantity):
            self._open_lot(key, sign, remaining, fill, at_close)
        if fill.remaining_quantity <= 0.0:
            self._settle_order(fill.order_id)
            self._orders.pop(fill.order_id, None)

    def on_action(self, action: CorporateAction) -> None:
        """A corporate action, in effect before the next bar: the current bar is applied
        to the lots first (in the terms it was traded in, and only once), then a split
        rescales the symbol's lots and a symbol change moves them. Dividends and
        delistings change no lot here: their cash and the delisting fill come as events."""
        self._catch_up()
        symbol = self._instant.resolve(action.symbol)
        self._instant.acted(symbol, self._market.capture(symbol))
        if action.action is ActionKind.SPLIT:
            self._split(symbol, _actions.check_split(action))
        elif action.action is ActionKind.SYMBOL_CHANGE and action.new_symbol:
            self._rename(symbol, action.new_symbol)

    def finish(
        self, *, close_open: bool = True, exit_reason: str = "end_of_backtest"
    ) -> TableBuffer:
        """End of the run: settle every record; close (or list as open) the lots left,
        with ``exit_reason``: ``end_of_backtest`` when the run reached the end of its data,
        ``open_at_stop`` when it was stopped before (Ctrl-C, a failure)."""
        for key in list(self._exits):
            self._settle(key)
        self._catch_up()
        for lots in list(self._lots.values()):
            for lot in lots:
                self._emit_open_lot(lot, close=close_open, reason=exit_reason)
        self._lots.clear()
        self._open = OpenLots()
        return self._rows.ensure_table()

    # ------------------------------------------------------------ lots

    def _catch_up(self, *, defer: bool = False) -> None:
        """Apply the current batch to the open lots, once; with ``defer``, let it wait
        in the run of deferred bars where it can (see :class:`DeferredBars`)."""
        if self._bar_due:
            self._bar_due = False
            if self._open.n:
                batch = self._market.batch
                if (
                    defer
                    and batch is not None
                    and not self._market.recoded
                    and self._deferred.take(batch, self._open)
                ):
                    return
                self._apply_deferred()
                self._apply()

    def _apply_deferred(self) -> None:
        """The deferred bars reach the open lots (before anything changes the lots)."""
        if self._deferred.pending:
            self._deferred.apply_to(self._open, self._market.table.size)

    def _apply(self) -> None:
        market = self._market
        market.stamped()
        if market.recoded:  # the universe changed: re-code the open lots
            market.recoded = False
            for slot, lot in enumerate(self._open.owners[: self._open.n]):
                self._open.code[slot] = market.code_of(lot.symbol)
        self._open.apply(market)

    @staticmethod
    def _at_action(fill: OrderFilled) -> bool:
        """Whether a corporate action made this fill (at its time, before any bar)."""
        return fill.reason in _AT_ACTION or fill.order_id.startswith(_DELIST_PREFIX)

    def _split(self, symbol: str, ratio: float) -> None:
        slots: list[int] = []
        for key, lots in self._lots.items():
            if key[1] != symbol:
                continue
            for lot in lots:
                _actions.split_lot(lot, ratio)
                slots.append(lot.slot)
            for record in self._exits.get(key, {}).values():
                if record.lot.slot >= 0:  # its lot is open, so it was just split
                    _actions.split_record(record, ratio)
        self._open.scale(slots, ratio)
        for order in self._orders.values():
            if order.symbol == symbol:  # an entry not filled yet: its bracket levels
                order.stop_loss = _actions.scaled(order.stop_loss, ratio)
                order.take_profit = _actions.scaled(order.take_profit, ratio)
        if symbol in self._last_fill_price:
            self._last_fill_price[symbol] /= ratio

    def _rename(self, old: str, new: str) -> None:
        self._instant.rename(old, new)
        slots: list[int] = []
        for strategy, symbol in [key for key in self._lots if key[1] == old]:
            lots = self._lots.pop((strategy, symbol))
            for lot in lots:
                lot.symbol = new
                slots.append(lot.slot)
            self._lots.setdefault((strategy, new), deque()).extend(lots)
        for strategy, symbol in [key for key in self._exits if key[1] == old]:
            records = self._exits.pop((strategy, symbol))
            self._exits.setdefault((strategy, new), {}).update(records)
            for record in records.values():
                keys = self._exit_keys.get(record.order_id)
                if keys is not None and (strategy, old) in keys:
                    keys.discard((strategy, old))
                    keys.add((strategy, new))
        self._open.recode(slots, self._market.code_of(new))
        for order in self._orders.values():
            if order.symbol == old:
                order.symbol = new
        if old in self._last_fill_price:
            self._last_fill_price.setdefault(new, self._last_fill_price.pop(old))

    def _open_lot(
        self, key: tuple[str, str], sign: int, qty: float, fill: OrderFilled, at_close: bool
    ) -> None:
        share = qty / fill.quantity
        lots = self._lots.get(key)
        tail = lots[-1] if lots else None
        if (
            tail is not None
            and tail.order_id == fill.order_id
            and tail.open == tail.filled
            and tail.direction == sign
            and tail.split_ratio == 1.0
        ):
            total = tail.filled + qty
            tail.price = (tail.price * tail.filled + fill.price * qty) / total
            tail.filled = tail.open = total
            tail.commission += fill.commission * share
            tail.slippage += fill.slippage * share
            self._open.see_price(tail.slot, fill.price)
            return
        order = self._orders.get(fill.order_id)
        lot = Lot()
        self._lot_seq += 1
        lot.lot_id = f"L{self._lot_seq}"
        lot.strategy_id, lot.symbol = key
        lot.entry_symbol = lot.symbol
        lot.direction = sign
        lot.order_id = fill.order_id
        lot.filled = lot.open = qty
        lot.price = fill.price
        lot.split_ratio = 1.0
        lot.commission = fill.commission * share
        lot.slippage = fill.slippage * share
        lot.entry_ts = fill.ts_event
        capture = order.capture if order is not None else None
        lot.entry = capture if capture is not None else self._market.capture(lot.symbol)
        lot.stop_loss = order.stop_loss if order is not None else None
        lot.take_profit = order.take_profit if order is not None else None
        if lots is None:
            lots = self._lots[key] = deque()
        lots.append(lot)
        code = self._market.code_of(lot.symbol)
        lot.slot = self._open.add(lot, code, fill.ts_event, fill.price, late=at_close)

    def _release(self, lot: Lot) -> None:
        moved = self._open.release(lot.slot)
        if moved is not None:
            moved.slot = lot.slot
        lot.slot = -1

    # ------------------------------------------------------------ exits and records

    def _close_part(
        self, key: tuple[str, str], lot: Lot, take: float, fill: OrderFilled, at_close: bool
    ) -> None:
        share = take / fill.quantity
        lot_share = take / lot.open
        entry_commission = lot.commission * lot_share
        entry_slippage = lot.slippage * lot_share
        lot.commission -= entry_commission
        lot.slippage -= entry_slippage
        lot.open -= take
        symbol = key[1]
        hi, lo, bars = self._open.state(lot.slot)
        if at_close and self._open.held_from_open(lot.slot, fill.ts_event):
            extremes = self._market.bar_range(symbol, fill.ts_event)
            if extremes is not None:  # the exit bar was held to its close: it counts
                hi, lo, bars = max(hi, extremes[0]), min(lo, extremes[1]), bars + 1
        hi, lo = max(hi, fill.price), min(lo, fill.price)
        exits = self._exits.setdefault(key, {})
        record = exits.get((lot.lot_id, fill.order_id))
        if record is None:
            record = ExitRecord()
            record.lot = lot
            record.order_id = fill.order_id
            record.quantity = record.notional = 0.0
            record.commission = record.slippage = 0.0
            record.entry_commission = record.entry_slippage = 0.0
            record.reason = self._exit_reason(fill)
            order = self._orders.get(fill.order_id)
            capture = order.capture if order is not None else None
            if capture is None and self._at_action(fill):  # the bar before the action
                capture = self._instant.capture(symbol)
            record.capture = capture if capture is not None else self._market.capture(symbol)
            exits[(lot.lot_id, fill.order_id)] = record
            self._exit_keys.setdefault(fill.order_id, set()).add(key)
        record.quantity += take
        record.notional += take * fill.price
        record.commission += fill.commission * share
        record.slippage += fill.slippage * share
        record.entry_commission += entry_commission
        record.entry_slippage += entry_slippage
        record.last_ts = fill.ts_event
        record.symbol = symbol
        record.hi, record.lo, record.bars = hi, lo, bars

    def _exit_reason(self, fill: OrderFilled) -> str:
        if fill.reason:
            return fill.reason
        if fill.order_id.startswith(_DELIST_PREFIX):
            return "delisted"
        order = self._orders.get(fill.order_id)
        if order is not None and order.reason:
            return order.reason
        if fill.order_id.endswith(".sl"):
            return "stop_loss"
        if fill.order_id.endswith(".tp"):
            return "take_profit"
        if order is not None and order.order_type is OrderType.TRAILING_STOP:
            return "trailing_stop"
        return "signal"

    def _update_levels(self, event: OrderUpdated) -> None:
        parent, _, leg = event.order_id.rpartition(".")
        if leg not in ("sl", "tp"):
            return
        price = event.stop_price if leg == "sl" else event.limit_price
        if price is None:
            return
        symbol = self._instant.resolve(event.symbol)
        for lot in self._lots.get((event.strategy_id, symbol), ()):
            if lot.order_id == parent:
                if leg == "sl":
                    lot.stop_loss = price
                else:
                    lot.take_profit = price

    def _settle_order(self, order_id: str) -> None:
        for key in sorted(self._exit_keys.pop(order_id, ())):
            exits = self._exits.get(key)
            if not exits:
                continue
            for ident in [k for k in exits if k[1] == order_id]:
                self._emit(exits.pop(ident))
            if not exits:
                del self._exits[key]

    def _settle(self, key: tuple[str, str], keep_order: str | None = None) -> None:
        exits = self._exits.get(key)
        if not exits:
            return
        for ident in [k for k in exits if k[1] != keep_order]:
            record = exits.pop(ident)
            keys = self._exit_keys.get(record.order_id)
            if keys is not None and not any(k[1] == record.order_id for k in exits):
                keys.discard(key)
                if not keys:
                    del self._exit_keys[record.order_id]
            self._emit(record)
        if not exits:
            del self._exits[key]

    def _emit(self, record: ExitRecord) -> None:
        exit_part = ExitPart(
            record.order_id,
            record.last_ts,
            record.notional / record.quantity,
            record.commission,
            record.slippage,
            record.reason,
            record.capture,
        )
        self._rows.write(
            record.lot,
            record.quantity,
            (record.entry_commission, record.entry_slippage),
            exit_part,
            (record.hi, record.lo, record.bars),
            record.symbol,
        )

    def _emit_open_lot(self, lot: Lot, *, close: bool, reason: str) -> None:
        slot = lot.slot
        hi, lo, bars = self._open.state(slot)
        exit_part = None
        if close:
            price = float(self._open.close[slot])
            if math.isnan(price):
                price = self._last_fill_price.get(lot.symbol, lot.price)
            hi, lo = max(hi, price), min(lo, price)
            exit_part = ExitPart(
                None,
                int(self._open.close_ts[slot]),
                price,
                0.0,
                0.0,
                reason,
                self._market.capture(lot.symbol),
            )
        costs = (lot.commission, lot.slippage)
        self._rows.write(lot, lot.open, costs, exit_part, (hi, lo, bars), lot.symbol)
