"""DelayBroker: a venue that fills market orders at an open ``latency_bars`` bars late.

An execution venue written against the published :class:`ml4t.backtest.Broker`
protocol with only the public API. It handles ``ORDERS_APPROVED`` (at ``Phase.ROUTING``)
and ``MARKET`` (at ``Phase.EXECUTION``, before anyone sees the bar) and answers on
``ORDER_EVENTS`` and ``FILLS``:

- a market submit is accepted at once (``OrderAccepted``) and fills in full at the
  **open** of its symbol's ``latency_bars + 1``-th bar after acceptance: with
  ``latency_bars=0`` that is the next bar's open (the built-in broker's
  ``fill_timing: next_open``), with 1 the bar after, and so on. A bar whose open is
  missing (null or NaN) does not count;
- the commission is the run's model (``execution.commission``); no slippage is applied
  and no volume cap (the fill price is the open, exactly);
- a cancel of an open order cancels it (``OrderCancelled``); a cancel of an unknown or
  closed order, any modify, and a submit that is not a plain market order (a limit,
  stop or trailing price, a bracket, ``reduce_only``) are refused with
  ``OrderRejected`` naming the rule (``delay_broker.unknown_order``,
  ``delay_broker.unsupported``); time in force is not applied (an order waits until it
  fills or is cancelled).

Config: ``plugins: {broker: delay}`` builds ``DelayBroker(config.execution)`` with one
bar of latency; ``DelayBroker(config, latency_bars=n)`` in Python for another.
"""

from __future__ import annotations

import math
from itertools import count

import polars as pl

from ml4t.backtest import (
    BrokerConfig,
    CancelOrder,
    Component,
    ConfigError,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderType,
    Phase,
    RequestKind,
    SubmitOrder,
    on,
)
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED

__all__ = ["DelayBroker"]


class _Pending:
    """An accepted market order and the bars it still has to wait."""

    __slots__ = ("request", "wait")

    def __init__(self, request: SubmitOrder, wait: int) -> None:
        self.request = request
        self.wait = wait


class DelayBroker(Component):
    """Market orders filled at the open, ``latency_bars`` bars after the next bar."""

    def __init__(
        self, config: BrokerConfig | None = None, *, latency_bars: int = 1, name: str = "broker"
    ) -> None:
        super().__init__(name)
        if isinstance(latency_bars, bool) or not isinstance(latency_bars, int) or latency_bars < 0:
            raise ConfigError(
                f"DelayBroker latency_bars must be a whole number >= 0, got {latency_bars!r}"
            )
        self.config = config if config is not None else BrokerConfig()
        self.latency_bars = latency_bars
        self.commission = self.config.commission.build()
        self._open: dict[str, dict[str, _Pending]] = {}  # symbol -> order id -> order
        self._owner: dict[str, str] = {}  # open order id -> symbol
        self._fill_ids = count(1)

    # ------------------------------------------------------------ requests

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if isinstance(request, SubmitOrder):
            self._submit(request)
        elif isinstance(request, CancelOrder):
            self._cancel(request)
        else:
            symbol = self._owner.get(request.order_id, "")
            self._reject(request, symbol, "delay_broker.unsupported", "modify is not supported")

    def _submit(self, request: SubmitOrder) -> None:
        problem = _unsupported(request)
        if problem is not None:
            self._reject(request, request.symbol, "delay_broker.unsupported", problem)
            return
        ts = self.now_ns()
        self._open.setdefault(request.symbol, {})[request.order_id] = _Pending(
            request, self.latency_bars
        )
        self._owner[request.order_id] = request.symbol
        self.publish(
            ORDER_EVENTS,
            OrderAccepted(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=request.symbol,
            ),
        )

    def _cancel(self, request: CancelOrder) -> None:
        symbol = self._owner.get(request.order_id)
        pending = self._open.get(symbol, {}).get(request.order_id) if symbol else None
        if pending is None or pending.request.strategy_id != request.strategy_id:
            self._reject(request, symbol or "", "delay_broker.unknown_order", "no such open order")
            return
        self._forget(request.order_id)
        ts = self.now_ns()
        self.publish(
            ORDER_EVENTS,
            OrderCancelled(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=pending.request.symbol,
                reason="cancelled by request",
            ),
        )

    def _reject(
        self, request: SubmitOrder | CancelOrder | ModifyOrder, symbol: str, rule: str, why: str
    ) -> None:
        ts = self.now_ns()
        kind = {SubmitOrder: RequestKind.SUBMIT, CancelOrder: RequestKind.CANCEL}.get(
            type(request), RequestKind.MODIFY
        )
        self.publish(
            ORDER_EVENTS,
            OrderRejected(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=symbol,
                rule=rule,
                reason=f"{why} (order {request.order_id!r})",
                request=kind,
            ),
        )

    def _forget(self, order_id: str) -> None:
        symbol = self._owner.pop(order_id)
        orders = self._open[symbol]
        del orders[order_id]
        if not orders:
            del self._open[symbol]

    # ------------------------------------------------------------ market data

    @on(MARKET, phase=Phase.EXECUTION)
    def _on_market(self, batch: MarketBatch) -> None:
        if not self._open:
            return
        frame = batch.frame
        symbols = frame.get_column("symbol").cast(pl.String).to_list()
        opens = frame.get_column("open").to_list()
        for symbol, price in zip(symbols, opens, strict=True):
            orders = self._open.get(symbol)
            if orders is None or price is None or math.isnan(price):
                continue
            for pending in list(orders.values()):
                if pending.wait > 0:
                    pending.wait -= 1
                else:
                    self._fill(pending.request, float(price), batch.ts_event)

    def _fill(self, request: SubmitOrder, price: float, ts: int) -> None:
        self._forget(request.order_id)
        qty = request.quantity
        fee = self.commission.commission(qty, price, 0.0, 0.0, 0.0)
        self.publish(
            FILLS,
            OrderFilled(
                ts_event=ts,
                ts_init=ts,
                fill_id=f"{self.name}-{next(self._fill_ids)}",
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=request.symbol,
                side=request.side,
                quantity=qty,
                price=price,
                commission=fee,
                reason=request.reason,
            ),
        )


def _unsupported(request: SubmitOrder) -> str | None:
    """Why this venue cannot take ``request`` (None: a plain market order it can)."""
    if request.order_type is not OrderType.MARKET:
        return f"only market orders are supported, not {request.order_type.value}"
    for field in ("limit_price", "stop_price", "trail_amount", "trail_percent"):
        if getattr(request, field) is not None:
            return f"{field} is not supported"
    if request.stop_loss is not None or request.take_profit is not None:
        return "brackets (stop_loss/take_profit) are not supported"
    if request.reduce_only or request.parent_id is not None:
        return "reduce-only and child orders are not supported"
    if not (request.quantity > 0 and math.isfinite(request.quantity)):
        return f"quantity must be a positive number, got {request.quantity!r}"
    return None
