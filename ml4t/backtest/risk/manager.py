"""The risk manager component: approves or rejects every order request.

Wiring (DESIGN §2): ``ORDER_REQUESTS`` at :attr:`Phase.RISK`. An approved request is
re-published unchanged on ``ORDERS_APPROVED``; a refused one becomes an
``OrderRejected(rule=..., reason=...)`` on ``ORDER_EVENTS``, which the strategy and the
recorder see. Cancels always pass (they only lower risk); modifies are checked as the
order they would become.

Requests are applied in the order the strategy made them: an approved cancel releases
its order's reservation at once, and an approved modify re-reserves the order as it will
be, so a cancel-and-replace on one bar is judged against the account without the old
order. Every field of a request is checked first (a plugin may publish one built by
hand); a refused cancel or modify (``OrderRejected.request``) leaves its order as it was.

Its :class:`~ml4t.backtest.risk.view.RiskView` is fed by events only, each at a phase
before :attr:`Phase.RISK` so the view is current when orders arrive: ``FILLS``,
``POSITIONS`` and ``ORDER_EVENTS`` at EXECUTION, ``MARKET`` and ``PORTFOLIO`` at
VALUATION.

The kill switch (``risk.kill_switch``, :mod:`~ml4t.backtest.risk.killswitch`) is checked
on every portfolio snapshot and every error (a rejection on ``ORDER_EVENTS``, a failure
on ``ERRORS``); a :class:`~ml4t.backtest.events.StopTrading` on ``TRADING_CONTROL``
(an operator's halt, a session stopping) takes the same path. Stopping cancels every
open order, closes every position at market for ``flatten`` (both published straight on
``ORDERS_APPROVED``), publishes ``TradingStopped`` on ``TRADING_STOPPED`` and refuses
every new order and modify from then on (rule ``trading_stopped``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import msgspec

from ml4t.backtest._days import CalendarDays, DateDays
from ml4t.backtest._span import MARKET_SPAN, PORTFOLIO_SPAN, MarketSpan, PortfolioSpan
from ml4t.backtest._time import from_ns
from ml4t.backtest._universe import Universe
from ml4t.backtest._validation import (
    INVALID_ORDER,
    invalid_amendment,
    invalid_cancel,
    invalid_modify,
    invalid_submit,
)
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import (
    ActionKind,
    CancelOrder,
    ChunkColumns,
    ComponentFailed,
    CorporateAction,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderType,
    OrderUpdated,
    PortfolioSnapshot,
    PositionChanged,
    RequestKind,
    SessionStarted,
    StopAction,
    StopTrading,
    SubmitOrder,
    TradingStopped,
    UniverseChanged,
)
from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.risk.killswitch import ErrorWindow, StopBook, check_kill_switch
from ml4t.backtest.risk.rules import RULES, Rejection, Rule, check_valid, evaluate, impact
from ml4t.backtest.risk.view import CostEstimate, Reservation, RiskView
from ml4t.backtest.topics import (
    CORPORATE_ACTIONS,
    ERRORS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    POSITIONS,
    SESSION,
    TRADING_CONTROL,
    TRADING_STOPPED,
)

__all__ = ["RiskManager"]


class RiskManager(Component):
    """Pre-trade checks between strategies and the broker.

    ``rules`` replaces the default rule sequence (each a pure function of (request,
    view, config) returning None or a :class:`~ml4t.backtest.risk.rules.Rejection`); the
    plugin rules the config names (``config.rules``) run after it either way.
    ``costs`` estimates an order's commission and slippage in money (the engine builds
    it from the broker's models), so a cash account's buying power covers them.
    ``timezone`` (the data's) dates the daily-loss day when the run has no calendar.
    """

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        rules: Iterable[Rule] | None = None,
        symbols: Iterable[str] | None = None,
        costs: CostEstimate | None = None,
        timezone: str | None = None,
        name: str = "risk",
    ) -> None:
        super().__init__(name)
        self.config = config if config is not None else RiskConfig()
        standard = tuple(rules) if rules is not None else RULES
        self.rules: tuple[Rule, ...] = standard + tuple(r.build() for r in self.config.rules)
        self._judging: tuple[tuple[Rule, ...], tuple[Rule, ...]] = ((), ())
        self.view = RiskView(Universe(symbols) if symbols is not None else None, costs=costs)
        self._members: set[str] | None = None  # the point-in-time universe, if the data has one
        self.view.days = DateDays(timezone)
        self.kill_switch = self.config.kill_switch
        window = self.kill_switch.error_window if self.kill_switch is not None else 60.0
        self.errors = ErrorWindow(window)
        self.stop_book = StopBook()
        self.stopped: TradingStopped | None = None  # once trading was stopped

    def on_start(self) -> None:
        calendar = self.context.calendar
        if calendar is not None:  # the daily-loss day is the session, as for DAY orders
            self.view.days = CalendarDays(calendar)

    # ------------------------------------------------------------------ requests

    @on(ORDER_REQUESTS, phase=Phase.RISK)
    def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        rejection: Rejection | None
        if self.stopped is not None and not isinstance(request, CancelOrder):
            self._reject(request, self._stopped_rejection())
            return
        if isinstance(request, SubmitOrder):
            problem = invalid_submit(request)
            if problem is not None:
                rejection = Rejection(INVALID_ORDER, problem)
            elif request.order_id in self.view.orders:
                rejection = Rejection(
                    "duplicate_order_id",
                    f"order id {request.order_id!r} is already used by an open order; give "
                    "every order a new id",
                )
            else:
                rejection = self._membership(request) or evaluate(
                    request, self.view, self.config, self._submit_rules()
                )
            if rejection is None:
                self._reserve(request)
        elif isinstance(request, CancelOrder):
            rejection = self._check_cancel(request)
        elif isinstance(request, ModifyOrder):
            rejection = self._check_modify(request)
        else:
            rejection = Rejection(INVALID_ORDER, f"not an order request: {type(request).__name__}")
        if rejection is not None:
            self._reject(request, rejection)
            return
        if isinstance(request, SubmitOrder):
            self.stop_book.on_approved(request)
        self.publish(ORDERS_APPROVED, request)

    def _submit_rules(self) -> tuple[Rule, ...]:
        """``rules`` without :func:`check_valid`: a request is found well-formed before
        the rules are asked (kept until ``rules`` is replaced)."""
        source, judging = self._judging
        if source is not self.rules:
            judging = tuple(r for r in self.rules if r is not check_valid)
            self._judging = (self.rules, judging)
        return judging

    def _check_cancel(self, request: CancelOrder) -> Rejection | None:
        """A well-formed cancel of the requester's own order passes, and releases the
        order's reservation now: the strategy's next request is judged without it."""
        problem = invalid_cancel(request)
        if problem is not None:
            return Rejection(INVALID_ORDER, problem)
        tracked = self.view.orders.get(request.order_id)
        if tracked is None:
            return None  # not an order this manager approved: the broker is the judge
        owner = _owner_problem(tracked, request)
        if owner is not None:
            return owner
        self.view.release(request.order_id)
        return None

    def _reserve(self, request: SubmitOrder) -> None:
        view = self.view
        code = view.code(request.symbol)
        if code is None:
            code = view.ensure_code(request.symbol)
        imp = impact(request, view, self.config)
        order = view.open_order(request, code, imp.price, float(request.quantity), not imp.reducing)
        view.reserve(request.order_id, order)

    def _check_modify(self, request: ModifyOrder) -> Rejection | None:
        """A modify is judged as the order it would become; once approved, that order is
        what stays reserved."""
        problem = invalid_modify(request)
        if problem is not None:
            return Rejection(INVALID_ORDER, problem)
        view = self.view
        tracked = view.orders.get(request.order_id)
        if tracked is None:
            return None  # not an order this manager approved (a bracket child, say)
        owner = _owner_problem(tracked, request)
        if owner is not None:
            return owner
        filled = tracked.request.quantity - tracked.remaining
        problem = invalid_amendment(request, tracked.request.order_type, filled)
        if problem is not None:
            return Rejection(INVALID_ORDER, problem)
        remaining = tracked.remaining
        if request.quantity is not None:
            remaining = request.quantity - filled
        changes: dict[str, float] = {"quantity": remaining}
        if request.limit_price is not None and tracked.request.limit_price is not None:
            changes["limit_price"] = request.limit_price
        if request.stop_price is not None and tracked.request.stop_price is not None:
            changes["stop_price"] = request.stop_price
        proposed = msgspec.structs.replace(tracked.request, **changes)
        saved = tracked.remaining
        view.release(request.order_id)  # judge the new order without its old self
        rejection = evaluate(proposed, view, self.config, self.rules)
        if rejection is not None:
            tracked.remaining = saved
            view.reserve(request.order_id, tracked)
            return rejection
        whole = msgspec.structs.replace(proposed, quantity=filled + remaining)
        price = view.estimate_price(whole, tracked.code, self.config.market_price_buffer)
        if math.isnan(price):
            price = tracked.price
        view.reserve(
            request.order_id,
            view.open_order(whole, tracked.code, price, remaining, tracked.increasing),
        )
        return None

    def _reject(
        self, request: SubmitOrder | CancelOrder | ModifyOrder, rejection: Rejection
    ) -> None:
        ts = self.now_ns()
        order_id = _text(getattr(request, "order_id", ""))
        symbol = getattr(request, "symbol", "")
        if not symbol:
            tracked = self.view.orders.get(order_id)
            symbol = tracked.request.symbol if tracked is not None else ""
        if isinstance(request, SubmitOrder):
            kind = RequestKind.SUBMIT
        else:
            kind = RequestKind.CANCEL if isinstance(request, CancelOrder) else RequestKind.MODIFY
        self.log.debug("order_rejected", order_id=order_id, rule=rejection.rule)
        self.publish(
            ORDER_EVENTS,
            OrderRejected(
                ts_event=ts,
                ts_init=ts,
                order_id=order_id,
                strategy_id=_text(getattr(request, "strategy_id", "")),
                symbol=_text(symbol),
                rule=rejection.rule,
                reason=rejection.reason,
                request=kind,
            ),
        )

    # ------------------------------------------------------------------ the view

    @on(MARKET, phase=Phase.VALUATION)
    def _on_market(self, batch: MarketBatch) -> None:
        view = self.view
        table = view.table
        if not table.known:  # no session event (a graph without a feed)
            view.adopt(Universe.of_frame(batch.frame).symbols)
        codes = batch.symbol_codes()
        table["price"][codes] = batch.numpy("close")
        if view.costs is not None:
            table["volume"][codes] = batch.numpy("volume")

    # quiet spans (see ml4t.backtest._span): prices, volumes and equity, at once
    span_handlers = frozenset({"_on_market", "_on_snapshot", "_on_span", "_on_snapshots"})

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        quiet = self.kill_switch is None and self.view.table.known
        return last if quiet else first - 1

    @on(MARKET_SPAN, phase=Phase.VALUATION)
    def _on_span(self, span: MarketSpan) -> None:
        view = self.view
        span.scatter_last(view.table["price"], "close")
        if view.costs is not None:
            span.scatter_last(view.table["volume"], "volume")

    @on(PORTFOLIO_SPAN, phase=Phase.VALUATION)
    def _on_snapshots(self, span: PortfolioSpan) -> None:
        if self.kill_switch is not None or not self.view.observe_span(span.times, span.equity()):
            for snapshot in span.snapshots:  # as they come one by one
                self._on_snapshot(snapshot)
            return
        last, view = span.last, self.view
        view.cash = last.cash
        view.gross_exposure = last.gross_exposure
        view.net_exposure = last.net_exposure

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        view = self.view
        if isinstance(event, SessionStarted):
            view.adopt(event.symbols)
            if event.members is not None:
                self._members = set(event.members)
        else:
            view.adopt([*view.table.symbols, *(s for s in event.added if s not in view.table)])
            if self._members is not None:
                self._members.difference_update(event.removed)
                self._members.update(event.added)

    def _membership(self, request: SubmitOrder) -> Rejection | None:
        """With a point-in-time universe, an order in a symbol outside it may only
        reduce the position (a holding kept after its symbol left)."""
        members = self._members
        if members is None or request.symbol in members:
            return None
        code = self.view.code(request.symbol)
        held = float(self.view.position[code]) if code is not None else 0.0
        if held * request.side.sign < 0 and request.quantity <= abs(held) * (1 + 1e-9):
            return None
        return Rejection(
            "not_in_universe",
            f"{request.symbol} is not in the universe (data.universe) at this time; an order "
            f"may only reduce a holding in it ({held:+g} held)",
        )

    @on(CORPORATE_ACTIONS, phase=Phase.SESSION)
    def _on_action(self, action: CorporateAction) -> None:
        """A split restates the last price and volume the estimates use; positions and
        orders follow from the portfolio's and the broker's own announcements."""
        if action.action is ActionKind.SPLIT:
            code = self.view.ensure_code(action.symbol)
            self.view.price[code] /= action.ratio
            self.view.volume[code] *= action.ratio
        self.stop_book.on_action(action)

    @on(PORTFOLIO, phase=Phase.VALUATION)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        view = self.view
        view.cash = snapshot.cash
        view.gross_exposure = snapshot.gross_exposure
        view.net_exposure = snapshot.net_exposure
        view.observe_equity(snapshot.ts_event, snapshot.equity)
        if self.kill_switch is not None and self.stopped is None:
            self._check_kill_switch(self.errors.count(self.now_ns()))

    @on(POSITIONS, phase=Phase.EXECUTION)
    def _on_position(self, event: PositionChanged) -> None:
        view = self.view
        code = view.code(event.symbol)
        if code is None:
            code = view.ensure_code(event.symbol)
        view.set_position(code, event.quantity)

    @on(FILLS, phase=Phase.EXECUTION)
    def _on_fill(self, fill: OrderFilled) -> None:
        self.view.release(fill.order_id, fill.quantity)
        self.stop_book.on_fill(fill)

    @on(ORDER_EVENTS, phase=Phase.EXECUTION)
    def _on_order_event(
        self,
        event: OrderAccepted | OrderRejected | OrderCancelled | OrderExpired | OrderUpdated,
    ) -> None:
        self.stop_book.on_order_event(event)
        if isinstance(event, OrderRejected):
            self._on_error()
        view = self.view
        order_id = event.order_id
        if order_id not in view.orders or isinstance(event, OrderAccepted):
            return
        if isinstance(event, OrderRejected):
            if event.request is RequestKind.SUBMIT:
                view.release(order_id)
            return  # a refused cancel or modify leaves the order as it was
        if isinstance(event, OrderCancelled | OrderExpired):
            view.release(order_id)
            return
        self._update(event)

    def _update(self, event: OrderUpdated) -> None:
        view = self.view
        tracked = view.orders[event.order_id]
        request = tracked.request
        remaining = max(event.quantity - event.filled_quantity, 0.0)
        priced_by_levels = request.order_type not in (OrderType.MARKET, OrderType.TRAILING_STOP)
        renamed = event.symbol != request.symbol  # a symbol change moved the order
        if (
            remaining == tracked.remaining
            and not renamed
            and (
                not priced_by_levels
                or (event.limit_price, event.stop_price)
                == (request.limit_price, request.stop_price)
            )
        ):
            return  # a trailing stop moved, a trigger: nothing reserved changes
        view.release(event.order_id)
        code = view.ensure_code(event.symbol) if renamed else tracked.code
        changes: dict[str, Any] = {"quantity": event.quantity, "symbol": event.symbol}
        if event.limit_price is not None and tracked.request.limit_price is not None:
            changes["limit_price"] = event.limit_price
        if event.stop_price is not None and tracked.request.stop_price is not None:
            changes["stop_price"] = event.stop_price
        request = msgspec.structs.replace(tracked.request, **changes)
        price = view.estimate_price(request, code, self.config.market_price_buffer)
        if math.isnan(price):
            price = tracked.price
        if remaining > 0:
            order = view.open_order(request, code, price, remaining, tracked.increasing)
            view.reserve(event.order_id, order)

    # ------------------------------------------------------------------ stopping trading

    @on(ERRORS, phase=Phase.EXECUTION)
    def _on_failure(self, event: ComponentFailed) -> None:
        self._on_error()

    def _on_error(self) -> None:
        """Count an error; trip the kill switch if there are too many in the window."""
        if self.kill_switch is None or self.stopped is not None:
            return
        self._check_kill_switch(self.errors.add(self.now_ns()))

    def _check_kill_switch(self, errors: int) -> None:
        assert self.kill_switch is not None
        breach = check_kill_switch(self.view, self.kill_switch, errors)
        if breach is not None:
            action = StopAction(self.kill_switch.action)
            self.stop_trading(action, breach.rule, breach.reason, source="kill_switch")

    @on(TRADING_CONTROL, phase=Phase.RISK)
    def _on_control(self, command: StopTrading) -> None:
        self.stop_trading(command.action, "requested", command.reason, source=command.source)

    def stop_trading(self, action: StopAction, rule: str, reason: str, *, source: str = "") -> None:
        """Cancel every open order, close every position (``flatten``), publish
        ``TradingStopped`` and refuse new orders from now on. A later stop only
        escalates a ``halt`` to a ``flatten``."""
        previous = self.stopped
        if previous is not None and (
            previous.action is StopAction.FLATTEN or action is not StopAction.FLATTEN
        ):
            return
        now = self.now_ns()
        book = self.stop_book
        cancels = book.cancels(now)
        for cancel in cancels:
            self.view.release(cancel.order_id)
            self.publish(ORDERS_APPROVED, cancel)
        closing = book.closing_orders(now) if action is StopAction.FLATTEN else []
        for order in closing:
            book.on_approved(order)
            self.publish(ORDERS_APPROVED, order)
        self.stopped = TradingStopped(
            ts_event=now,
            ts_init=now,
            action=action,
            rule=rule,
            reason=reason,
            source=source,
            cancelled=[c.order_id for c in cancels],
            closing=[o.order_id for o in closing],
        )
        self.log.warning(
            "trading_stopped",
            rule=rule,
            action=action.value,
            source=source,
            reason=reason,
            closing=len(closing),
        )
        self.publish(TRADING_STOPPED, self.stopped)

    def _stopped_rejection(self) -> Rejection:
        stopped = self.stopped
        assert stopped is not None
        return Rejection(
            "trading_stopped",
            f"trading was stopped ({stopped.rule}, {stopped.action.value}) at "
            f"{from_ns(stopped.ts_event).isoformat()}: {stopped.reason}; no new orders are "
            "accepted",
        )


def _owner_problem(tracked: Reservation, request: CancelOrder | ModifyOrder) -> Rejection | None:
    owner = tracked.request.strategy_id
    if request.strategy_id == owner:
        return None
    what = "cancel" if isinstance(request, CancelOrder) else "modify"
    return Rejection(
        "wrong_strategy",
        f"cannot {what} order {request.order_id!r}: it belongs to strategy {owner!r}, not "
        f"{request.strategy_id!r}",
    )


def _text(value: object) -> str:
    """An id as text for an event, whatever a malformed request carried."""
    return value if isinstance(value, str) else repr(value)
