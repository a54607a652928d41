"""The two strategy APIs.

- :class:`Strategy`: ``on_bar(bar)`` once per symbol per timestamp, with a reused
  :class:`~ml4t.backtest._bar.Bar` view (OHLCV, signals, indicators, context).
- :class:`BatchStrategy`: ``on_timestamp(timestamp, batch, context)`` once per timestamp
  with every symbol's row in one polars frame: the fast path for large universes.

Both are components on the bus and share the order helpers (``buy``, ``sell``,
``close_position``, ``order_target_quantity``, ``order_target_percent``, ``rebalance``,
limit/stop/bracket arguments, ``cancel``), the state view (``position``, ``positions()``,
``cash``, ``equity``, ``open_orders``), timers (``schedule``) and the callbacks
``on_start``, ``on_stop``, ``on_fill``, ``on_reject``, ``on_timer``.

What a strategy sees at time t (DESIGN §2): fills of orders that matched bar t are
already applied to its positions (fills and order events are delivered in the execution
phase), ``cash`` and ``equity`` are the portfolio marked at t's close, then the bar
arrives. Orders it submits are checked by the risk manager and can fill from the next
bar of their symbol.

Positions here are the strategy's own, built from its own fills with the portfolio's
accounting function (:func:`~ml4t.backtest._accounting.apply_fill`), so two strategies
sharing one account each see what they traded, and one alone sees exactly the
portfolio's position.

Order helpers check their arguments at the call: a quantity that is not a positive
finite number, a price of the wrong type or sign, an unknown time in force or order type
(the enum, or its name in any case, is accepted) raise :class:`~ml4t.backtest.errors.
OrderError` (a ``ValueError``) and send nothing. A well-formed request that the account
or the market refuses (buying power, an unknown symbol, a reduce-only order with nothing
to reduce) arrives as an ``OrderRejected`` in :meth:`on_reject`; the run goes on.

Working orders: an order counts in :meth:`pending_quantity` (and so in the target
helpers) from the call that sends it until it fills, is cancelled, expires or is
rejected; :meth:`cancel` takes its remainder out at once (a refused cancel puts it back);
a modify counts once the broker confirms it (``OrderUpdated``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Unpack

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest._accounting import apply_fill, is_dust
from ml4t.backtest._bar import Bar, Bars, BatchFrame
from ml4t.backtest._order_args import (
    OrderOptions,
    TargetOptions,
    finite,
    optional_price,
    order_request,
    positive,
)
from ml4t.backtest._span import MARKET_SPAN, PORTFOLIO_SPAN, MarketSpan, PortfolioSpan
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._time import from_ns, parse_duration, to_ns
from ml4t.backtest._universe import frame_codes
from ml4t.backtest.bus import Phase
from ml4t.backtest.clock import interval_rule
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ConfigError, ML4TError, OrderError
from ml4t.backtest.events import (
    CODE_DTYPE,
    ActionKind,
    CancelOrder,
    ChunkColumns,
    CorporateAction,
    MarketBatch,
    ModifyOrder,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    OrderUpdated,
    PortfolioSnapshot,
    RequestKind,
    SessionStarted,
    TimeInForce,
    UniverseChanged,
)
from ml4t.backtest.topics import (
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    PORTFOLIO,
    SESSION,
)

__all__ = ["BatchStrategy", "OpenOrder", "Strategy", "StrategyBase", "StrategyError"]


class OpenOrder(msgspec.Struct, kw_only=True):
    """One of the strategy's orders that is neither filled, cancelled, expired nor rejected.

    ``cancelling``: a cancel was sent and not yet answered; the order no longer counts in
    :meth:`~StrategyBase.pending_quantity`."""

    order_id: str
    symbol: str
    side: OrderSide
    quantity: float
    filled: float = 0.0
    cancelling: bool = False

    @property
    def remaining_signed(self) -> float:
        return (self.quantity - self.filled) * self.side.sign

    @property
    def working_signed(self) -> float:
        """What the order adds to the pending quantity (0 while a cancel is out)."""
        return 0.0 if self.cancelling else self.remaining_signed


def _decode_params(cls: type, params: Any) -> Any:
    spec = getattr(cls, "Params", None)
    if spec is None:
        if params:
            raise ConfigError(
                f"{cls.__name__} takes no parameters (define a nested `Params` "
                f"msgspec.Struct to accept some), got {sorted(params)}"
            )
        return None
    if isinstance(params, spec):
        return params
    try:
        return msgspec.convert(dict(params or {}), spec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"strategy parameters of {cls.__name__}: {exc}") from exc


class StrategyBase(Component):
    """Order helpers, state view, timers and callbacks shared by both APIs
    (:class:`Strategy`, per symbol, and :class:`BatchStrategy`, per batch); subclass one
    of those. The engine and the config loader accept any subclass."""

    Params: ClassVar[type[msgspec.Struct] | None] = None
    fractional: ClassVar[bool] = False
    """Order whole shares (False, the default) or fractions from the target helpers."""
    wake: ClassVar[str] = "bar"
    """When the bar callback (``on_bar``/``on_timestamp``) runs: ``"bar"`` (the default),
    at every timestamp; ``"signal"``, only at the run's first timestamp, where some
    symbol's signal values change (a new prediction, one expiring under
    ``max_staleness``, a symbol's first row with a signal), and at the first timestamp
    after the strategy received a fill, an order event (a rejection, cancel, expiry,
    update), a corporate action or a universe change. Prices, indicators and context
    are not reasons to wake: a rule that reads them on every bar needs ``"bar"`` (or a
    timer, :meth:`schedule`). Positions, cash, equity and last prices stay current
    either way."""

    def __init__(self, name: str | None = None, *, params: Any = None) -> None:
        super().__init__(name)
        if self.wake not in ("bar", "signal"):
            raise ConfigError(
                f"{type(self).__name__}.wake is {self.wake!r}; it must be 'bar' (every "
                "timestamp) or 'signal' (where signals change, and after fills and events)"
            )
        self._by_signal = self.wake == "signal"
        self._woken = True  # the run's first timestamp is a wake
        self.params: Any = _decode_params(type(self), params)
        self._order_seq = 0
        self._qty: dict[str, float] = {}
        self._avg: dict[str, float] = {}
        self._open: dict[str, OpenOrder] = {}
        self._held: set[str] = set()  # symbols with a non-zero position
        self._pending: dict[str, float] = {}  # signed working quantity per symbol
        self._dirty: set[str] = set()  # symbols whose arrays below are out of date
        self._cash = math.nan
        self._equity = math.nan
        # per-symbol arrays by code, for last_price and batch_positions
        self._table = SymbolTable({"last_close": math.nan, "position": 0.0, "pending": 0.0})
        self._members: np.ndarray | None = None  # by code, with a point-in-time universe
        self._close_on_exit = False
        self._data_end_ns = 0  # the data's last timestamp (SessionStarted; 0: unknown)
        self._now_dt: tuple[int, datetime] = (-1, from_ns(0))
        self._frame_codes: tuple[pl.DataFrame | None, np.ndarray] = (None, np.empty(0, np.intp))

    # ------------------------------------------------------------ state view

    @property
    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        now = self.now_ns()
        if self._now_dt[0] != now:
            self._now_dt = (now, from_ns(now))
        return self._now_dt[1]

    @property
    def cash(self) -> float:
        """Account cash as of the latest portfolio snapshot (NaN before the first)."""
        return self._cash

    @property
    def equity(self) -> float:
        """Account equity as of the latest snapshot (NaN before the first)."""
        return self._equity

    def position(self, symbol: str) -> float:
        """This strategy's signed quantity in ``symbol`` (0 if flat)."""
        return self._qty.get(symbol, 0.0)

    def holdings(self) -> dict[str, float]:
        """Non-zero positions by symbol, in symbol order: the cheap form of
        :meth:`positions`."""
        qty = self._qty
        return {s: qty[s] for s in sorted(self._held)}

    def last_price(self, symbol: str) -> float:
        """The last close seen for ``symbol`` (NaN if never seen)."""
        code = self._table.code_of(symbol)
        return float(self._table["last_close"][code]) if code is not None else math.nan

    def positions(self) -> pl.DataFrame:
        """Open positions: symbol, quantity, avg_price, last_price, market_value,
        unrealized_pnl, sorted by symbol."""
        rows = sorted((s, q) for s, q in self._qty.items() if q != 0.0)
        symbols = [s for s, _ in rows]
        qty = np.array([q for _, q in rows], dtype=np.float64)
        avg = np.array([self._avg[s] for s in symbols], dtype=np.float64)
        last = np.array([self.last_price(s) for s in symbols], dtype=np.float64)
        return pl.DataFrame(
            {
                "symbol": pl.Series(symbols, dtype=pl.String),
                "quantity": qty,
                "avg_price": avg,
                "last_price": last,
                "market_value": qty * last,
                "unrealized_pnl": qty * (last - avg),
            }
        )

    @property
    def open_orders(self) -> dict[str, OpenOrder]:
        """This strategy's working orders by id (a copy)."""
        return dict(self._open)

    def pending_quantity(self, symbol: str) -> float:
        """Signed quantity of this strategy's working orders in ``symbol``."""
        return self._pending.get(symbol, 0.0)

    def batch_positions(self, batch: pl.DataFrame, *, pending: bool = True) -> np.ndarray:
        """This strategy's signed position in each row's symbol (plus working orders,
        unless ``pending=False``), aligned with ``batch``'s rows: the vectorised form of
        :meth:`position` for the batch API, e.g.
        ``batch.filter((batch_positions == 0) & (pl.col("signal_entry") == 1))``."""
        if self._dirty:
            self._refresh_arrays()
        seen, codes = self._frame_codes
        if batch is not seen:  # not the frame on_timestamp was given: read its Enum
            codes = frame_codes(batch)
        held = self._table["position"][codes]
        return held + self._table["pending"][codes] if pending else held

    def _refresh_arrays(self) -> None:
        table = self._table
        codes, position, pending = table.code, table["position"], table["pending"]
        for symbol in list(self._dirty):
            code = codes.get(symbol)
            if code is None:
                continue  # not in the data's universe (yet)
            position[code] = self._qty.get(symbol, 0.0)
            pending[code] = self._pending.get(symbol, 0.0)
            self._dirty.discard(symbol)

    def _bump_pending(self, symbol: str, delta: float) -> None:
        if delta == 0.0:
            return
        left = self._pending.get(symbol, 0.0) + delta
        if is_dust(left, delta):
            self._pending.pop(symbol, None)
        else:
            self._pending[symbol] = left
        self._dirty.add(symbol)

    # ------------------------------------------------------------ orders

    def submit_order(
        self,
        symbol: str,
        side: OrderSide,
        quantity: float,
        *,
        order_type: OrderType | str | None = None,
        limit: float | None = None,
        stop: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        reduce_only: bool = False,
        reason: str = "",
    ) -> str:
        """Send an order request to the risk manager; returns its order id.

        The type follows from the prices given (limit → limit, stop → stop, both →
        stop-limit, a trail → trailing stop) unless ``order_type`` says otherwise.
        ``tif`` and ``order_type`` take the enum or its name (any case). A
        ``reduce_only`` order may only reduce the position (see the broker).

        Raises :class:`~ml4t.backtest.errors.OrderError` at the call for an argument no
        order can have; refusals by the account or the market arrive in
        :meth:`on_reject`.
        """
        now = self.now_ns()
        request = order_request(
            f"{self.name}-{self._order_seq + 1}",
            self.name,
            now,
            symbol,
            side,
            quantity,
            order_type=order_type,
            limit=limit,
            stop=stop,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
            tif=tif,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reduce_only=reduce_only,
            reason=reason,
        )
        self._order_seq += 1  # the arguments were good: the id is used
        order_id, side, quantity = request.order_id, request.side, request.quantity
        self.publish(ORDER_REQUESTS, request)
        self._open[order_id] = OpenOrder(
            order_id=order_id, symbol=symbol, side=side, quantity=quantity
        )
        self._bump_pending(symbol, quantity * side.sign)
        return order_id

    def buy(
        self,
        symbol: str,
        quantity: float,
        *,
        order_type: OrderType | str | None = None,
        limit: float | None = None,
        stop: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        reduce_only: bool = False,
        reason: str = "",
    ) -> str:
        """Buy ``quantity`` (market unless ``limit``/``stop``/``trail_*`` are given); the
        keywords are :meth:`submit_order`'s."""
        return self.submit_order(
            symbol,
            OrderSide.BUY,
            quantity,
            order_type=order_type,
            limit=limit,
            stop=stop,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
            tif=tif,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reduce_only=reduce_only,
            reason=reason,
        )

    def sell(
        self,
        symbol: str,
        quantity: float,
        *,
        order_type: OrderType | str | None = None,
        limit: float | None = None,
        stop: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        reduce_only: bool = False,
        reason: str = "",
    ) -> str:
        """Sell ``quantity`` (closes a long or opens/increases a short); the keywords are
        :meth:`submit_order`'s."""
        return self.submit_order(
            symbol,
            OrderSide.SELL,
            quantity,
            order_type=order_type,
            limit=limit,
            stop=stop,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
            tif=tif,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reduce_only=reduce_only,
            reason=reason,
        )

    def close_position(
        self, symbol: str, *, reason: str = "signal", **options: Unpack[OrderOptions]
    ) -> str | None:
        """Flatten ``symbol`` (net of working orders); None if already flat."""
        return self.order_target_quantity(symbol, 0.0, reason=reason, **options)

    def order_target_quantity(
        self, symbol: str, target: float, **options: Unpack[TargetOptions]
    ) -> str | None:
        """Order the difference between ``target`` and the position plus working orders."""
        target = finite("target", target)
        delta = target - self.position(symbol) - self.pending_quantity(symbol)
        if not self.fractional:
            delta = float(math.trunc(round(delta, 9)))
        if delta == 0.0 or not math.isfinite(delta):
            return None
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        return self.submit_order(symbol, side, abs(delta), **options)

    def order_target_percent(
        self,
        symbol: str,
        percent: float,
        *,
        price: float | None = None,
        **options: Unpack[TargetOptions],
    ) -> str | None:
        """Hold ``percent`` of equity (0.05 = 5 %, negative = short) in ``symbol``, sized
        at ``price`` (default: the last close seen)."""
        percent = finite("percent", percent)
        if price is not None:
            price = positive("price", price)
        px = price if price is not None else self.last_price(symbol)
        if not (math.isfinite(px) and px > 0 and math.isfinite(self._equity)):
            return None
        return self.order_target_quantity(symbol, percent * self._equity / px, **options)

    def rebalance(
        self, weights: Mapping[str, float], **options: Unpack[TargetOptions]
    ) -> list[str]:
        """Move to target weights of equity; held symbols not in ``weights`` go to 0.

        Sells are submitted before buys, so the proceeds are there when buys fill.
        """
        targets = {s: finite(f"weights[{s!r}]", w) for s, w in dict(weights).items()}
        for symbol, qty in self._qty.items():
            if qty != 0.0 and symbol not in targets:
                targets[symbol] = 0.0
        sells: list[tuple[str, float]] = []
        buys: list[tuple[str, float]] = []
        for symbol in sorted(targets):
            px = self.last_price(symbol)
            if not (math.isfinite(px) and px > 0):
                continue
            target_qty = targets[symbol] * self._equity / px
            current = self.position(symbol) + self.pending_quantity(symbol)
            (buys if target_qty > current else sells).append((symbol, target_qty))
        ids = [self.order_target_quantity(s, q, **options) for s, q in sells + buys]
        return [i for i in ids if i is not None]

    def cancel(self, order_id: str) -> None:
        """Ask the broker to cancel ``order_id``; confirmation arrives as an event.

        The order's remainder leaves :meth:`pending_quantity` at once, so a replacement
        sent next (``close_position``, a target helper) is sized without it; a refused
        cancel puts it back."""
        if not isinstance(order_id, str) or not order_id:
            raise OrderError(f"order_id must be a non-empty string, got {order_id!r}")
        now = self.now_ns()
        self.publish(
            ORDER_REQUESTS,
            CancelOrder(ts_event=now, ts_init=now, order_id=order_id, strategy_id=self.name),
        )
        order = self._open.get(order_id)
        if order is not None and not order.cancelling:
            self._bump_pending(order.symbol, -order.working_signed)
            order.cancelling = True

    def modify(
        self,
        order_id: str,
        *,
        quantity: float | None = None,
        limit: float | None = None,
        stop: float | None = None,
    ) -> None:
        """Ask the broker to replace a working order's quantity or prices; the change
        counts in :meth:`pending_quantity` once the broker confirms it."""
        if not isinstance(order_id, str) or not order_id:
            raise OrderError(f"order_id must be a non-empty string, got {order_id!r}")
        if quantity is None and limit is None and stop is None:
            raise OrderError(f"modify({order_id!r}) changes nothing: give quantity, limit or stop")
        if quantity is not None:
            quantity = positive("quantity", quantity)
        limit, stop = optional_price("limit", limit), optional_price("stop", stop)
        now = self.now_ns()
        self.publish(
            ORDER_REQUESTS,
            ModifyOrder(
                ts_event=now,
                ts_init=now,
                order_id=order_id,
                strategy_id=self.name,
                quantity=quantity,
                limit_price=limit,
                stop_price=stop,
            ),
        )

    # ------------------------------------------------------------ timers

    def schedule(
        self,
        name: str,
        *,
        every: str | int | None = None,
        at: str | datetime | None = None,
        start: datetime | None = None,
    ) -> None:
        """Call :meth:`on_timer` ``every`` interval (``"5m"``, ``"1h"``, ns), once ``at`` a
        time, or ``at="session_open"``/``"session_close"`` of each trading day (needs the
        run's calendar). A timer stops after the data's last timestamp (when the session
        knows it), so that a backtest ends with its data."""
        rule: Callable[[int], int | None]
        if at in ("session_open", "session_close"):
            calendar = self.context.calendar
            if calendar is None:
                raise ConfigError(
                    f"schedule({name!r}, at={at!r}) needs a trading calendar; set "
                    "backtest.calendar in the config (e.g. NYSE)"
                )
            rule = calendar.next_open if at == "session_open" else calendar.next_close
        elif isinstance(at, datetime):
            rule = interval_rule(to_ns(at), None)
        elif every is not None:
            interval = parse_duration(every)
            first = to_ns(start) if start is not None else self.now_ns() + interval
            rule = interval_rule(first, interval)
        else:
            raise ConfigError(
                f"schedule({name!r}) needs every=..., at=<datetime> or "
                "at='session_open'/'session_close'"
            )
        self.set_timer(name, next_time=self._until_data_end(rule))

    def _until_data_end(self, rule: Callable[[int], int | None]) -> Callable[[int], int | None]:
        """``rule``, ending after the data's last timestamp when the session says it: a
        calendar has sessions for centuries, and the simulated clock would visit each."""

        def next_time(after_ns: int) -> int | None:
            when = rule(after_ns)
            end = self._data_end_ns
            return None if when is None or (end and when > end) else when

        return next_time

    # ------------------------------------------------------------ callbacks

    def on_fill(self, fill: OrderFilled) -> Any:
        """Called for each fill of this strategy's orders, before the next bar."""

    def on_corporate_action(self, action: CorporateAction) -> Any:
        """Called after a corporate action (split, dividend, delisting, symbol change) on
        any symbol is applied to this strategy's view; override to react (the default does
        nothing). Positions and orders are already restated."""
        return None

    def on_reject(self, rejection: OrderRejected) -> Any:
        """Called when the risk manager or the broker refuses one of this strategy's
        requests; ``rejection.rule`` and ``rejection.reason`` say why."""

    # ------------------------------------------------------------ wiring

    @on(FILLS, phase=Phase.EXECUTION)
    def _handle_fill(self, fill: OrderFilled) -> Any:
        if fill.strategy_id != self.name:
            return None
        self._woken = True
        symbol = fill.symbol
        signed = fill.quantity * fill.side.sign
        new, avg, _ = apply_fill(
            self._qty.get(symbol, 0.0), self._avg.get(symbol, 0.0), signed, fill.price
        )
        if new:
            self._qty[symbol], self._avg[symbol] = new, avg
            self._held.add(symbol)
        else:
            self._qty.pop(symbol, None)
            self._avg.pop(symbol, None)
            self._held.discard(symbol)
        self._dirty.add(symbol)
        order = self._open.get(fill.order_id)
        if order is not None:
            before = order.working_signed
            order.filled += fill.quantity
            done = fill.remaining_quantity <= 0.0 or is_dust(
                order.quantity - order.filled, order.quantity
            )
            if done:
                del self._open[fill.order_id]
                self._bump_pending(symbol, -before)
            else:
                self._bump_pending(symbol, order.working_signed - before)
        return self.on_fill(fill)

    @on(ORDER_EVENTS, phase=Phase.EXECUTION)
    def _handle_order_event(self, event: Any) -> Any:
        if event.strategy_id != self.name:
            return None
        self._woken = True
        if isinstance(event, OrderRejected):
            order = self._open.get(event.order_id)
            if event.request is RequestKind.SUBMIT:
                self._forget(event.order_id)
            elif event.request is RequestKind.CANCEL and order is not None and order.cancelling:
                order.cancelling = False  # still working: it counts again
                self._bump_pending(order.symbol, order.working_signed)
            return self.on_reject(event)
        if isinstance(event, OrderCancelled | OrderExpired):
            self._forget(event.order_id)
        elif isinstance(event, OrderUpdated):
            order = self._open.get(event.order_id)
            if order is not None:
                before = order.working_signed
                order.quantity, order.filled = event.quantity, event.filled_quantity
                if event.symbol != order.symbol:  # a symbol change moved it
                    self._bump_pending(order.symbol, -before)
                    order.symbol = event.symbol
                    before = 0.0
                self._bump_pending(order.symbol, order.working_signed - before)
        return None

    @on(CORPORATE_ACTIONS, phase=Phase.SESSION)
    def _handle_action(self, action: CorporateAction) -> Any:
        """A split restates the position and last price in post-split shares; a symbol
        change carries the position over. (Working orders follow from the broker's
        ``OrderUpdated``; cash in lieu and delistings arrive as fills.) Then
        :meth:`on_corporate_action`."""
        symbol = action.symbol
        self._woken = True
        if action.action is ActionKind.SPLIT:
            code = self._table.code_of(symbol)
            if code is not None:
                self._table["last_close"][code] /= action.ratio
            if symbol in self._qty:
                self._qty[symbol] *= action.ratio
                self._avg[symbol] /= action.ratio
                self._dirty.add(symbol)
        elif action.action is ActionKind.SYMBOL_CHANGE and symbol in self._qty:
            new = action.new_symbol
            self._qty[new] = self._qty.pop(symbol)
            self._avg[new] = self._avg.pop(symbol)
            self._held.discard(symbol)
            self._held.add(new)
            self._dirty.update((symbol, new))
        return self.on_corporate_action(action)

    def _forget(self, order_id: str) -> None:
        order = self._open.pop(order_id, None)
        if order is not None:
            self._bump_pending(order.symbol, -order.working_signed)

    @on(PORTFOLIO, phase=Phase.VALUATION)
    def _handle_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._cash = snapshot.cash
        self._equity = snapshot.equity

    @on(MARKET, phase=Phase.STRATEGY)
    def _handle_market(self, batch: MarketBatch) -> Any:
        frame = batch.frame
        codes = batch.symbol_codes()
        self._frame_codes = (frame, codes)
        table = self._table
        if not table.known:
            self._learn(_enum_symbols(self.name, frame))  # no session event told us
        table["last_close"][codes] = batch.numpy("close")
        if self._by_signal:
            if not (self._woken or _is_wake(batch)):
                return None
            self._woken = False
        members = self._members
        if members is not None:
            mask = members[codes]
            if not mask.all():  # only members' rows reach the strategy's code
                frame, codes = frame.filter(pl.Series(mask)), codes[mask]
                self._frame_codes = (frame, codes)
                batch = MarketBatch(
                    ts_event=batch.ts_event,
                    ts_init=batch.ts_init,
                    frame=frame,
                    context=batch.context,
                    codes=codes.astype(CODE_DTYPE).tobytes(),
                )
        return self._dispatch(batch)

    # quiet spans (see ml4t.backtest._span): asleep until the next wake
    span_handlers = frozenset(
        {"_handle_market", "_handle_snapshot", "_handle_span", "_handle_snapshots"}
    )

    @property
    def never_quiet(self) -> bool:
        """``wake = "bar"`` and this class's :meth:`quiet_until`: every timestamp needs
        its batch, so the feed need not ask (see :class:`~ml4t.backtest._span.SpanAware`)."""
        return not self._by_signal and type(self).quiet_until is StrategyBase.quiet_until

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        """Asleep (``wake = "signal"``, nothing since woke it) until the chunk's next
        wake: every timestamp before it is quiet."""
        wakes = chunk.wakes
        if not self._by_signal or self._woken or wakes is None or not self._table.known:
            return first - 1
        at = int(np.searchsorted(wakes, first))
        return min(last, int(wakes[at]) - 1) if at < wakes.size else last

    @on(MARKET_SPAN, phase=Phase.STRATEGY)
    def _handle_span(self, span: MarketSpan) -> None:
        batch = span.batch
        self._frame_codes = (batch.frame, batch.symbol_codes())
        span.scatter_last(self._table["last_close"], "close")

    @on(PORTFOLIO_SPAN, phase=Phase.VALUATION)
    def _handle_snapshots(self, span: PortfolioSpan) -> None:
        self._handle_snapshot(span.last)

    @on(SESSION, phase=Phase.SESSION)
    def _handle_session(self, event: SessionStarted | UniverseChanged) -> None:
        table = self._table
        if isinstance(event, SessionStarted):
            self._data_end_ns = event.end_ns
            self._learn(event.symbols)
            if event.members is not None:
                self._members = np.zeros(table.size, dtype=bool)
                self._members[[table.code[s] for s in event.members if s in table]] = True
                self._close_on_exit = event.universe_exit == "close"
            return
        self._woken = True
        self._learn([*table.symbols, *(s for s in event.added if s not in table)])
        members = self._members
        if members is None:
            return
        if members.size < table.size:
            members = self._members = np.append(members, np.zeros(table.size - members.size, bool))
        members[[table.code[s] for s in event.added]] = True
        members[[table.code[s] for s in event.removed if s in table]] = False
        if self._close_on_exit:
            for symbol in event.removed:
                if self.position(symbol) != 0.0:
                    self.close_position(symbol, reason="universe_exit")

    def _learn(self, symbols: list[str]) -> None:
        """Take the universe; the position arrays are rebuilt from the dicts by name."""
        if self._table.adopt(symbols) is not None:
            self._table["position"][:] = 0.0
            self._table["pending"][:] = 0.0
        self._dirty.update(self._qty, self._pending)

    def _dispatch(self, batch: MarketBatch) -> Any:
        raise NotImplementedError


