"""The feed and broker of ``ml4t live``: the adapter components, as a live session needs them.

:class:`LiveFeed` and :class:`LiveBroker` are the :class:`~ml4t.backtest.live.FeedAdapter`
and :class:`~ml4t.backtest.live.BrokerAdapter` with what a live session adds:

- **Every input is an alarm.** A bar from the data client, and a report the venue sends
  on its own (a fill, a cancel confirmed), is scheduled on the clock at *now* instead of
  published from the client's task, so it is handled in a wake-up of its own: on a
  :class:`~ml4t.backtest.live.LiveClock` everything that follows from it carries one
  clock time, in the journal too. What a venue answers while it is being called (an
  in-process venue's fills at a bar, an acknowledgement at a submit) is published at
  once, inside the delivery that called it, exactly as the simulated broker does.
- **The session handshake.** The feed publishes ``SessionStarted`` (the run id, the
  universe, the starting cash) before anything else, and re-codes each batch to the
  universe's ``symbol`` Enum (rows of other symbols are dropped), so a vendor's frames
  need not know the codes.
- **A restart** (``resuming=True``): until the graph has replayed the session's journal
  (:mod:`~ml4t.backtest.live.resume`), the feed holds the live bars and the broker sends
  nothing to the venue and holds what it reports; ``SessionResumed`` releases both. An
  order the replayed graph holds open that the venue never answered (sent just before
  a crash, or made in the journal's last, cut-short wake-up) is submitted now: order ids
  are idempotency keys, so a venue that has it already ignores it. A venue whose state
  lived in this process and died with it (``rebuild_venue``: the simulated one) is
  rebuilt instead: the replay hands it the same bars and requests as before, in the
  same order, and it makes the same fills (its reports are dropped: the journal's are
  replayed), so it holds the same orders and positions when the live part begins.

:class:`SimulatedVenue` is forward testing's venue: the simulated broker behind the
execution-client interface (the backtest's fill rules on live bars), able to start from
the positions a journal left. :class:`SessionControl` is the session's hand on the bus:
it publishes a :class:`~ml4t.backtest.events.StopTrading` in a wake-up of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import polars as pl

from ml4t.backtest.bus import Phase
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.component import Component, on
from ml4t.backtest.data.feed import OHLCV
from ml4t.backtest.errors import ML4TError
from ml4t.backtest.events import (
    CancelOrder,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    RequestKind,
    SessionResumed,
    SessionStarted,
    StopAction,
    StopTrading,
    SubmitOrder,
)
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.live.adapters import (
    Backoff,
    BrokerAdapter,
    ExecutionClient,
    FeedAdapter,
    MarketDataClient,
    reconcile,
)
from ml4t.backtest.live.clients import SimulatedExecution
from ml4t.backtest.topics import (
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDERS_APPROVED,
    RESUMES,
    SESSION,
    TRADING_CONTROL,
)

T = TypeVar("T")

__all__ = ["AdapterError", "LiveBroker", "LiveFeed", "SessionControl", "SimulatedVenue"]

Redact = Callable[[str], str]


class AdapterError(ML4TError):
    """An adapter's error as a live session reports it: ``Type: message`` with every
    credential masked (the original, whose text or traceback may quote one, is dropped)."""


async def _scrubbed(redact: Redact | None, call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``; an exception is raised again with credentials masked."""
    if redact is None:
        return await call()
    try:
        return await call()
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        clean = redact(text)
        if clean == text:
            raise
        raise AdapterError(clean + " (traceback withheld: it quoted a credential)") from None


