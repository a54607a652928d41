"""Restarting a live session from its journal (``ml4t live --resume RUN_DIR``).

A restarted session rebuilds its state the way it was made: the journal's *inputs* are
replayed through the same graph, and every component (portfolio, risk manager, the
strategies with whatever they keep, the recorder) computes its state again from them,
order-id counters included. Nothing is restored by hand, and a strategy that does not
re-make the journal's orders is caught (``live.on_divergence``).

The journal holds every event with the clock time of the wake-up it happened in
(:class:`~ml4t.backtest.live.LiveClock`). :class:`ReplayPlan` sorts each wake-up's events
into:

- **inputs**, published again by :class:`JournalVenue` at their clock time: the feed's
  handshake, bars and corporate actions; an operator's ``StopTrading``; a report the
  venue sent on its own (the first event of its wake-up);
- **the venue's answers** (fills, acknowledgements, cancels, the venue's rejections)
  given during a call: published when the replayed graph makes that call again (the
  bar the venue filled on, the approved request it answered), as the venue did; an
  answer whose call is not made again is published at the end of its wake-up;
- **everything else** (requests, approvals, positions, snapshots, the risk manager's
  own rejections, a stop's effects): made again by the graph, not replayed.

A stop the session itself asked for (``cancel_on_stop`` at Ctrl-C) is not replayed: the
restarted session trades on, and the venue's answers to those cancels still arrive.
While the replay runs the clock steps with the journal and nothing reaches the venue or
the journal file; at its end :class:`JournalVenue` publishes ``SessionResumed`` (the
journal's resume marker, with the state restored), and the live part begins.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec

from ml4t.backtest.bus import Phase, Topic
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ComponentError, ConfigError
from ml4t.backtest.events import (
    CancelOrder,
    CorporateAction,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderFilled,
    OrderRejected,
    PositionChanged,
    RequestKind,
    SessionResumed,
    SessionStarted,
    StopTrading,
    SubmitOrder,
    TradingStopped,
)
from ml4t.backtest.live.clocks import LiveClock
from ml4t.backtest.record.journal import STANDARD_TOPICS, JournalReader, continuation
from ml4t.backtest.risk.killswitch import StopBook
from ml4t.backtest.topics import (
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDERS_APPROVED,
    POSITIONS,
    RESUMES,
    SESSION,
    TRADING_CONTROL,
)

__all__ = ["JournalVenue", "ReplayPlan"]

SESSION_SOURCE = "session"
"""The ``source`` of the ``StopTrading`` a stopping session publishes (not replayed)."""

_INPUTS = frozenset({SESSION.name, CORPORATE_ACTIONS.name, MARKET.name, TRADING_CONTROL.name})
_BY_NAME: Mapping[str, Topic[Any]] = MappingProxyType(
    {topic.name: topic for topic in STANDARD_TOPICS}
)


class _Item:
    __slots__ = ("event", "group", "sent", "topic")

    def __init__(self, topic: Topic[Any], event: Event, group: int) -> None:
        self.topic = topic
        self.event = event
        self.group = group
        self.sent = False


class _Group(NamedTuple):
    clock_ns: int
    inputs: list[_Item]
    answers: list[_Item]  # the venue's answers in this wake-up, in journal order


def _request_key(request: SubmitOrder | CancelOrder | ModifyOrder) -> tuple[str, ...]:
    kind = (
        RequestKind.SUBMIT
        if isinstance(request, SubmitOrder)
        else RequestKind.CANCEL
        if isinstance(request, CancelOrder)
        else RequestKind.MODIFY
    )
    return ("request", kind.value, request.order_id)


def _same_order(a: SubmitOrder, b: SubmitOrder) -> bool:
    """Equal but for their timestamps (a replayed clock is the journal's, not the wall's)."""
    return msgspec.structs.replace(a, ts_event=0, ts_init=0) == msgspec.structs.replace(
        b, ts_event=0, ts_init=0
    )


class ReplayPlan:
    """A journal sorted for a restart (see the module): wake-ups with their inputs, the
    venue's answers keyed by the call they answered, and the orders the journal's graph
    made (to check the replay against)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.ended = continuation(self.path).ended
        reader = JournalReader(self.path)
        self.header = reader.header
        self.groups: list[_Group] = []
        self.by_call: dict[tuple[str, ...], deque[_Item]] = {}
        self.orders: list[SubmitOrder] = []
        self.session: SessionStarted | None = None
        self._venue = StopBook()  # the venue's fills, for the positions it holds
        self.stopped: TradingStopped | None = None  # by the kill switch or an operator
        self.events = 0
        self.first_ns = self.last_ns = 0
        self._read(iter(reader))
        self.positions: dict[str, float] = {}
        """Signed quantity per symbol from the journal's fills: what the venue holds."""
        for (_, symbol), qty in self._venue.held.items():
            total = self.positions.get(symbol, 0.0) + qty
            self.positions[symbol] = total
        self.positions = {s: q for s, q in sorted(self.positions.items()) if abs(q) > 1e-9}
        if self.session is None:
            raise ConfigError(f"{self.path}: the journal has no SessionStarted: nothing to resume")

    def _read(self, entries: Iterator[Any]) -> None:
        approved: dict[tuple[str, str], int] = {}  # (order id, kind) -> approvals unanswered
        for clock, group in itertools.groupby(entries, key=lambda e: e.clock_ns):
            index = len(self.groups)
            current = _Group(clock, [], [])
            calls: dict[str, tuple[str, ...]] = {}  # order id -> its latest call here
            bar: tuple[str, ...] | None = None
            for entry in group:
                self.events += 1
                topic, event = entry.topic, entry.event
                if topic in _INPUTS:
                    if isinstance(event, StopTrading) and event.source == SESSION_SOURCE:
                        continue
                    if isinstance(event, SessionStarted) and self.session is None:
                        self.session = event
                    current.inputs.append(_Item(_BY_NAME[topic], event, index))
                    if isinstance(event, MarketBatch):
                        bar = ("bar", str(event.ts_event))
                    elif isinstance(event, CorporateAction):
                        self._venue.on_action(event)
                elif topic == ORDERS_APPROVED.name:
                    key = _request_key(event)
                    calls[event.order_id] = key
                    pair = (key[1], key[2])
                    approved[pair] = approved.get(pair, 0) + 1
                    if isinstance(event, SubmitOrder):
                        self.orders.append(event)
                elif topic in (FILLS.name, ORDER_EVENTS.name):
                    if isinstance(event, OrderRejected):
                        key2 = (event.request.value, event.order_id)
                        if not approved.get(key2):
                            continue  # the risk manager's: made again by the replay
                        approved[key2] -= 1
                    if isinstance(event, OrderFilled):
                        self._venue.on_fill(event)
                    item = _Item(_BY_NAME[topic], event, index)
                    call = calls.get(event.order_id) or bar
                    if call is None:  # reported on its own: an input of its wake-up
                        current.inputs.append(item)
                    else:
                        self.by_call.setdefault(call, deque()).append(item)
                        current.answers.append(item)
                elif (
                    isinstance(event, TradingStopped)
                    and event.source != SESSION_SOURCE
                    and self.stopped is None
                ):
                    self.stopped = event
            if not self.groups:
                self.first_ns = clock
            self.last_ns = clock
            self.groups.append(current)

    def answers_to(self, call: tuple[str, ...]) -> Iterable[_Item]:
        """The venue's answers to ``call`` not published yet (each is published once)."""
        queue = self.by_call.get(call)
        while queue:
            item = queue.popleft()
            if not item.sent:
                yield item