class Strategy(StrategyBase):
    """Per-symbol API: override ``on_bar(bar)``, called once per symbol per timestamp
    in symbol order. ``on_bar`` may be async.

    One :class:`~ml4t.backtest._bar.Bar` per frame schema is reused for every row; its
    columns are descriptors that read lists converted once per batch and column, and
    ``bar.symbol`` comes from the batch's symbol codes, so a row costs the ``on_bar``
    call and the attributes it reads, with no polars call per row."""

    def __init__(self, name: str | None = None, *, params: Any = None) -> None:
        super().__init__(name, params=params)
        self._bars = Bars()
        self._async = inspect.iscoroutinefunction(self.on_bar)

    def on_bar(self, bar: Bar) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must override on_bar(bar)")

    def _dispatch(self, batch: MarketBatch) -> Any:
        frame = batch.frame
        bar = self._bars.point(batch, self._table.symbols, self.now)
        if self._async:
            return self._dispatch_async(bar, frame.height)
        on_bar = self.on_bar
        i = 0
        try:
            for i in range(frame.height):
                bar._i = i
                on_bar(bar)
        except Exception as exc:
            raise _bar_error(bar, exc) from exc
        return None

    async def _dispatch_async(self, bar: Bar, rows: int) -> None:
        try:
            for i in range(rows):
                bar._i = i
                await self.on_bar(bar)
        except Exception as exc:
            raise _bar_error(bar, exc) from exc