class LiveFeed(FeedAdapter):
    """The feed of a live session (see the module): the handshake, batches re-coded to
    ``symbols`` and published each in a wake-up of its own; held during a restart's
    replay. Follows the :class:`~ml4t.backtest.protocols.Feed` protocol (times unknown)."""

    first_ts: int | None = None
    last_ts: int | None = None

    def __init__(
        self,
        client: MarketDataClient,
        *,
        symbols: Sequence[str],
        session: SessionStarted,
        resuming: bool = False,
        backoff: Backoff | None = None,
        redact: Redact | None = None,
        name: str = "feed",
    ) -> None:
        super().__init__(client, symbols=symbols, backoff=backoff, name=name)
        self.redact = redact
        self.handshake = session
        self.resuming = resuming
        self._enum = pl.Enum(list(symbols))
        self._waiting: list[MarketBatch] | None = [] if resuming else None
        self.dropped_rows = 0
        self.last_batch_ns: int | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return ("symbol", *OHLCV)

    def prepare(self) -> None:
        """Nothing to check before the start: the data arrives live."""

    async def on_start(self) -> None:
        if not self.resuming:  # a restart replays the journal's handshake instead
            now = self.now_ns()
            self.publish(
                SESSION,
                msgspec.structs.replace(
                    self.handshake, ts_event=now, ts_init=now, symbols=list(self.symbols)
                ),
            )
        await _scrubbed(self.redact, super().on_start)

    def _on_batch(self, batch: MarketBatch) -> None:
        recoded = self._recode(batch)
        if recoded is None:
            return
        if self._waiting is not None:
            self._waiting.append(recoded)
        else:
            self._schedule(recoded)

    def _schedule(self, batch: MarketBatch) -> None:
        def publish() -> None:
            self.batches += 1
            self.last_batch_ns = batch.ts_event
            self.publish(MARKET, batch)

        self.clock.schedule(self.now_ns(), publish, priority=AlarmPriority.DATA, owner=self.name)

    def _recode(self, batch: MarketBatch) -> MarketBatch | None:
        """The batch with ``symbol`` as the universe's Enum, other symbols' rows dropped."""
        frame = batch.frame
        if frame.schema.get("symbol") != self._enum:
            names = frame.get_column("symbol").cast(pl.String)
            known = names.is_in(list(self.symbols))
            if not known.all():
                self.dropped_rows += int((~known).sum())
                frame = frame.filter(known)
            frame = frame.with_columns(names.filter(known).cast(self._enum).alias("symbol"))
        if frame.height == 0:
            return None
        return MarketBatch(
            ts_event=batch.ts_event, ts_init=batch.ts_init, frame=frame, context=batch.context
        )

    @on(RESUMES, phase=Phase.SESSION)
    def _on_resumed(self, event: SessionResumed) -> None:
        waiting, self._waiting = self._waiting, None
        for batch in waiting or ():
            self._schedule(batch)


