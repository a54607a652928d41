"""The risk manager component: approves or rejects every order request.

Wiring (DESIGN §2): ``ORDER_REQUESTS`` at :attr:`Phase.RISK`. An approved request is
re-published unchanged on ``ORDERS_APPROVED``; a refused one becomes an
``OrderRejected(rule=..., reason=...)`` on ``ORDER_EVENTS``, which the strategy and the
recorder see. Cancels always pass (they only lower risk); modifies are checked as the
order they would become.

Its :class:`~ml4t.backtest.risk.view.RiskView` is fed by events only, each at a phase
before :attr:`Phase.RISK` so the view is current when orders arrive: ``FILLS``,
``POSITIONS`` and ``ORDER_EVENTS`` at EXECUTION, ``MARKET`` and ``PORTFOLIO`` at
VALUATION.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from ml4t.backtest._universe import Universe, batch_codes
from ml4t.backtest._validation import INVALID_ORDER, invalid_modify
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import (
    CancelOrder,
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
    SubmitOrder,
)
from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.risk.rules import RULES, Rejection, Rule, evaluate, impact
from ml4t.backtest.risk.view import OpenOrder, RiskView
from ml4t.backtest.topics import (
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    POSITIONS,
)

__all__ = ["RiskManager"]


class RiskManager(Component):
    """Pre-trade checks between strategies and the broker.

    ``rules`` replaces the default rule sequence (each a pure function of (request,
    view, config) returning None or a :class:`~ml4t.backtest.risk.rules.Rejection`).
    """

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        rules: Iterable[Rule] | None = None,
        symbols: Iterable[str] | None = None,
        name: str = "risk",
    ) -> None:
        super().__init__(name)
        self.config = config if config is not None else RiskConfig()
        self.rules: tuple[Rule, ...] = tuple(rules) if rules is not None else RULES
        self.view = RiskView(Universe(symbols) if symbols is not None else None)
        self._aligned = False  # codes follow the data's universe once a batch was seen
        self._amending: dict[str, int] = {}  # approved cancels/modifies awaiting the broker

    # ------------------------------------------------------------------ requests

    @on(ORDER_REQUESTS, phase=Phase.RISK)
    def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if isinstance(request, SubmitOrder):
            if request.order_id in self.view.orders:
                rejection: Rejection | None = Rejection(
                    "duplicate_order_id",
                    f"order id {request.order_id!r} is already used by an open order; give "
                    "every order a new id",
                )
            else:
                rejection = evaluate(request, self.view, self.config, self.rules)
            if rejection is None:
                self._reserve(request)
        elif isinstance(request, CancelOrder):
            rejection = None
        else:
            rejection = self._check_modify(request)
        if rejection is not None:
            self._reject(request, rejection)
            return
        if not isinstance(request, SubmitOrder) and request.order_id in self.view.orders:
            self._amending[request.order_id] = self._amending.get(request.order_id, 0) + 1
        self.publish(ORDERS_APPROVED, request)

    def _reserve(self, request: SubmitOrder) -> None:
        view = self.view
        code = view.code(request.symbol)
        if code is None:
            code = view.ensure_code(request.symbol)
        imp = impact(request, view, self.config)
        order = OpenOrder(request, code, imp.price, float(request.quantity), not imp.reducing)
        view.reserve(request.order_id, order)

    def _check_modify(self, request: ModifyOrder) -> Rejection | None:
        problem = invalid_modify(request)
        if problem is not None:
            return Rejection(INVALID_ORDER, problem)
        view = self.view
        tracked = view.orders.get(request.order_id)
        if tracked is None:
            return None  # not an order this manager approved (a bracket child, say)
        filled = tracked.request.quantity - tracked.remaining
        remaining = tracked.remaining
        if request.quantity is not None:
            remaining = request.quantity - filled
            if remaining <= 0:
                return None  # the broker refuses it, naming the filled quantity
        changes: dict[str, float] = {"quantity": remaining}
        if request.limit_price is not None and tracked.request.limit_price is not None:
            changes["limit_price"] = request.limit_price
        if request.stop_price is not None and tracked.request.stop_price is not None:
            changes["stop_price"] = request.stop_price
        proposed = msgspec.structs.replace(tracked.request, **changes)
        saved = tracked.remaining
        view.release(request.order_id)  # judge the new order without its old self
        try:
            return evaluate(proposed, view, self.config, self.rules)
        finally:
            tracked.remaining = saved
            view.reserve(request.order_id, tracked)

    def _reject(
        self, request: SubmitOrder | CancelOrder | ModifyOrder, rejection: Rejection
    ) -> None:
        ts = self.now_ns()
        symbol = getattr(request, "symbol", "")
        if not symbol:
            tracked = self.view.orders.get(request.order_id)
            symbol = tracked.request.symbol if tracked is not None else ""
        self.log.debug("order_rejected", order_id=request.order_id, rule=rejection.rule)
        self.publish(
            ORDER_EVENTS,
            OrderRejected(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=symbol,
                rule=rejection.rule,
                reason=rejection.reason,
            ),
        )

    # ------------------------------------------------------------------ the view

    @on(MARKET, phase=Phase.VALUATION)
    def _on_market(self, batch: MarketBatch) -> None:
        view = self.view
        frame = batch.frame
        if not self._aligned:
            self._aligned = True
            view.align(Universe.of_frame(frame))
        view.price[batch_codes(frame)] = frame.get_column("close").to_numpy()

    @on(PORTFOLIO, phase=Phase.VALUATION)
    def _on_snapshot(self, snapshot: PortfolioSnapshot) -> None:
        view = self.view
        view.cash = snapshot.cash
        view.gross_exposure = snapshot.gross_exposure
        view.net_exposure = snapshot.net_exposure
        view.observe_equity(snapshot.ts_event, snapshot.equity)

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

    @on(ORDER_EVENTS, phase=Phase.EXECUTION)
    def _on_order_event(
        self,
        event: OrderAccepted | OrderRejected | OrderCancelled | OrderExpired | OrderUpdated,
    ) -> None:
        view = self.view
        order_id = event.order_id
        if order_id not in view.orders:
            return
        if isinstance(event, OrderAccepted):
            return
        amending = self._amending.get(order_id, 0)
        if amending and isinstance(event, OrderRejected | OrderUpdated | OrderCancelled):
            # the broker's answer to an amendment this manager approved
            if amending > 1:
                self._amending[order_id] = amending - 1
            else:
                del self._amending[order_id]
            if isinstance(event, OrderRejected):
                return  # the original order stays open, and reserved
        if isinstance(event, OrderRejected | OrderCancelled | OrderExpired):
            view.release(order_id)
            self._amending.pop(order_id, None)
            return
        self._update(event)

    def _update(self, event: OrderUpdated) -> None:
        view = self.view
        tracked = view.orders[event.order_id]
        request = tracked.request
        remaining = max(event.quantity - event.filled_quantity, 0.0)
        priced_by_levels = request.order_type not in (OrderType.MARKET, OrderType.TRAILING_STOP)
        if remaining == tracked.remaining and (
            not priced_by_levels
            or (event.limit_price, event.stop_price) == (request.limit_price, request.stop_price)
        ):
            return  # a trailing stop moved, a trigger: nothing reserved changes
        view.release(event.order_id)
        changes: dict[str, float] = {"quantity": event.quantity}
        if event.limit_price is not None and tracked.request.limit_price is not None:
            changes["limit_price"] = event.limit_price
        if event.stop_price is not None and tracked.request.stop_price is not None:
            changes["stop_price"] = event.stop_price
        request = msgspec.structs.replace(tracked.request, **changes)
        price = view.estimate_price(request, tracked.code, self.config.market_price_buffer)
        if math.isnan(price):
            price = tracked.price
        if remaining > 0:
            order = OpenOrder(request, tracked.code, price, remaining, tracked.increasing)
            view.reserve(event.order_id, order)
