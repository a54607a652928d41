"""The simulated broker: an exchange that matches open orders against each new bar.

Wiring (DESIGN §2):

- ``ORDERS_APPROVED`` at :attr:`Phase.ROUTING`: a submit is validated and accepted (or
  rejected with a reason); an accepted order may fill from the **next** bar of its
  symbol. Cancels and modifies of open orders take effect at once.
- ``MARKET`` at :attr:`Phase.EXECUTION`: before anyone else sees bar t, every eligible
  open order of a symbol in the batch is matched against the symbol's bar; fills go out
  on ``FILLS``, state changes on ``ORDER_EVENTS``.
- ``PORTFOLIO`` at :attr:`Phase.VALUATION`: the account's cash, for the
  ``insufficient_cash`` and ``submit_cash_check`` knobs (moved by the broker's own fills
  between snapshots).

Orders sharing a ``parent_id`` (a bracket's children, and any order a strategy joins to
them) form one-cancels-other groups matched together under ``exit_conflict``.

A malformed request, an unknown symbol or order id: an ``OrderRejected`` event, never an
exception. With no open orders a batch costs a few attribute reads; otherwise the work
is proportional to the symbols with open orders and their orders. The rules themselves
are the pure functions of :mod:`~ml4t.backtest.execution.fills` and
:mod:`~ml4t.backtest.execution._cash`, priced by :mod:`~ml4t.backtest.execution._pricing`;
this module is the order life cycle that applies them (matching, fills, brackets,
reduce-only orders, requests, state events), hence its length (under 800 lines: split
before it grows further).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import count
from typing import Any

from ml4t.backtest._accounting import QTY_EPSILON, is_dust
from ml4t.backtest._days import CalendarDays, DateDays, TradingDays
from ml4t.backtest._span import MARKET_SPAN, PORTFOLIO_SPAN, MarketSpan, PortfolioSpan
from ml4t.backtest._universe import Universe
from ml4t.backtest._validation import (
    INVALID_ORDER,
    invalid_amendment,
    invalid_cancel,
    invalid_modify,
)
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.events import (
    ActionKind,
    CancelOrder,
    ChunkColumns,
    CorporateAction,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PortfolioSnapshot,
    RequestKind,
    SessionStarted,
    SubmitOrder,
    TimeInForce,
    UniverseChanged,
)
from ml4t.backtest.execution._actions import ActionDesk
from ml4t.backtest.execution._admission import admit
from ml4t.backtest.execution._batch import BarPrices, BatchView
from ml4t.backtest.execution._cash import affordable, within_cash
from ml4t.backtest.execution._pricing import Pricer, conflict_kind
from ml4t.backtest.execution.config import BrokerConfig
from ml4t.backtest.execution.fills import (
    group_winner,
    trail_reference,
    volume_cap,
)
from ml4t.backtest.execution.orders import Order, OrderBook
from ml4t.backtest.topics import (
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    SESSION,
)

__all__ = ["SimulatedBroker"]

NAN = math.nan
SUBMIT, CANCEL, MODIFY = RequestKind.SUBMIT, RequestKind.CANCEL, RequestKind.MODIFY


class SimulatedBroker(Component):
    """Simulated exchange for backtests and paper replay.

    The run's calendar (``Context.calendar``, or ``calendar`` given here) makes a DAY
    order live for one session; without one, for one calendar date in ``timezone`` (the
    data's, UTC by default): see :mod:`~ml4t.backtest._days`. ``symbols``
    fixes the universe up front; by default it is learned from the first batch's
    ``symbol`` Enum.

    ``cash_account`` (the engine sets it from ``risk.account``): the account's cash may
    never go below zero, so a buy whose fill costs more than the cash left (a gap above
    the price it was approved at) is resized to what the cash affords, or cancelled under
    ``insufficient_cash: reject``; ``allow`` is refused for such an account. Nor may it
    go short: a sell fills at most what the strategy holds when it comes to fill, and is
    cancelled with the reason when nothing is left (a bracket child filled first).

    Orders marked ``reduce_only``, and every bracket child, may only reduce the
    strategy's position in their symbol (as this broker's fills built it): they are
    refused at submission when there is nothing to reduce, each fill is capped at the
    quantity held, a shrinking position shrinks them, and once the position is gone (or
    reversed) they are cancelled with the reason.
    """

    def __init__(
        self,
        config: BrokerConfig | None = None,
        *,
        calendar: Any = None,
        timezone: str | None = None,
        cash_account: bool = False,
        symbols: Iterable[str] | None = None,
        name: str = "broker",
    ) -> None:
        super().__init__(name)
        self.config = config = config if config is not None else BrokerConfig()
        self.slippage = config.slippage.build()
        self.commission = config.commission.build()
        limits = [x for x in (config.volume_limit, self.slippage.volume_limit) if x is not None]
        self._volume_limit: float | None = min(limits) if limits else None
        self._same_close = config.fill_timing == "same_close"
        self._conflict = config.exit_conflict
        rule = config.insufficient_cash
        if rule is None:
            rule = "resize" if cash_account else "allow"
        elif rule == "allow" and cash_account:
            raise ConfigError(
                "execution.insufficient_cash is 'allow' but risk.account is 'cash', whose "
                "cash may never go below zero; use 'resize' or 'reject' (or a margin account)"
            )
        self._cash_rule = rule
        self._strict_cash = cash_account
        self._tolerant_cash = rule == "resize" and not cash_account
        self._integer = config.share_rounding == "integer"
        self._by_acceptance = config.fill_order == "accepted"
        self._submit_check = config.submit_cash_check
        self._running = (-1, NAN)  # (ts, cash left by the orders accepted at ts)
        self._cash = NAN  # the account's cash: last snapshot, then moved by our own fills
        self._groups: dict[tuple[str, int, str], list[Order]] = {}
        self._seq = count(1)
        self._calendar = calendar
        self._days: TradingDays = (
            CalendarDays(calendar) if calendar is not None else DateDays(timezone)
        )
        self._held: dict[tuple[str, int], float] = {}  # (strategy, code) -> signed position
        self._universe = Universe(symbols) if symbols is not None else None
        self._aligned = False
        self.book = OrderBook()
        self._undated: list[Order] = []  # DAY orders waiting for their day (no calendar)
        self._batch = BatchView()  # the current batch, read lazily
        self._pricer = pricer = Pricer(config, self.slippage, self._batch, self._updated)
        self._rule_price = pricer.rule_price
        self._slipped = pricer.slipped
        self._ratchet = pricer.ratchet
        self._close_only = pricer.close_only
        self._trail_before = pricer.trail_before
        self._used: dict[int, float] = {}  # quantity filled per symbol code on this bar
        self._hard_to_borrow = config.borrow.load()[1]
        self._desk = ActionDesk(
            self.book, self._held, self._action_code, self._action_fill, self._cancel, self._updated
        )

    def on_start(self) -> None:
        calendar = self.context.calendar
        if self._calendar is None and calendar is not None:
            self._days = CalendarDays(calendar)

    # ------------------------------------------------------------------ market data

    @on(MARKET, phase=Phase.EXECUTION)
    def _on_market(self, batch: MarketBatch) -> None:
        ts = batch.ts_event
        if not self._aligned:  # no session event (a graph without a feed)
            self._align(Universe.of_frame(batch.frame).symbols)
        self._batch.show(batch, len(self._universe or ()))
        if self._used:
            self._used.clear()
        book = self.book
        if self._undated:
            self._date_day_orders(ts)
        if book.expiries:
            # DAY orders of an earlier trading day than this bar's expire before it
            day_end = self._days.bar_day_end(ts)
            if day_end is not None and book.expiries[0][0] < day_end:
                self._expire(book.pop_expired(day_end, inclusive=False), ts)
        if book.open_by_code:
            self._match_batch(ts)
        if book.expiries and book.expiries[0][0] <= ts:
            self._expire(book.pop_expired(ts, inclusive=True), ts)

    # quiet spans (see ml4t.backtest._span): with no working order, only the latest bar
    span_handlers = frozenset({"_on_market", "_on_snapshot", "_on_span", "_on_snapshots"})

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        book = self.book
        quiet = self._aligned and not (book.open_by_code or book.expiries or self._undated)
        return last if quiet else first - 1

    @on(MARKET_SPAN, phase=Phase.EXECUTION)
    def _on_span(self, span: MarketSpan) -> None:
        self._batch.show(span.batch, len(self._universe or ()))
        if self._used:
            self._used.clear()

    @on(PORTFOLIO_SPAN, phase=Phase.VALUATION)
    def _on_snapshots(self, span: PortfolioSpan) -> None:
        self._cash = span.last.cash

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        if isinstance(event, SessionStarted):
            self._align(event.symbols)
        else:
            known = self._universe.symbols if self._universe is not None else []
            self._align([*known, *(s for s in event.added if s not in known)])

    @on(CORPORATE_ACTIONS, phase=Phase.SESSION)
    def _on_action(self, action: CorporateAction) -> None:
        """Restate orders and positions for a split or symbol change; close them for a
        delisting (see :mod:`~ml4t.backtest.execution._actions`)."""
        self._desk.apply(action)
        if action.action is ActionKind.SYMBOL_CHANGE and self._groups:
            old, new = self._action_code(action.symbol), self._action_code(action.new_symbol)
            for key in [k for k in self._groups if k[1] == old]:
                self._groups[(key[0], new, key[2])] = self._groups.pop(key)

    def _action_code(self, symbol: str) -> int:
        if self._universe is None:
            self._align([])
        assert self._universe is not None
        return self._universe.add(symbol)

    def _action_fill(self, fill: OrderFilled) -> None:
        if not math.isnan(self._cash):
            self._cash -= fill.side.sign * fill.quantity * fill.price
        self.publish(FILLS, fill)

    def _align(self, symbols: list[str]) -> None:
        """Adopt the run's universe (in code order); one given up front must list the
        same symbols in the same order (order codes are array indices), and a universe
        only grows."""
        self._aligned = True
        given = self._universe
        if given is not None and given.symbols != symbols[: len(given)]:
            raise ConfigError(
                f"the broker was given symbols {given.symbols[:5]}... that do not match the "
                f"run's universe {symbols[:5]}... (the session's symbols, in code order); "
                "pass the run's universe or none"
            )
        if given is None:
            self._universe = Universe(symbols)
        else:
            for symbol in symbols[len(given) :]:
                given.add(symbol)

    def _match_batch(self, ts: int) -> None:
        """Match the symbols whose open orders this bar may affect: every open order's
        window is tested against the batch's lows and highs in one vectorised pass, and
        only the symbols that pass get Python-level matching."""
        view = self._batch
        low, high = view.extremes()
        codes = self.book.candidates(low, high).tolist()
        open_by_code = self.book.open_by_code
        if self._by_acceptance and len(codes) > 1:
            bars = {code: view.bar(code) for code in codes}
            orders = sorted(
                (o for code, bar in bars.items() if bar is not None for o in open_by_code[code]),
                key=lambda o: o.seq,
            )
            self._match_orders(orders, bars, ts)  # type: ignore[arg-type]
            return
        for code in codes:
            bar = view.bar(code)
            if bar is not None:
                self._match_orders(tuple(open_by_code.get(code, ())), {code: bar}, ts)

    # ------------------------------------------------------------------ matching

    def _match_orders(self, orders: Sequence[Order], bars: dict[int, BarPrices], ts: int) -> None:
        book = self.book
        done: set[str] = set()
        for order in orders:
            if not order.is_open or order.accepted_ns >= ts or order.order_id in done:
                continue
            bar = bars[order.code]
            members = self._live_group(order, ts)
            if members is not None:
                done.update(m.order_id for m in members)
                self._match_group(members, bar, ts)
                for member in members:
                    book.refresh(member)
            else:
                self._match_order(order, self._rule_price(order, bar, ts), bar, ts)
                book.refresh(order)

    def _live_group(self, order: Order, ts: int) -> list[Order] | None:
        """The open members of ``order``'s one-cancels-other group that may trade on
        this bar, if there are at least two."""
        group = order.group
        if group is None:
            return None
        members = [m for m in group if m.is_open and m.accepted_ns < ts]
        return members if len(members) > 1 else None

    def _match_order(self, order: Order, price: float, bar: BarPrices, ts: int) -> None:
        """Fill ``order`` at rule ``price`` (NaN: no fill) as far as volume allows, then
        apply its time in force."""
        if not math.isnan(price):
            remaining = order.remaining
            used = self._used.get(order.code, 0.0)
            qty = min(remaining, volume_cap(self._volume_limit, bar.v, used))
            if order.tif is TimeInForce.FOK and qty < remaining * (1.0 - QTY_EPSILON):
                self._cancel(
                    order,
                    ts,
                    f"fill or kill: the bar allows {qty:g} of the {remaining:g} remaining",
                )
                return
            if qty > remaining * QTY_EPSILON:
                self._fill(order, qty, price, bar, ts)
        elif order.order_type is OrderType.TRAILING_STOP and not self._trail_before:
            self._ratchet(order, bar, ts)
        if order.is_open and order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            what = "immediate or cancel" if order.tif is TimeInForce.IOC else "fill or kill"
            self._cancel(order, ts, f"{what}: {order.remaining:g} unfilled after one bar")

    def _match_group(self, members: list[Order], bar: BarPrices, ts: int) -> None:
        """One-cancels-other members (a bracket's children, orders sharing a parent_id)
        on one bar: at most one fills, chosen by ``exit_conflict``
        (:func:`~ml4t.backtest.execution.fills.group_winner`)."""
        was = [m.triggered for m in members]
        kinds = [conflict_kind(m) for m in members]
        prices = [self._rule_price(m, bar, ts) for m in members]
        o = bar.c if self._close_only else bar.o
        win = group_winner(members[0].sign, kinds, prices, o, self._conflict)
        for i, member in enumerate(members):
            if i != win:
                member.triggered = was[i]  # did not win this bar: not triggered
        if win is not None:
            self._match_order(members[win], prices[win], bar, ts)
        if not self._trail_before:
            for i, member in enumerate(members):
                if i != win and member.is_open and member.order_type is OrderType.TRAILING_STOP:
                    self._ratchet(member, bar, ts)

    # ------------------------------------------------------------------ fills

    def _fill(self, order: Order, qty: float, rule_price: float, bar: BarPrices, ts: int) -> None:
        sign = order.sign
        if order.reduce_only or (sign < 0 and self._strict_cash):
            # a reduce-only order, or any sell in a cash account (which cannot sell short:
            # a sell approved while shares were held may meet a position that a bracket
            # child, filled earlier on this bar, has already closed)
            held = self._held.get((order.strategy_id, order.code), 0.0)
            if held * sign >= 0.0 or is_dust(held, order.quantity):
                why = _nothing_to_reduce(order, held) if order.reduce_only else _no_short(held)
                self._cancel(order, ts, why)
                return
            if qty > abs(held):
                qty = abs(held)
        price = self._slipped(order, qty, rule_price, bar)
        commission = self.commission.commission(
            qty, price, order.filled, order.notional, order.commission
        )
        cash = self._cash
        if (
            self._cash_rule != "allow"
            and sign > 0
            and not within_cash(
                qty,
                price,
                commission,
                cash,
                tolerant=self._cash_rule == "resize" and not self._strict_cash,
            )
        ):
            cost = qty * price + commission
            if self._cash_rule == "resize":
                qty = affordable(
                    qty,
                    cash,
                    lambda q: self._slipped(order, q, rule_price, bar),
                    lambda q, p: self.commission.commission(
                        q, p, order.filled, order.notional, order.commission
                    ),
                    integer=self._integer,
                    tolerant=not self._strict_cash,
                )
            if self._cash_rule == "reject" or qty <= 0.0:
                self._cancel(
                    order,
                    ts,
                    f"insufficient cash: filling {order.remaining:g} at {price:.6g} costs "
                    f"{cost:,.2f} with commission but cash is {cash:,.2f}",
                )
                return
            price = self._slipped(order, qty, rule_price, bar)
            commission = self.commission.commission(
                qty, price, order.filled, order.notional, order.commission
            )
            order.quantity = order.filled + qty  # resized: what the cash affords, then done
        slippage = (price - rule_price) * sign * qty + 0.0  # no negative zero
        order.filled += qty
        order.notional += qty * price
        order.commission += commission
        order.fills += 1
        remaining = order.quantity - order.filled
        if remaining <= order.quantity * QTY_EPSILON:
            order.filled = order.quantity
            remaining = 0.0
        self._used[order.code] = self._used.get(order.code, 0.0) + qty
        if not math.isnan(cash):
            self._cash = cash - (qty * sign * price + commission)
        key = (order.strategy_id, order.code)
        held = self._held.get(key, 0.0) + sign * qty
        if is_dust(held, qty):
            held = 0.0
        self._held[key] = held
        self.publish(
            FILLS,
            OrderFilled(
                ts_event=ts,
                ts_init=ts,
                fill_id=f"{order.order_id}.{order.fills}",
                order_id=order.order_id,
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                side=order.side,
                quantity=qty,
                price=price,
                commission=commission,
                slippage=slippage,
                remaining_quantity=remaining,
                reason=order.reason,
            ),
        )
        if remaining == 0.0:
            self._close(order, OrderStatus.FILLED, ts)
        else:
            order.set_status(ts, OrderStatus.PARTIALLY_FILLED)
        if order.is_bracket:
            self._protect(order, qty, ts)
        for other in order.group or ():
            if other is order or not other.is_open:
                continue
            if remaining == 0.0:
                self._cancel(other, ts, f"one-cancels-other: {order.order_id} filled")
            else:
                other.quantity = other.filled + remaining
                self._updated(other, ts)
        self._fit_reducing(order.strategy_id, order.code, held, ts)

    def _fit_reducing(self, strategy_id: str, code: int, held: float, ts: int) -> None:
        """After a fill moved the position to ``held``: cancel the strategy's open
        reduce-only orders in the symbol that have nothing left to reduce, and shrink
        those larger than the position."""
        orders = self.book.open_by_code.get(code)
        if not orders:
            return
        for other in tuple(orders):
            if not (other.reduce_only and other.is_open and other.strategy_id == strategy_id):
                continue
            if held * other.sign >= 0.0:
                self._cancel(other, ts, _nothing_to_reduce(other, held))
            elif other.remaining > abs(held) * (1.0 + QTY_EPSILON):
                other.quantity = other.filled + abs(held)
                self.book.refresh(other)
                self._updated(other, ts)

    @on(PORTFOLIO, phase=Phase.VALUATION)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        self._cash = snapshot.cash

    def _protect(self, parent: Order, qty: float, ts: int) -> None:
        """Place (first fill) or grow (later fills) a filled entry's bracket children."""
        ids = [
            f"{parent.order_id}.sl" if parent.stop_loss is not None else None,
            f"{parent.order_id}.tp" if parent.take_profit is not None else None,
        ]
        existing = [self.book.get(i) for i in ids if i is not None]
        if any(child is not None for child in existing):
            for child in existing:
                if child is not None and child.is_open:
                    child.quantity += qty
                    self._updated(child, ts)
            return
        side = OrderSide.SELL if parent.sign > 0 else OrderSide.BUY
        children: list[Order] = []
        for child_id, kind, level, reason in (
            (ids[0], OrderType.STOP, parent.stop_loss, "stop_loss"),
            (ids[1], OrderType.LIMIT, parent.take_profit, "take_profit"),
        ):
            if child_id is None:
                continue
            child = Order(
                order_id=child_id,
                strategy_id=parent.strategy_id,
                symbol=parent.symbol,
                code=parent.code,
                side=side,
                quantity=parent.filled,
                order_type=kind,
                accepted_ns=ts,
                stop_price=level if kind is OrderType.STOP else None,
                limit_price=level if kind is OrderType.LIMIT else None,
                parent_id=parent.order_id,
                reduce_only=True,
                reason=reason,
            )
            children.append(child)
        for child in children:
            self._accept(child, ts)

    # ------------------------------------------------------------------ requests

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if isinstance(request, SubmitOrder):
            self._submit(request)
        elif isinstance(request, CancelOrder):
            self._cancel_request(request)
        else:
            self._modify(request)

    def _submit(self, request: SubmitOrder) -> None:
        ts = self.now_ns()
        code = admit(
            request,
            universe=self._universe,
            known_ids=self.book.orders,
            held=self._held,
            hard_to_borrow=self._hard_to_borrow,
        )
        if isinstance(code, tuple):
            rule, reason = code
            self._reject(request.order_id, request.strategy_id, request.symbol, rule, reason)
            return
        if self._submit_check and not self._cash_at_submit(request, code, ts):
            return
        order = Order.from_request(request, code, ts)
        self._accept(order, ts)
        if self._same_close and order.order_type is OrderType.MARKET and self._batch.ts == ts:
            bar = self._batch.bar(code)
            if bar is not None:
                price = bar.c
                self._match_order(order, price, bar, ts)

    def _cash_at_submit(self, request: SubmitOrder, code: int, ts: int) -> bool:
        """``submit_cash_check`` (backtrader's ``checksubmit``): the orders accepted at
        ``ts`` are costed in turn at the bar's close (a limit or stop at its price), with
        commission, against the cash after this bar's fills; one that would leave the
        running balance negative is rejected, and its cost stays in the balance."""
        bar = self._batch.bar(code) if self._batch.ts == ts else None
        if bar is None or math.isnan(self._cash):
            return True
        if self._running[0] != ts:
            self._running = (ts, self._cash)
        price = request.limit_price or request.stop_price or bar.c
        qty = request.quantity
        commission = self.commission.commission(qty, price, 0.0, 0.0, 0.0)
        left = self._running[1] - (qty * request.side.sign * price + commission)
        self._running = (ts, left)
        if left >= 0.0:
            return True
        self._reject(
            request.order_id,
            request.strategy_id,
            request.symbol,
            "insufficient_cash",
            f"insufficient cash at submission: {request.order_id} costs "
            f"{qty * price + commission:,.2f} at {price:.6g} and leaves {left:,.2f} of the "
            "cash after this bar's accepted orders",
        )
        return False

    def _accept(self, order: Order, ts: int) -> None:
        order.seq = next(self._seq)
        self.book.add(order)
        if order.parent_id is not None:
            key = (order.strategy_id, order.code, order.parent_id)
            group = self._groups.setdefault(key, [])
            group.append(order)
            order.group = group
        self.publish(
            ORDER_EVENTS,
            OrderAccepted(
                ts_event=ts,
                ts_init=ts,
                order_id=order.order_id,
                strategy_id=order.strategy_id,
                symbol=order.symbol,
            ),
        )
        if order.tif is TimeInForce.DAY:
            day_end = self._days.order_day_end(ts)
            if day_end is not None:
                self.book.schedule_expiry(order, day_end)
            else:
                self._undated.append(order)

    def _date_day_orders(self, ts: int) -> None:
        """No calendar: a DAY order is of the trading day of the first bar after it."""
        day_end = self._days.bar_day_end(ts)
        waiting: list[Order] = []
        for order in self._undated:
            if not order.is_open:
                continue
            if order.accepted_ns < ts and day_end is not None:
                self.book.schedule_expiry(order, day_end)
            else:
                waiting.append(order)
        self._undated = waiting

    def _cancel_request(self, request: CancelOrder) -> None:
        problem = invalid_cancel(request)
        if problem is not None:
            self._reject(request.order_id, request.strategy_id, "", INVALID_ORDER, problem, CANCEL)
            return
        order = self._known_open(request.order_id, request.strategy_id, "cancel")
        if order is not None:
            self._cancel(order, self.now_ns(), "cancelled by request")

    def _modify(self, request: ModifyOrder) -> None:
        problem = invalid_modify(request)
        if problem is not None:
            self._reject(request.order_id, request.strategy_id, "", INVALID_ORDER, problem, MODIFY)
            return
        order = self._known_open(request.order_id, request.strategy_id, "modify")
        if order is None:
            return
        kind = order.order_type
        problem = invalid_amendment(request, kind, order.filled)
        if problem is not None:
            self._reject(
                order.order_id, request.strategy_id, order.symbol, INVALID_ORDER, problem, MODIFY
            )
            return
        if request.quantity is not None:
            order.quantity = float(request.quantity)
        if request.limit_price is not None:
            order.limit_price = request.limit_price
        if request.stop_price is not None:
            order.stop_price = request.stop_price
            if kind is OrderType.TRAILING_STOP:
                order.extreme = trail_reference(
                    order.sign, request.stop_price, order.trail_amount, order.trail_percent
                )
        self.book.refresh(order)
        self._updated(order, self.now_ns())

    def _known_open(self, order_id: str, strategy_id: str, what: str) -> Order | None:
        kind = CANCEL if what == "cancel" else MODIFY
        order = self.book.get(order_id)
        if order is None:
            self._reject(
                order_id,
                strategy_id,
                "",
                "unknown_order",
                f"cannot {what} order {order_id!r}: the broker has no such order",
                kind,
            )
            return None
        if order.strategy_id != strategy_id:
            self._reject(
                order_id,
                strategy_id,
                order.symbol,
                "wrong_strategy",
                f"cannot {what} order {order_id!r}: it belongs to strategy "
                f"{order.strategy_id!r}, not {strategy_id!r}",
                kind,
            )
            return None
        if not order.is_open:
            self._reject(
                order_id,
                strategy_id,
                order.symbol,
                "order_closed",
                f"cannot {what} order {order_id!r}: it is already {order.status.value}",
                kind,
            )
            return None
        return order

    # ------------------------------------------------------------------ state events

    def _close(self, order: Order, status: OrderStatus, ts: int) -> None:
        """Close ``order`` in the book; forget its group once every member is closed."""
        self.book.close(order, status, ts)
        group = order.group
        if group is not None and not any(m.is_open for m in group):
            self._groups.pop((order.strategy_id, order.code, order.parent_id or ""), None)

    def _cancel(self, order: Order, ts: int, reason: str) -> None:
        self._close(order, OrderStatus.CANCELLED, ts)
        self.publish(
            ORDER_EVENTS,
            OrderCancelled(
                ts_event=ts,
                ts_init=ts,
                order_id=order.order_id,
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                filled_quantity=order.filled,
                reason=reason,
            ),
        )

    def _expire(self, orders: list[Order], ts: int) -> None:
        for order in orders:
            self._close(order, OrderStatus.EXPIRED, ts)
            self.publish(
                ORDER_EVENTS,
                OrderExpired(
                    ts_event=ts,
                    ts_init=ts,
                    order_id=order.order_id,
                    strategy_id=order.strategy_id,
                    symbol=order.symbol,
                    filled_quantity=order.filled,
                ),
            )

    def _updated(self, order: Order, ts: int) -> None:
        self.publish(
            ORDER_EVENTS,
            OrderUpdated(
                ts_event=ts,
                ts_init=ts,
                order_id=order.order_id,
                strategy_id=order.strategy_id,
                symbol=order.symbol,
                status=order.status,
                quantity=order.quantity,
                filled_quantity=order.filled,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                triggered=order.triggered,
            ),
        )

    def _reject(
        self,
        order_id: str,
        strategy_id: str,
        symbol: str,
        rule: str,
        reason: str,
        request: RequestKind = SUBMIT,
    ) -> None:
        ts = self.now_ns()
        self.publish(
            ORDER_EVENTS,
            OrderRejected(
                ts_event=ts,
                ts_init=ts,
                order_id=_text(order_id),
                strategy_id=_text(strategy_id),
                symbol=_text(symbol),
                rule=rule,
                reason=reason,
                request=request,
            ),
        )


def _text(value: object) -> str:
    """An id as text for an event, whatever a malformed request carried."""
    return value if isinstance(value, str) else repr(value)


def _no_short(held: float) -> str:
    return f"a cash account cannot sell short: {held:+g} held when the sell came to fill"


def _nothing_to_reduce(order: Order, held: float) -> str:
    state = "flat" if held == 0.0 else f"{held:+g} (the same side as the order)"
    return (
        f"reduce-only: {order.order_id} would not reduce the position in {order.symbol}, "
        f"which is {state}"
    )
