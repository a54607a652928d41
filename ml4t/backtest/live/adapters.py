"""Live adapter interfaces: the protocols a market-data and an execution client implement,
and the components that delegate to them.

The graph never talks to a venue directly. :class:`FeedAdapter` (a feed) and
:class:`BrokerAdapter` (a broker) are ordinary components on the bus; each holds one
client and turns bus events into client calls and client reports into bus events:

```
 MarketDataClient ──on_batch──▶ FeedAdapter ──MARKET──▶ ...
 ... ──ORDERS_APPROVED──▶ BrokerAdapter ──submit/cancel/modify──▶ ExecutionClient
                          BrokerAdapter ◀──on_event(fills, order events)──┘
```

- **Connect** at start, retried with :class:`Backoff` (exponential, capped, seeded
  jitter, a bounded number of attempts).
- **Reconcile** at start and after every reconnect: the broker adapter reads the
  account (an :class:`~ml4t.backtest.live.account.AccountSource` client: cash, positions,
  open orders; any other: positions) and compares it with what the graph expects (its
  own fills' positions and the orders it believes are working). The result is published
  as :class:`~ml4t.backtest.events.AccountReconciled` on ``VENUE`` and every difference
  is logged. At start a difference fails the start (``on_mismatch="fail"``), is only
  reported (``"warn"``), or the venue's account becomes the session's starting state
  (``"adopt"``: the portfolio takes its cash and positions); after a reconnect it is
  always reported, never applied.
- **Reconnect**: a client call that raises :class:`ConnectionLost` is retried after
  reconnecting with the same backoff. Order ids are idempotency keys: a client must treat
  a second ``submit`` with an id it has seen as a no-op, so a retry never doubles an order.
  A client whose streams reconnect on their own reports it with a
  :class:`~ml4t.backtest.events.VenueConnection` event (``restored``) through
  ``on_event``; the adapter then reconciles, and a ``failed`` one stops the run.
- A client that needs the market to fill (a simulated or paper venue) also implements
  :class:`MarketDriven`; the broker adapter then hands it every batch at ``EXECUTION``.

The feed adapter publishes the session handshake it is given, replays a client's
warm-up history (a :class:`HistorySource`) before its live bars, and on a
:class:`~ml4t.backtest.live.DrivenClock` makes each batch's time the graph's *now*, so
an order placed on bar t is stamped t as in a backtest. Orders placed while warm-up
bars are replayed are refused (rule ``warmup``): those bars are history.

``ml4t.backtest.live.clients`` has two real in-process execution clients (the simulated
broker behind this interface, and a paper broker filling against live bars) and a
loopback market-data client.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar, runtime_checkable

import anyio
import msgspec

from ml4t.backtest.bus import Phase
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ComponentError, ML4TError, ProtocolError
from ml4t.backtest.events import (
    AccountReconciled,
    CancelOrder,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderUpdated,
    RequestKind,
    SessionStarted,
    SubmitOrder,
    VenueConnection,
    VenueLink,
    VenueOrder,
)
from ml4t.backtest.live.account import (
    AccountSource,
    AccountState,
    Resumable,
    reconcile,
    reconcile_account,
)
from ml4t.backtest.live.clocks import DrivenClock
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED, SESSION, VENUE

__all__ = [
    "Backoff",
    "BrokerAdapter",
    "ConnectionLost",
    "ConnectionReporting",
    "ExecutionClient",
    "FeedAdapter",
    "HistorySource",
    "MarketDataClient",
    "MarketDriven",
    "ReconcileError",
    "VenueError",
    "reconcile",
]

T = TypeVar("T")


class ConnectionLost(ML4TError):
    """A client lost (or could not open) its connection; the call may be retried."""


class ReconcileError(ML4TError):
    """The venue's positions differ from what the graph expects at start."""


