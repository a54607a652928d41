"""In-process clients for the live adapter protocols.

- :class:`SimulatedExecution`: the simulated broker behind the :class:`ExecutionClient`
  interface. It hosts a :class:`~ml4t.backtest.SimulatedBroker` on a private bus and
  clock of its own, so the matching rules are exactly the backtest's: a graph with a
  ``BrokerAdapter(SimulatedExecution())`` trades like one with the simulated broker.
- :class:`PaperExecution`: a paper venue that fills against the live bars it is shown:
  market orders at the next bar's open, limit orders when a bar reaches the limit, with
  the configured slippage and commission models. Other order types are rejected.
- :class:`LoopbackMarketData`: a market-data client fed in-process with :meth:`push`
  (an in-process producer, or the receiving end of a bridge).

All three keep order ids as idempotency keys: a repeated ``submit`` is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ml4t.backtest.bus import Bus, Phase
from ml4t.backtest.clock import SimulatedClock
from ml4t.backtest.component import Context, default_logger
from ml4t.backtest.events import (
    CancelOrder,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderType,
    SubmitOrder,
)
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.live.adapters import ConnectionLost
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED

__all__ = ["LoopbackMarketData", "PaperExecution", "SimulatedExecution"]

Listener = Callable[[Event], None]


class _Positions:
    """Signed net position per symbol from fills (what a venue reports at reconcile)."""

    def __init__(self) -> None:
        self.qty: dict[str, float] = {}

    def on_fill(self, fill: OrderFilled) -> None:
        q = self.qty.get(fill.symbol, 0.0) + fill.side.sign * fill.quantity
        if abs(q) < 1e-12:
            self.qty.pop(fill.symbol, None)
        else:
            self.qty[fill.symbol] = q


class SimulatedExecution:
    """The simulated broker as an execution client (same matching, same events).

    Its clock is the market time of the bars it has been given: a request is handled at
    the last bar's time, as a backtest handles an order placed on bar t at t, so it fills
    from the next bar on. Taking the request's own stamp instead would mix two clocks
    when the bars carry their vendor's time (a bar known at 14:31 delivered at 14:31:02,
    or a stand-in replaying an earlier day) and the requests the live clock's: a bar
    older than the request would never fill it.
    """

    def __init__(
        self,
        config: BrokerConfig | None = None,
        *,
        calendar: Any = None,
        symbols: Sequence[str] | None = None,
    ) -> None:
        self.broker = SimulatedBroker(config, calendar=calendar, symbols=symbols)
        self._clock = SimulatedClock()
        self._bus = Bus()
        self._listener: Listener | None = None
        self._positions = _Positions()
        self._started = False
        self.connected = False

    async def connect(self, on_event: Listener) -> None:
        self._listener = on_event
        if not self._started:  # host the broker on the private bus, once
            bus = self._bus
            self.broker._attach(Context(bus, self._clock, default_logger("venue"), bus.deliver))
            self.broker._subscribe_handlers()
            bus.subscribe(FILLS, self._forward, subscriber="venue-out", phase=Phase.RECORD)
            bus.subscribe(ORDER_EVENTS, self._forward, subscriber="venue-out", phase=Phase.RECORD)
            self._started = True
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def positions(self) -> dict[str, float]:
        return dict(self._positions.qty)

    def _forward(self, event: Event) -> None:
        if isinstance(event, OrderFilled):
            self._positions.on_fill(event)
        if self._listener is not None:
            self._listener(event)

    async def _send(self, topic: Any, event: Event, ts_ns: int | None = None) -> None:
        """Publish ``event`` to the broker at ``ts_ns`` (None: the market time now)."""
        if not self.connected:
            raise ConnectionLost("the simulated venue is not connected")
        if ts_ns is not None and ts_ns > self._clock.now_ns():
            self._clock.advance_to(ts_ns)
        self._bus.publish(topic, event)
        await self._bus.drain()

    async def on_market(self, batch: MarketBatch) -> None:
        await self._send(MARKET, batch, batch.ts_event)

    async def submit(self, order: SubmitOrder) -> None:
        if order.order_id in self.broker.book.orders:
            return  # idempotent: a retried submit of a known id is a no-op
        await self._send(ORDERS_APPROVED, order)

    async def cancel(self, request: CancelOrder) -> None:
        await self._send(ORDERS_APPROVED, request)

    async def modify(self, request: ModifyOrder) -> None:
        await self._send(ORDERS_APPROVED, request)


class _PaperOrder:
    __slots__ = ("accepted_ns", "request")

    def __init__(self, request: SubmitOrder, accepted_ns: int) -> None:
        self.request = request
        self.accepted_ns = accepted_ns


class PaperExecution:
    """A paper venue: fills open orders against each live bar it is shown.

    Market orders fill whole at the open of the symbol's first bar after acceptance;
    limit orders fill whole at the better of the open and the limit on the first such bar
    that reaches the limit. Slippage and commission come from ``config``'s models; volume
    limits, stops, trailing stops, brackets and time in force other than GTC are not
    simulated here (use :class:`SimulatedExecution` for those) and are rejected.
    """

    SUPPORTED = (OrderType.MARKET, OrderType.LIMIT)

    def __init__(self, config: BrokerConfig | None = None) -> None:
        config = config or BrokerConfig()
        self.slippage = config.slippage.build()
        self.commission = config.commission.build()
        self.open: dict[str, _PaperOrder] = {}
        self.seen: set[str] = set()
        self._positions = _Positions()
        self._listener: Listener | None = None
        self._last_ts = 0
        self.connected = False

    async def connect(self, on_event: Listener) -> None:
        self._listener = on_event
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def positions(self) -> dict[str, float]:
        return dict(self._positions.qty)

    def _emit(self, event: Event) -> None:
        if isinstance(event, OrderFilled):
            self._positions.on_fill(event)
        if self._listener is not None:
            self._listener(event)

    def _check(self) -> None:
        if not self.connected:
            raise ConnectionLost("the paper venue is not connected")

    async def submit(self, order: SubmitOrder) -> None:
        self._check()
        if order.order_id in self.seen:
            return
        self.seen.add(order.order_id)
        ts = max(order.ts_event, self._last_ts)
        common: dict[str, Any] = {"ts_event": ts, "ts_init": ts, "order_id": order.order_id}
        if order.order_type not in self.SUPPORTED or order.stop_loss or order.take_profit:
            self._emit(
                OrderRejected(
                    **common,
                    strategy_id=order.strategy_id,
                    symbol=order.symbol,
                    rule="unsupported_order",
                    reason=f"the paper venue fills market and limit orders only, not "
                    f"{order.order_type.value}{' brackets' if order.stop_loss else ''}",
                )
            )
            return
        self.open[order.order_id] = _PaperOrder(order, ts)
        self._emit(OrderAccepted(**common, strategy_id=order.strategy_id, symbol=order.symbol))

    async def cancel(self, request: CancelOrder) -> None:
        self._check()
        item = self.open.pop(request.order_id, None)
        ts = max(request.ts_event, self._last_ts)
        if item is None:
            self._emit(
                OrderRejected(
                    ts_event=ts,
                    ts_init=ts,
                    order_id=request.order_id,
                    strategy_id=request.strategy_id,
                    symbol="",
                    rule="unknown_order",
                    reason=f"cannot cancel {request.order_id!r}: no such open order",
                )
            )
            return
        self._emit(
            OrderCancelled(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=item.request.symbol,
                reason="cancelled by request",
            )
        )

    async def modify(self, request: ModifyOrder) -> None:
        self._check()
        ts = max(request.ts_event, self._last_ts)
        self._emit(
            OrderRejected(
                ts_event=ts,
                ts_init=ts,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol="",
                rule="unsupported_order",
                reason="the paper venue does not modify orders; cancel and submit anew",
            )
        )

    async def on_market(self, batch: MarketBatch) -> None:
        self._check()
        ts = batch.ts_event
        self._last_ts = ts
        if not self.open:
            return
        frame = batch.frame.select("symbol", "open", "high", "low", "volume")
        rows = {str(r[0]): r[1:] for r in frame.iter_rows()}
        for order_id in list(self.open):
            item = self.open[order_id]
            req = item.request
            bar = rows.get(req.symbol)
            if bar is None or item.accepted_ns >= ts:
                continue
            o, h, lo, v = (float(x) for x in bar)
            sign = req.side.sign
            if req.order_type is OrderType.MARKET:
                rule = o
            else:
                limit = float(req.limit_price)  # type: ignore[arg-type]
                touched = lo <= limit if sign > 0 else h >= limit
                if not touched:
                    continue
                rule = min(o, limit) if sign > 0 else max(o, limit)
            price = self.slippage.price(sign, rule, req.quantity, v, math.nan)
            fee = self.commission.commission(req.quantity, price, 0.0, 0.0, 0.0)
            del self.open[order_id]
            self._emit(
                OrderFilled(
                    ts_event=ts,
                    ts_init=ts,
                    fill_id=f"{order_id}.1",
                    order_id=order_id,
                    strategy_id=req.strategy_id,
                    symbol=req.symbol,
                    side=req.side,
                    quantity=req.quantity,
                    price=price,
                    commission=fee,
                    slippage=(price - rule) * sign * req.quantity + 0.0,
                    remaining_quantity=0.0,
                    reason=req.reason,
                )
            )


class LoopbackMarketData:
    """A market-data client fed in-process: whatever is :meth:`push`\\ ed is delivered."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[frozenset[str], Callable[[MarketBatch], None]]] = []
        self.connected = False
        self.pushed = 0

    async def connect(self) -> None:
        self.connected = True

    async def subscribe(
        self, symbols: Sequence[str], on_batch: Callable[[MarketBatch], None]
    ) -> None:
        if not self.connected:
            raise ConnectionLost("subscribe before connect")
        self._subscribers.append((frozenset(symbols), on_batch))

    async def close(self) -> None:
        self.connected = False
        self._subscribers.clear()

    def push(self, batch: MarketBatch) -> None:
        """Deliver ``batch`` to every subscriber (rows filtered to its symbols)."""
        self.pushed += 1
        for symbols, deliver in self._subscribers:
            if symbols:
                frame = batch.frame.filter(pl.col("symbol").cast(pl.String).is_in(sorted(symbols)))
                if frame.height == 0:
                    continue
                deliver(
                    MarketBatch(
                        ts_event=batch.ts_event,
                        ts_init=batch.ts_init,
                        frame=frame,
                        context=batch.context,
                    )
                )
            else:
                deliver(batch)
