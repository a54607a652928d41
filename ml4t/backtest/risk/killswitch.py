"""The kill switch: limits that stop trading altogether, and what stopping does.

The pre-trade rules (:mod:`~ml4t.backtest.risk.rules`) refuse one order at a time. The
kill switch (``risk.kill_switch``, :class:`~ml4t.backtest.risk.config.KillSwitchConfig`)
stops *all* trading when the account is in trouble:

- :func:`check_kill_switch` is the pure rule: given the risk view and the number of
  recent errors, the first limit breached (daily loss, drawdown, error rate) with the
  numbers, or None. Tests call it without a bus.
- :class:`ErrorWindow` counts errors (order rejections, component failures) within a
  sliding window of clock time.
- :class:`StopBook` is what the risk manager needs to stop: the open orders and who owns
  them, and each strategy's position per symbol, kept from events. It makes the
  ``CancelOrder`` for every open order and, to flatten, the market ``SubmitOrder`` closing
  each position in its strategy's name (``reduce_only``, reason ``flatten``).
- :class:`HaltStop` ends the run once trading stopped: at once after a halt, and after a
  flatten as soon as every closing order is done or at the next market batch, whichever
  comes first ("within one bar").

The risk manager wires them (``ml4t.backtest.risk.manager``); an operator's
:class:`~ml4t.backtest.events.StopTrading` (``ml4t live --halt``) takes the same path.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import (
    ActionKind,
    CancelOrder,
    CorporateAction,
    MarketBatch,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    RequestKind,
    SubmitOrder,
    TimerFired,
    TradingStopped,
)
from ml4t.backtest.risk.config import KillSwitchConfig
from ml4t.backtest.risk.view import RiskView
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, TRADING_STOPPED

__all__ = [
    "FLATTEN_REASON",
    "Breach",
    "ErrorWindow",
    "HaltStop",
    "StopBook",
    "check_kill_switch",
    "stop_reason",
]

FLATTEN_REASON = "flatten"
"""The ``reason`` of the orders that close positions at a stop (the trades' exit reason)."""

_QTY_EPS = 1e-9


class Breach(NamedTuple):
    """A kill-switch limit reached: ``rule`` (``daily_loss``, ``drawdown``,
    ``error_rate``) and ``reason``, with the numbers."""

    rule: str
    reason: str


def check_kill_switch(view: RiskView, config: KillSwitchConfig, errors: int) -> Breach | None:
    """The first limit of ``config`` that the account breaches, or None.

    ``errors`` is the number of errors within the window (:class:`ErrorWindow`). Pure:
    it reads the view, never changes it.

    >>> from ml4t.backtest.risk.view import RiskView
    >>> view = RiskView()
    >>> view.observe_equity(0, 100_000.0)
    >>> view.observe_equity(1, 94_000.0)
    >>> check_kill_switch(view, KillSwitchConfig(max_daily_loss=0.05), 0).rule
    'daily_loss'
    """
    limit = config.max_daily_loss
    if limit is not None and view.day_start_equity > 0 and math.isfinite(view.equity):
        loss = (view.day_start_equity - view.equity) / view.day_start_equity
        if loss >= limit:
            return Breach(
                "daily_loss",
                f"equity {view.equity:,.2f} is {loss:.2%} below the day's start "
                f"{view.day_start_equity:,.2f} (kill_switch.max_daily_loss {limit:.2%})",
            )
    limit = config.max_drawdown
    if limit is not None and view.peak_equity > 0 and math.isfinite(view.equity):
        drawdown = 1.0 - view.equity / view.peak_equity
        if drawdown >= limit:
            return Breach(
                "drawdown",
                f"equity {view.equity:,.2f} is {drawdown:.2%} below its peak "
                f"{view.peak_equity:,.2f} (kill_switch.max_drawdown {limit:.2%})",
            )
    if config.max_errors is not None and errors >= config.max_errors:
        return Breach(
            "error_rate",
            f"{errors} errors (order rejections and component failures) within "
            f"{config.error_window:g} s (kill_switch.max_errors {config.max_errors})",
        )
    return None


class ErrorWindow:
    """Error times (ns) within the last ``window_s`` seconds of clock time."""

    __slots__ = ("_times", "window_ns")

    def __init__(self, window_s: float) -> None:
        self.window_ns = int(window_s * 1e9)
        self._times: deque[int] = deque()

    def add(self, ts_ns: int) -> int:
        """Count an error at ``ts_ns``; the number within the window ending there."""
        self._times.append(ts_ns)
        return self.count(ts_ns)

    def count(self, now_ns: int) -> int:
        times = self._times
        while times and times[0] <= now_ns - self.window_ns:
            times.popleft()
        return len(times)


class StopBook:
    """Open orders (id -> owning strategy) and positions per (strategy, symbol), kept
    from events, so that the risk manager can cancel everything and close everything."""

    __slots__ = ("_closing_seq", "held", "open")

    def __init__(self) -> None:
        self.open: dict[str, str] = {}
        self.held: dict[tuple[str, str], float] = {}
        self._closing_seq = 0

    # ------------------------------------------------------------ updates

    def on_approved(self, request: SubmitOrder) -> None:
        self.open[request.order_id] = request.strategy_id

    def on_order_event(self, event: object) -> None:
        if isinstance(event, OrderAccepted):
            self.open[event.order_id] = event.strategy_id  # bracket children too
        elif isinstance(event, OrderCancelled | OrderExpired) or (
            isinstance(event, OrderRejected) and event.request is RequestKind.SUBMIT
        ):
            self.open.pop(event.order_id, None)

    def on_fill(self, fill: OrderFilled) -> None:
        key = (fill.strategy_id, fill.symbol)
        qty = self.held.get(key, 0.0) + fill.side.sign * fill.quantity
        if abs(qty) <= _QTY_EPS * max(1.0, fill.quantity):
            self.held.pop(key, None)
        else:
            self.held[key] = qty
        if fill.remaining_quantity <= 0.0:
            self.open.pop(fill.order_id, None)

    def on_action(self, action: CorporateAction) -> None:
        """A split restates positions in new shares; a symbol change renames them."""
        for key in [k for k in self.held if k[1] == action.symbol]:
            if action.action is ActionKind.SPLIT:
                self.held[key] *= action.ratio
            elif action.action is ActionKind.SYMBOL_CHANGE and action.new_symbol:
                self.held[(key[0], action.new_symbol)] = self.held.pop(key)

    # ------------------------------------------------------------ stopping

    def cancels(self, now_ns: int) -> list[CancelOrder]:
        """A cancel of every open order, in id order."""
        return [
            CancelOrder(ts_event=now_ns, ts_init=now_ns, order_id=order_id, strategy_id=owner)
            for order_id, owner in sorted(self.open.items())
        ]

    def closing_orders(self, now_ns: int) -> list[SubmitOrder]:
        """A market order closing each position, in its strategy's name, by
        (strategy, symbol)."""
        orders = []
        for (strategy, symbol), qty in sorted(self.held.items()):
            self._closing_seq += 1
            orders.append(
                SubmitOrder(
                    ts_event=now_ns,
                    ts_init=now_ns,
                    order_id=f"{strategy}-{FLATTEN_REASON}-{self._closing_seq}",
                    strategy_id=strategy,
                    symbol=symbol,
                    side=OrderSide.SELL if qty > 0 else OrderSide.BUY,
                    quantity=abs(qty),
                    reduce_only=True,
                    reason=FLATTEN_REASON,
                )
            )
        return orders


def stop_reason(event: TradingStopped) -> str:
    """Why a run whose trading was stopped is incomplete, in one line."""
    by = f" by the {event.source.replace('_', ' ')}" if event.source else ""
    return f"trading was stopped{by} ({event.rule}, {event.action.value}): {event.reason}"


class HaltStop(Component):
    """Ends the run once trading stopped (a :class:`TradingStopped` event).

    It waits for an answer from the venue to every order the stop cancelled or sent
    (a fill that completes it, a cancel, a rejection), and ends the run as soon as all
    have one, or at the next market batch (its fills applied: "within one bar"),
    whichever comes first; after a ``halt`` (nothing to fill, only cancels to confirm)
    at the latest ``grace_s`` seconds of clock time after the stop. A simulated broker
    answers cancels at once, so a ``halt`` in a backtest ends the run at the timestamp it
    happened; a ``flatten`` ends it at the next bar, where the closing orders fill.
    ``stop`` is called once, with the event.
    """

    def __init__(
        self,
        stop: Callable[[TradingStopped], None],
        *,
        grace_s: float = 10.0,
        name: str = "halt-stop",
    ) -> None:
        super().__init__(name)
        self._stop = stop
        self.grace_ns = int(grace_s * 1e9)
        self.event: TradingStopped | None = None
        self.pending: set[str] = set()
        self.stopped = False

    def _finish(self) -> None:
        if self.stopped or self.event is None:
            return
        self.stopped = True
        self.cancel_timer("grace")
        self._stop(self.event)

    @on(TRADING_STOPPED, phase=Phase.RECORD)
    def _on_stopped(self, event: TradingStopped) -> None:
        if self.event is not None:
            return
        self.event = event
        self.pending = {*event.cancelled, *event.closing}
        if not self.pending:
            self._finish()
        elif not event.closing:
            self.set_timer("grace", start_ns=self.now_ns() + self.grace_ns)

    def on_timer(self, event: TimerFired) -> None:
        self._finish()

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        # a batch of the stop's own timestamp reaches RECORD before the stop does (it
        # was published first), so any batch seen after the stop is a later one
        if self.event is not None:
            self._finish()

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        if fill.remaining_quantity <= 0.0:
            self._done(fill.order_id)

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _on_order_event(self, event: object) -> None:
        if isinstance(event, OrderCancelled | OrderExpired | OrderRejected):
            self._done(event.order_id)

    def _done(self, order_id: str) -> None:
        if order_id in self.pending:
            self.pending.discard(order_id)
            if not self.pending:
                self._finish()