class VenueError(ML4TError):
    """A venue refused the session for good (credentials, permissions): not retried."""


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class MarketDataClient(Protocol):
    """A source of market data (a vendor's websocket, a bus bridge, a loopback)."""

    async def connect(self) -> None:
        """Open the session; raise :class:`ConnectionLost` if the venue is unreachable."""
        ...

    async def subscribe(
        self, symbols: Sequence[str], on_batch: Callable[[MarketBatch], None]
    ) -> None:
        """Deliver every batch for ``symbols`` (all if empty) to ``on_batch``, from any task
        of the running event loop, in time order."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ExecutionClient(Protocol):
    """A venue that takes orders (a broker API, a simulated or paper venue)."""

    async def connect(self, on_event: Callable[[Event], None]) -> None:
        """Open the session. The client reports ``OrderAccepted``/``OrderRejected``/
        ``OrderUpdated``/``OrderCancelled``/``OrderExpired`` and ``OrderFilled`` events by
        calling ``on_event``. Calling ``connect`` again after a loss reconnects."""
        ...

    async def positions(self) -> dict[str, float]:
        """The account's signed positions by symbol (for reconciliation at start)."""
        ...

    async def submit(self, order: SubmitOrder) -> None:
        """Send ``order``. Idempotent on ``order.order_id``: a repeat is ignored."""
        ...

    async def cancel(self, request: CancelOrder) -> None: ...

    async def modify(self, request: ModifyOrder) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class MarketDriven(Protocol):
    """An execution client that fills against the bars it is shown (simulated, paper)."""

    async def on_market(self, batch: MarketBatch) -> None: ...


@runtime_checkable
class ConnectionReporting(Protocol):
    """A market-data client that reports its connection's state (lost, restored,
    failed) to ``listener``, from any task of the running event loop."""

    def report_to(self, listener: Callable[[VenueConnection], None]) -> None: ...


@runtime_checkable
class HistorySource(Protocol):
    """A market-data client that can replay its recent history (warm-up)."""

    async def history(self, symbols: Sequence[str], bars: int) -> list[MarketBatch]:
        """The last ``bars`` timestamps' batches before now, oldest first, built as its
        live batches are (same columns, same known-at times)."""
        ...


# --------------------------------------------------------------------------- backoff