class BatchStrategy(StrategyBase):
    """Per-timestamp API: override ``on_timestamp(timestamp, batch, context)``; ``batch``
    has one row per symbol (symbol, OHLCV, signals, indicators), ``context`` the
    market-wide fields as of ``timestamp``. May be async.

    ``batch`` is a :class:`~ml4t.backtest._bar.BatchFrame`: a ``pl.DataFrame`` with
    ``batch.numpy("signal")``, a column as a zero-copy numpy view (no polars call), which
    with :meth:`batch_positions` vectorises a rule in numpy."""

    def on_timestamp(
        self, timestamp: datetime, batch: pl.DataFrame, context: dict[str, float | None]
    ) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must override on_timestamp(timestamp, batch, context)"
        )

    def _dispatch(self, batch: MarketBatch) -> Any:
        frame = BatchFrame.of(batch)
        self._frame_codes = (frame, self._frame_codes[1])
        return self.on_timestamp(self.now, frame, batch.context)


class StrategyError(ML4TError):
    """A strategy callback raised; the message names the symbol (the cause is the error)."""


def _is_wake(batch: MarketBatch) -> bool:
    """Whether ``batch`` is at a timestamp where some symbol's signals change (always,
    for a batch not cut from a feed's chunk)."""
    bound = batch.chunk()
    return bound is None or bound[0].is_wake(bound[1])


def _bar_error(bar: Bar, exc: Exception) -> StrategyError:
    return StrategyError(f"on_bar({bar['symbol']}) raised {type(exc).__name__}: {exc}")


def _enum_symbols(owner: str, frame: pl.DataFrame) -> list[str]:
    dtype = frame.get_column("symbol").dtype
    categories = list(dtype.categories) if isinstance(dtype, pl.Enum) else []
    if not categories:
        raise ConfigError(
            f"strategy {owner!r}: the market batch's symbol column must be a pl.Enum of "
            f"the universe, got {dtype}"
        )
    return categories