class JournalVenue(Component):
    """Replays a :class:`ReplayPlan` through the graph on a replaying
    :class:`~ml4t.backtest.live.LiveClock`, answering as the venue did, then publishes
    ``SessionResumed`` and hands the clock back to the wall (see the module).

    ``on_divergence``: ``fail`` (a ComponentError: the session does not resume) or
    ``warn`` when the replayed strategies make other orders than the journal holds.
    """

    relay = True  # it republishes what the feed, the venue and an operator published

    def __init__(
        self,
        plan: ReplayPlan,
        *,
        run_id: str,
        on_divergence: str = "fail",
        name: str = "journal-replay",
    ) -> None:
        super().__init__(name)
        self.plan = plan
        self.run_id = run_id
        self.on_divergence = on_divergence
        self.divergence = ""
        self.made = 0  # orders the replay made, compared with the journal's
        self.beyond: list[str] = []  # made in the journal's last wake-up, not journaled
        self.book = StopBook()
        self.positions: dict[str, float] = {}
        self.done = False

    def on_start(self) -> None:
        clock = self.clock
        if not (isinstance(clock, LiveClock) and clock.replaying):
            raise ComponentError(
                f"{self.name}: a journal is replayed on a LiveClock started with "
                "replay_from_ns (the journal's first clock time)",
                component=self.name,
            )
        for index, group in enumerate(self.plan.groups):
            ts = group.clock_ns
            clock.schedule(ts, partial(self._inputs, index), priority=AlarmPriority.DATA)
            clock.schedule(ts, partial(self._leftovers, index), priority=AlarmPriority.SESSION)
        clock.schedule(self.plan.last_ns, self._finish, priority=AlarmPriority.SESSION + 1)

    def _send(self, items: Iterable[_Item]) -> None:
        for item in items:
            if not item.sent:
                item.sent = True
                self.publish(item.topic, item.event)

    def _inputs(self, index: int) -> None:
        self._send(self.plan.groups[index].inputs)

    def _leftovers(self, index: int) -> None:
        self._send(self.plan.groups[index].answers)

    # ------------------------------------------------------------ answering as the venue

    @on(MARKET, phase=Phase.EXECUTION)
    def _on_market(self, batch: MarketBatch) -> None:
        if not self.done:
            self._send(self.plan.answers_to(("bar", str(batch.ts_event))))

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    def _on_approved(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if self.done:
            return
        if isinstance(request, SubmitOrder):
            self.book.on_approved(request)
            self._check(request)
        self._send(self.plan.answers_to(_request_key(request)))

    def _check(self, order: SubmitOrder) -> None:
        orders, n = self.plan.orders, self.made
        self.made += 1
        if self.divergence:
            return
        if n >= len(orders):
            if self.now_ns() >= self.plan.last_ns:
                # the journal's last wake-up, which a kill may have cut short: the graph
                # goes on making what it would have made; these reach the venue next
                self.beyond.append(order.order_id)
                return
            self._diverged(f"order #{n + 1} ({order.order_id}) is not in the journal")
        elif not _same_order(orders[n], order):
            self._diverged(
                f"order #{n + 1}: the journal has {_describe(orders[n])}, the replay made "
                f"{_describe(order)}"
            )

    def _diverged(self, what: str) -> None:
        self.divergence = what
        if self.on_divergence == "fail":
            raise ComponentError(
                f"resuming {self.plan.path}: the replayed strategies did not re-make the "
                f"journal's orders: {what}; a strategy must be a function of the events it "
                "sees to resume (live.on_divergence: warn resumes anyway)",
                component=self.name,
            )
        self.log.warning("replay_diverged", divergence=what)

    # ------------------------------------------------------------ the restored state

    @on(FILLS, phase=Phase.RECORD)
    def _on_fill(self, fill: OrderFilled) -> None:
        self.book.on_fill(fill)

    @on(ORDER_EVENTS, phase=Phase.RECORD)
    def _on_order_event(self, event: Any) -> None:
        self.book.on_order_event(event)

    @on(POSITIONS, phase=Phase.RECORD)
    def _on_position(self, event: PositionChanged) -> None:
        if event.quantity:
            self.positions[event.symbol] = event.quantity
        else:
            self.positions.pop(event.symbol, None)

    def _finish(self) -> None:
        if not self.divergence and self.made < len(self.plan.orders):
            missing = self.plan.orders[self.made]
            self._diverged(
                f"the replay made {self.made} orders; the next in the journal is "
                f"{_describe(missing)}"
            )
        self.done = True
        now = self.now_ns()
        plan = self.plan
        self.publish(
            RESUMES,
            SessionResumed(
                ts_event=now,
                ts_init=now,
                run_id=self.run_id,
                replayed=plan.events,
                first_ns=plan.first_ns,
                last_ns=plan.last_ns,
                positions=dict(sorted(self.positions.items())),
                open_orders=sorted(self.book.open),
                previous_end=plan.ended,
                divergence=self.divergence,
            ),
        )
        clock = self.clock
        assert isinstance(clock, LiveClock)
        clock.go_live()


def _describe(order: SubmitOrder) -> str:
    price = ""
    if order.limit_price is not None:
        price += f" limit {order.limit_price:g}"
    if order.stop_price is not None:
        price += f" stop {order.stop_price:g}"
    return (
        f"{order.order_id} {order.side.value} {order.quantity:g} {order.symbol} "
        f"{order.order_type.value}{price}"
    )