class Backoff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exponential backoff: ``initial * factor**n`` seconds, capped at ``maximum``, each
    delay scaled by a random factor in ``[1 - jitter, 1 + jitter]`` (seeded), for at most
    ``attempts`` tries (None: forever)."""

    initial: Annotated[float, msgspec.Meta(ge=0)] = 0.1
    factor: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    maximum: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    attempts: Annotated[int, msgspec.Meta(ge=1)] | None = 8
    seed: int = 0

    def delays(self) -> Iterator[float]:
        """The waits between attempts (one fewer than ``attempts``)."""
        rng = random.Random(self.seed)
        delay = self.initial
        n = 1
        while self.attempts is None or n < self.attempts:
            spread = 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
            yield min(self.maximum, delay) * spread
            delay *= self.factor
            n += 1

    async def retry(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        what: str,
        log: Any = None,
        retry_on: tuple[type[BaseException], ...] = (ConnectionLost, OSError),
    ) -> T:
        """``await call()``, retried after each delay while it raises ``retry_on``;
        :class:`ConnectionLost` naming ``what`` and the attempts once they run out."""
        delays = self.delays()
        attempt = 1
        while True:
            try:
                return await call()
            except retry_on as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ConnectionLost(
                        f"{what} failed after {attempt} attempt(s): {type(exc).__name__}: {exc}"
                    ) from exc
                if log is not None:
                    log.warning("retrying", what=what, attempt=attempt, delay=round(delay, 3))
                await anyio.sleep(delay)
                attempt += 1


# --------------------------------------------------------------------------- components

Mismatch = Literal["fail", "warn", "adopt"]
MARKET_DATA_LINK = "market_data"
"""The ``link`` of the :class:`~ml4t.backtest.events.VenueConnection` events a feed
adapter publishes (its client's connection, and warm-up)."""


class BrokerAdapter(Component):
    """The broker of a graph whose orders go to an :class:`ExecutionClient`.

    Subscribes like the simulated broker (approved requests at ``ROUTING``, market data at
    ``EXECUTION`` for a :class:`MarketDriven` client) and publishes what the client
    reports on ``FILLS`` and ``ORDER_EVENTS``, so the rest of the graph cannot tell which
    venue it trades with.

    What the graph expects of the account is ``expected_positions`` (signed, by symbol)
    and ``expected_orders`` (orders placed earlier and still working, e.g. from a
    journal), plus every fill and order event the adapter has published since; it is
    compared with the venue's account at start and after every reconnect (see the module
    docstring for ``on_mismatch``). ``expected_cash`` (None: not compared) is checked at
    start and only reported. ``venue`` names the venue in events and logs.
    """

    def __init__(
        self,
        client: ExecutionClient,
        *,
        expected_positions: Mapping[str, float] | None = None,
        expected_orders: Sequence[VenueOrder] = (),
        expected_cash: float | None = None,
        on_mismatch: Mismatch = "fail",
        backoff: Backoff | None = None,
        venue: str | None = None,
        name: str = "broker",
    ) -> None:
        super().__init__(name)
        if not isinstance(client, ExecutionClient):
            raise ProtocolError(f"{client!r} does not implement the ExecutionClient protocol")
        self.client = client
        self.venue = venue or type(client).__name__
        self.expected = dict(expected_positions or {})
        self.positions: dict[str, float] = dict(self.expected)
        self.working: dict[str, VenueOrder] = {o.order_id: o for o in expected_orders}
        self.expected_cash = expected_cash
        self.on_mismatch = on_mismatch
        self.backoff = backoff or Backoff()
        self.market_driven = isinstance(client, MarketDriven)
        self.reconnects = 0
        self.mismatches: dict[str, tuple[float, float]] = {}
        self.reconciled: list[AccountReconciled] = []
        self._warming = False

    async def on_start(self) -> None:
        await self._connect()
        await self._reconcile("start")

    async def on_stop(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------------ venue reports

    def _report(self, event: Event) -> None:
        """What the client reports: tracked (the graph's view of the account), then
        published."""
        if isinstance(event, VenueConnection):
            self._on_link(event)
            return
        if isinstance(event, OrderFilled):
            self._track_fill(event)
            self.publish(FILLS, event)
            return
        self._track_order(event)
        self.publish(ORDER_EVENTS, event)

    def _track_fill(self, fill: OrderFilled) -> None:
        held = self.positions.get(fill.symbol, 0.0) + fill.side.sign * fill.quantity
        self.positions[fill.symbol] = held
        order = self.working.get(fill.order_id)
        if fill.remaining_quantity <= 0.0:
            self.working.pop(fill.order_id, None)
        elif order is not None:
            filled = order.filled_quantity + fill.quantity
            self.working[fill.order_id] = msgspec.structs.replace(order, filled_quantity=filled)

    def _track_order(self, event: Event) -> None:
        if isinstance(event, OrderAccepted):
            if event.order_id not in self.working:
                self.working[event.order_id] = self._child(event)
        elif isinstance(event, OrderCancelled | OrderExpired):
            self.working.pop(event.order_id, None)
        elif isinstance(event, OrderRejected):
            if event.request is RequestKind.SUBMIT:
                self.working.pop(event.order_id, None)
        elif isinstance(event, OrderUpdated):
            order = self.working.get(event.order_id)
            if order is not None:
                self.working[event.order_id] = msgspec.structs.replace(
                    order,
                    quantity=event.quantity,
                    filled_quantity=event.filled_quantity,
                    limit_price=event.limit_price,
                    stop_price=event.stop_price,
                )

    def _child(self, event: OrderAccepted) -> VenueOrder:
        """An accepted order the adapter did not submit itself: a bracket child
        (``<parent>.sl``/``.tp``: the parent's opposite side) or an order placed by the
        client on the graph's behalf."""
        parent_id, _, leg = event.order_id.rpartition(".")
        parent = self.working.get(parent_id) if leg in ("sl", "tp") else None
        sell = parent is None or parent.side is OrderSide.BUY
        return VenueOrder(
            order_id=event.order_id,
            strategy_id=event.strategy_id,
            symbol=event.symbol,
            side=OrderSide.SELL if sell else OrderSide.BUY,
            quantity=parent.filled_quantity if parent is not None else 0.0,
            status="accepted",
        )

    def _on_link(self, event: VenueConnection) -> None:
        self.publish(VENUE, event)
        if event.state is VenueLink.RESTORED:
            self.reconnects += 1
            self.context.deliver(Phase.SESSION, self._after_restore, event, self.name)
        elif event.state is VenueLink.FAILED:
            self.context.deliver(Phase.SESSION, self._link_failed, event, self.name)

    async def _after_restore(self, event: VenueConnection) -> None:
        await self._reconcile("reconnect")

    def _link_failed(self, event: VenueConnection) -> None:
        raise VenueError(f"{self.venue} {event.link}: {event.reason or 'connection failed'}")

    # ------------------------------------------------------------------ reconciliation

    async def _reconcile(self, reason: str) -> None:
        """Compare the venue's account with the graph's view and publish the result."""
        client = self.client
        if isinstance(client, Resumable) and self.working:
            orders = sorted(self.working.values(), key=lambda o: o.order_id)
            await self.backoff.retry(
                lambda: client.resume(orders), what=f"{self.name}: resume", log=self.log
            )
        state = await self._account()
        starting = reason == "start"
        differences = reconcile_account(
            self.positions,
            {o.order_id: o.symbol for o in self.working.values()},
            state,
            cash=self.expected_cash if starting else None,
        )
        self.mismatches = {
            d.subject: (d.expected or 0.0, d.actual or 0.0)
            for d in differences
            if d.kind == "position"
        }
        for difference in differences:
            self.log.warning(
                "account_differs",
                venue=self.venue,
                reason=reason,
                kind=difference.kind,
                detail=difference.detail,
            )
        binding = [d for d in differences if d.kind != "cash"]
        if starting and binding and self.on_mismatch == "fail":
            lines = "; ".join(d.detail for d in binding)
            raise ReconcileError(
                f"the account at {self.venue} differs from the graph's: {lines}; flatten the "
                "account (or cancel those orders), pass expected_positions/expected_orders, "
                "or use on_mismatch='warn' (report only) or 'adopt' (start from the account)"
            )
        adopted = starting and self.on_mismatch == "adopt"
        if adopted:
            await self._adopt(state)
        now = self.now_ns()
        event = AccountReconciled(
            ts_event=now,
            ts_init=now,
            venue=self.venue,
            reason=reason,
            cash=state.cash,
            equity=state.equity,
            positions=dict(state.positions),
            avg_prices=dict(state.avg_prices),
            open_orders=list(state.open_orders),
            differences=differences,
            adopted=adopted,
        )
        self.reconciled.append(event)
        self.publish(VENUE, event)

    async def _account(self) -> AccountState:
        client = self.client
        if isinstance(client, AccountSource):
            return await self.backoff.retry(
                client.account, what=f"{self.name}: account", log=self.log
            )
        held = await self.backoff.retry(
            client.positions, what=f"{self.name}: positions", log=self.log
        )
        return AccountState(positions=held)

    async def _adopt(self, state: AccountState) -> None:
        """The venue's account becomes the starting state: its positions are what the
        graph holds, and this session's orders working there are tracked."""
        self.positions = dict(state.positions)
        ours = [o for o in state.open_orders if o.order_id and o.order_id not in self.working]
        for order in ours:
            self.working[order.order_id] = order
        if ours and isinstance(self.client, Resumable):
            await self.client.resume(ours)

    # ------------------------------------------------------------------ requests

    async def _connect(self) -> None:
        await self.backoff.retry(
            lambda: self.client.connect(self._report), what=f"{self.name}: connect", log=self.log
        )

    async def _call(self, call: Callable[..., Awaitable[T]], what: str, *args: Any) -> T:
        """A client call; on ConnectionLost reconnect (with backoff), reconcile, and call
        again."""
        try:
            return await call(*args)
        except ConnectionLost as exc:
            self.log.warning("connection_lost", during=what, error=str(exc))
            self.reconnects += 1
            await self._connect()
            await self._reconcile("reconnect")
            return await call(*args)

    @on(VENUE, phase=Phase.SESSION)
    def _on_venue(self, event: AccountReconciled | VenueConnection) -> None:
        if isinstance(event, VenueConnection) and event.link == MARKET_DATA_LINK:
            if event.state is VenueLink.WARMING_UP:
                self._warming = True
            elif event.state in (VenueLink.CONNECTED, VenueLink.RESTORED):
                self._warming = False

    @on(MARKET, phase=Phase.EXECUTION)
    async def _on_market(self, batch: MarketBatch) -> None:
        if self.market_driven:
            await self._call(self.client.on_market, "on_market", batch)  # type: ignore[attr-defined]

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    async def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if self._warming:
            self._refuse_warmup(request)
        elif isinstance(request, SubmitOrder):
            if request.order_id not in self.working:
                self.working[request.order_id] = _submitted(request)
            await self._call(self.client.submit, "submit", request)
        elif isinstance(request, CancelOrder):
            await self._call(self.client.cancel, "cancel", request)
        else:
            await self._call(self.client.modify, "modify", request)

    def _refuse_warmup(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        now = self.now_ns()
        kind = (
            RequestKind.SUBMIT
            if isinstance(request, SubmitOrder)
            else RequestKind.CANCEL
            if isinstance(request, CancelOrder)
            else RequestKind.MODIFY
        )
        self.publish(
            ORDER_EVENTS,
            OrderRejected(
                ts_event=now,
                ts_init=now,
                order_id=request.order_id,
                strategy_id=request.strategy_id,
                symbol=getattr(request, "symbol", ""),
                rule="warmup",
                reason=f"{kind} of {request.order_id} on a warm-up bar: warm-up bars are "
                "history, orders go to the venue from the first live bar on",
                request=kind,
            ),
        )


def _submitted(request: SubmitOrder) -> VenueOrder:
    return VenueOrder(
        order_id=request.order_id,
        strategy_id=request.strategy_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        order_type=request.order_type,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        status="submitted",
    )


class FeedAdapter(Component):
    """The feed of a graph whose market data comes from a :class:`MarketDataClient`.

    Connects (with backoff) and subscribes at start, publishing ``session`` (the
    handshake; None: none) first; each batch the client delivers is published on
    ``MARKET`` as it arrives. With ``warmup`` > 0 and a :class:`HistorySource` client,
    the last ``warmup`` timestamps are replayed first, one alarm each, between a
    ``warming_up`` and a ``connected`` :class:`~ml4t.backtest.events.VenueConnection`
    (the broker adapter refuses orders in between); live batches that arrive meanwhile
    wait, and one not after the last warm-up bar is dropped. On a
    :class:`~ml4t.backtest.live.DrivenClock` each batch's time becomes *now*. Run it on a
    wall clock.
    """

    def __init__(
        self,
        client: MarketDataClient,
        *,
        symbols: Sequence[str] = (),
        session: SessionStarted | None = None,
        warmup: Annotated[int, msgspec.Meta(ge=0)] = 0,
        backoff: Backoff | None = None,
        venue: str | None = None,
        name: str = "feed",
    ) -> None:
        super().__init__(name)
        if not isinstance(client, MarketDataClient):
            raise ProtocolError(f"{client!r} does not implement the MarketDataClient protocol")
        if warmup and not isinstance(client, HistorySource):
            raise ProtocolError(
                f"warmup={warmup} needs a client with history() (HistorySource); "
                f"{type(client).__name__} has none: use warmup=0"
            )
        self.client = client
        self.symbols = tuple(symbols)
        self.session = session
        self.warmup = warmup
        self.backoff = backoff or Backoff()
        self.venue = venue or type(client).__name__
        self.batches = 0
        self.dropped = 0
        self._held: list[MarketBatch] | None = None  # live batches waiting for warm-up
        self._last_ts: int | None = None

    async def on_start(self) -> None:
        if self.clock.is_simulated:
            raise ComponentError(
                f"{self.name}: a live feed needs a wall clock (its data arrives in real "
                "time); run the graph on WallClock",
                component=self.name,
            )
        if isinstance(self.client, ConnectionReporting):
            self.client.report_to(self._on_link)
        if self.session is not None:
            now = self.now_ns()
            self.publish(SESSION, msgspec.structs.replace(self.session, ts_event=now, ts_init=now))
        await self.backoff.retry(self.client.connect, what=f"{self.name}: connect", log=self.log)
        history: list[MarketBatch] = []
        if self.warmup and isinstance(self.client, HistorySource):
            self._held = []
            client = self.client
            history = await self.backoff.retry(
                lambda: client.history(self.symbols, self.warmup),
                what=f"{self.name}: warm-up",
                log=self.log,
            )
        await self.backoff.retry(
            lambda: self.client.subscribe(self.symbols, self._on_batch),
            what=f"{self.name}: subscribe",
            log=self.log,
        )
        if self._held is None:
            self._link(VenueLink.CONNECTED)
            return
        self._link(VenueLink.WARMING_UP, f"replaying {len(history)} warm-up bar(s)")
        now = self.now_ns()
        for batch in history:
            self.clock.schedule(
                now,
                functools.partial(self._publish, batch),
                priority=AlarmPriority.DATA,
                owner=self.name,
            )
        self.clock.schedule(now, self._live, priority=AlarmPriority.DATA, owner=self.name)

    async def on_stop(self) -> None:
        await self.client.close()

    def _link(self, state: VenueLink, reason: str = "") -> None:
        now = self.now_ns()
        self.publish(
            VENUE,
            VenueConnection(
                ts_event=now,
                ts_init=now,
                venue=self.venue,
                link=MARKET_DATA_LINK,
                state=state,
                reason=reason,
            ),
        )

    def _live(self) -> None:
        """Warm-up done: live from here on, starting with what arrived meanwhile."""
        held, self._held = self._held or [], None
        self._link(VenueLink.CONNECTED)
        for batch in held:
            self._publish(batch)

    def _on_link(self, event: VenueConnection) -> None:
        self.publish(VENUE, event)
        if event.state is VenueLink.FAILED:
            self.context.deliver(Phase.SESSION, self._link_failed, event, self.name)

    def _link_failed(self, event: VenueConnection) -> None:
        raise VenueError(f"{self.venue} {event.link}: {event.reason or 'connection failed'}")

    def _on_batch(self, batch: MarketBatch) -> None:
        if self._held is not None:
            self._held.append(batch)
        else:
            self._publish(batch)

    def _publish(self, batch: MarketBatch) -> None:
        ts = batch.ts_event
        if self._last_ts is not None and ts <= self._last_ts:
            self.dropped += 1  # a bar already covered (by warm-up, or a replayed stream)
            self.log.warning("stale_batch_dropped", ts=ts, last=self._last_ts)
            return
        self._last_ts = ts
        clock = self.clock
        if isinstance(clock, DrivenClock) and ts > clock.now_ns():
            clock.advance_to(ts)
        self.batches += 1
        self.publish(MARKET, batch)