class LiveBroker(BrokerAdapter):
    """The broker of a live session (see the module): venue reports each in a wake-up of
    their own unless answered during a call; nothing sent during a restart's replay; the
    open orders of an in-process venue resubmitted after it."""

    def __init__(
        self,
        client: ExecutionClient,
        *,
        expected_positions: Mapping[str, float] | None = None,
        on_mismatch: Any = "fail",
        backoff: Backoff | None = None,
        resuming: bool = False,
        rebuild_venue: bool = False,
        redact: Redact | None = None,
        name: str = "broker",
    ) -> None:
        super().__init__(
            client,
            expected_positions=expected_positions,
            on_mismatch=on_mismatch,
            backoff=backoff,
            name=name,
        )
        self.resuming = resuming
        self.rebuild_venue = rebuild_venue
        self.redact = redact
        self.open: dict[str, SubmitOrder] = {}  # working orders, quantity left to fill
        self.restored: list[str] = []  # submitted again after a restart
        self.answered: set[str] = set()  # orders the venue said anything about
        self._waiting: list[Event] | None = [] if resuming else None
        self._answering = False  # inside a call to the venue: its answers are published now
        self._muted = False  # rebuilding the venue: its answers are the journal's
        self.venue_mismatches: dict[str, tuple[float, float]] = {}

    # ------------------------------------------------------------ the venue's reports

    def _report(self, event: Event) -> None:
        if self._muted:
            return
        if self._waiting is not None:
            self._waiting.append(event)
        elif self._answering:
            super()._report(event)
        else:
            publish = super()._report
            self.clock.schedule(
                self.now_ns(), lambda: publish(event), priority=AlarmPriority.DATA, owner=self.name
            )

    async def _answered(self, call: Callable[..., Any], what: str, *args: Any) -> None:
        if self.resuming:
            if not self.rebuild_venue:
                return  # the replay answers from the journal
            self._muted = True
        self._answering = True
        try:
            await _scrubbed(self.redact, lambda: self._call(call, what, *args))
        finally:
            self._answering = self._muted = False

    async def on_start(self) -> None:
        await _scrubbed(self.redact, super().on_start)

    # ------------------------------------------------------------ the bus

    @on(MARKET, phase=Phase.EXECUTION)
    async def _on_market(self, batch: MarketBatch) -> None:
        if self.market_driven:
            await self._answered(self.client.on_market, "on_market", batch)  # type: ignore[attr-defined]

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    async def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if isinstance(request, SubmitOrder):
            self.open[request.order_id] = request
        if isinstance(request, SubmitOrder):
            await self._answered(self.client.submit, "submit", request)
        elif isinstance(request, CancelOrder):
            await self._answered(self.client.cancel, "cancel", request)
        else:
            await self._answered(self.client.modify, "modify", request)

    @on(FILLS, phase=Phase.RECORD)
    def _follow_fill(self, fill: OrderFilled) -> None:
        self.answered.add(fill.order_id)
        order = self.open.get(fill.order_id)
        if order is None:
            return
        if fill.remaining_quantity <= 0.0:
            del self.open[fill.order_id]
        else:
            self.open[fill.order_id] = msgspec.structs.replace(
                order, quantity=fill.remaining_quantity
            )

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _follow_order(self, event: Any) -> None:
        self.answered.add(event.order_id)
        if isinstance(event, OrderCancelled | OrderExpired) or (
            isinstance(event, OrderRejected) and event.request is RequestKind.SUBMIT
        ):
            self.open.pop(event.order_id, None)

    @on(RESUMES, phase=Phase.SESSION)
    async def _on_resumed(self, event: SessionResumed) -> None:
        self.resuming = False
        if self.rebuild_venue:
            held = await _scrubbed(
                self.redact, lambda: self._call(self.client.positions, "positions")
            )
            self.venue_mismatches = reconcile(event.positions, held)
            if self.venue_mismatches:
                self.log.warning("rebuilt_venue_differs", mismatches=self.venue_mismatches)
        for order_id in sorted(self.open):
            if order_id not in self.answered:  # the venue ignores an id it has
                self.restored.append(order_id)
                await self._answered(self.client.submit, "submit", self.open[order_id])
        waiting, self._waiting = self._waiting, None
        for report in waiting or ():
            self._report(report)


class SimulatedVenue(SimulatedExecution):
    """The simulated broker as a venue for forward testing: the ``execution`` section's
    fill rules, with the account kind's cash policy, over the run's universe."""

    def __init__(
        self,
        config: BrokerConfig,
        *,
        symbols: Sequence[str],
        calendar: Any = None,
        timezone: str | None = None,
        cash_account: bool = False,
    ) -> None:
        super().__init__(config, calendar=calendar, symbols=symbols)
        self.broker = SimulatedBroker(
            config,
            calendar=calendar,
            timezone=timezone,
            cash_account=cash_account,
            symbols=symbols,
        )


class SessionControl(Component):
    """The session's hand on the bus: :meth:`stop_trading` publishes a ``StopTrading`` in
    a wake-up of its own (an alarm at now), so the journal records it as an input."""

    relay = True

    def __init__(self, name: str = "session-control") -> None:
        super().__init__(name)
        self.requests: list[StopTrading] = []

    def stop_trading(
        self,
        action: StopAction,
        reason: str,
        *,
        source: str,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Ask the risk manager to stop trading (from any task of the session's loop);
        ``then`` is called once the request is published."""

        def publish() -> None:
            now = self.now_ns()
            command = StopTrading(
                ts_event=now, ts_init=now, action=action, reason=reason, source=source
            )
            self.requests.append(command)
            self.publish(TRADING_CONTROL, command)
            if then is not None:
                then()

        self.clock.schedule(self.now_ns(), publish, priority=AlarmPriority.DATA, owner=self.name)
