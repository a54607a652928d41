"""The typed message bus.

A :class:`Topic` is declared with the event type it carries; publishing anything else
raises :class:`~ml4t.backtest.errors.BusError` at the call. ``publish`` never runs a
handler itself: it hands each delivery to the bus's dispatcher (see ``_dispatch``), which
in a backtest runs them in (phase, sequence) order and on a live graph puts them in each
component's inbox.

Phases order work within one timestamp (DESIGN §2): fills are applied before the
portfolio is marked, which happens before strategies see the bar, and so on. A delivery
with a lower phase runs first; deliveries with the same phase run in publish order, so a
subscription is strictly FIFO, and so is a subscriber whose subscriptions share a phase.

In strict mode every published event is encoded and decoded by the codec before it is
delivered, which proves the graph could be split across processes.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from types import UnionType
from typing import Any, Generic, TypeVar

from ml4t.backtest._dispatch import Delivery, Dispatcher, SequencedDispatcher
from ml4t.backtest.codec import Codec
from ml4t.backtest.errors import BusError, ComponentError
from ml4t.backtest.events import Event

__all__ = ["Bus", "Handler", "Phase", "RequestTopic", "Subscription", "Topic"]

E = TypeVar("E", bound=Event)
R = TypeVar("R", bound=Event)

Handler = Callable[[Any], Awaitable[None] | None]
"""A sync or async callable taking one event."""


class Phase(enum.IntEnum):
    """Order of work within one timestamp; lower runs first (DESIGN §2)."""

    SESSION = 0  # the run's shared facts (SessionStarted, UniverseChanged) reach every role
    EXECUTION = 10  # the broker matches open orders against the new bar; fills are applied
    VALUATION = 20  # the portfolio is marked to the bar's close
    STRATEGY = 30  # strategies see the bar and submit orders
    RISK = 40  # the risk manager approves or rejects
    ROUTING = 50  # approved orders reach the broker
    DEFAULT = 60
    RECORD = 90  # the recorder snapshots the state


def _type_name(typ: type | UnionType) -> str:
    return getattr(typ, "__name__", None) or str(typ)


class Topic(Generic[E]):
    """A named channel carrying events of one type (a class, or a union of classes).

    ``sender_field`` names a field that must equal the publishing component's name (the
    ``strategy_id`` of an order request): a component that publishes for another is a
    :class:`BusError` at the call, unless it is a declared relay
    (:attr:`~ml4t.backtest.component.Component.relay`).

    A ``retained`` topic (the session's facts) keeps every event published on it: a
    subscriber that joins later is handed them all, in publish order, before anything
    published after it subscribed, so a component added to a running graph knows what
    the ones there from the start know.
    """

    __slots__ = ("name", "retained", "sender_field", "type")

    def __init__(
        self,
        name: str,
        event_type: type[E] | UnionType,
        *,
        sender_field: str | None = None,
        retained: bool = False,
    ) -> None:
        if not name:
            raise BusError("a topic needs a non-empty name")
        members = event_type.__args__ if isinstance(event_type, UnionType) else (event_type,)
        for member in members:
            if not (isinstance(member, type) and issubclass(member, Event)):
                raise BusError(f"topic {name!r}: {member!r} is not an Event subclass")
        self.name = name
        self.type = event_type
        self.sender_field = sender_field
        self.retained = retained

    def __repr__(self) -> str:
        return f"Topic({self.name!r}, {_type_name(self.type)})"


class RequestTopic(Generic[E, R]):
    """A request/reply channel: one responder answers each request with one reply."""

    __slots__ = ("name", "reply_type", "request_type")

    def __init__(self, name: str, request_type: type[E], reply_type: type[R]) -> None:
        self.name = name
        self.request_type = request_type
        self.reply_type = reply_type

    def __repr__(self) -> str:
        return (
            f"RequestTopic({self.name!r}, {_type_name(self.request_type)} -> "
            f"{_type_name(self.reply_type)})"
        )


class Subscription:
    """One handler of one subscriber on one topic. ``active`` is False once removed."""

    __slots__ = ("active", "handler", "phase", "subscriber", "topic")

    def __init__(self, topic: Topic[Any], handler: Handler, subscriber: str, phase: int) -> None:
        self.topic = topic
        self.handler = handler
        self.subscriber = subscriber
        self.phase = phase
        self.active = True

    def __repr__(self) -> str:
        return f"Subscription({self.topic.name!r}, {self.subscriber!r}, phase={self.phase})"


class Bus:
    """Typed publish/subscribe and request/reply between components."""

    __slots__ = (
        "_codec",
        "_dispatcher",
        "_responders",
        "_retained",
        "_routes",
        "_subs",
        "_topics",
        "generation",
        "strict",
    )

    def __init__(self, *, strict: bool = False, codec: Codec | None = None) -> None:
        self.strict = strict
        self._codec = codec
        self._topics: dict[str, Topic[Any] | RequestTopic[Any, Any]] = {}
        self._subs: dict[str, tuple[Subscription, ...]] = {}
        self._routes: dict[str, tuple[Delivery, ...]] = {}  # _subs as the dispatcher takes them
        self._responders: dict[str, tuple[str, Callable[[Any], Any]]] = {}
        self._retained: dict[str, list[Any]] = {}
        self._dispatcher: Dispatcher = SequencedDispatcher()
        self.generation = 0  # grows with every subscription added or removed

    # ------------------------------------------------------------ set-up

    @property
    def codec(self) -> Codec:
        if self._codec is None:
            self._codec = Codec()
        return self._codec

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    def use_dispatcher(self, dispatcher: Dispatcher) -> None:
        """Replace the dispatcher (the runtime does this before it starts)."""
        if self._dispatcher.pending:
            raise BusError("cannot change the dispatcher while deliveries are pending")
        self._dispatcher = dispatcher

    def declare(self, topic: Topic[Any] | RequestTopic[Any, Any]) -> None:
        """Register ``topic``; a second topic of the same name must carry the same type."""
        known = self._topics.get(topic.name)
        if known is None:
            self._topics[topic.name] = topic
            return
        if known is topic:
            return
        same_kind = type(known) is type(topic)
        if same_kind and isinstance(topic, Topic) and known.type == topic.type:  # type: ignore[union-attr]
            return
        raise BusError(f"topic {topic.name!r} is already declared as {known!r}, not {topic!r}")

    def topics(self) -> list[str]:
        return sorted(self._topics)

    def subscribe(
        self,
        topic: Topic[E],
        handler: Callable[[E], Awaitable[None] | None],
        *,
        subscriber: str = "",
        phase: int = Phase.DEFAULT,
    ) -> Subscription:
        """Deliver every event published on ``topic`` to ``handler``, in publish order
        (on a retained topic, every event published before too)."""
        if not callable(handler):
            raise BusError(f"handler for {topic.name!r} is not callable: {handler!r}")
        self.declare(topic)
        sub = Subscription(topic, handler, subscriber or _handler_owner(handler), int(phase))
        self._set_subs(topic.name, (*self._subs.get(topic.name, ()), sub))
        for event in self._retained.get(topic.name, ()):
            if self.strict:
                event = self.codec.roundtrip(event)
            self._dispatcher.submit(sub.phase, sub.handler, event, sub.subscriber)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.active = False
        subs = self._subs.get(subscription.topic.name, ())
        self._set_subs(subscription.topic.name, tuple(s for s in subs if s is not subscription))

    def _set_subs(self, name: str, subs: tuple[Subscription, ...]) -> None:
        self.generation += 1
        self._subs[name] = subs
        self._routes[name] = tuple((s.phase, s.handler, s.subscriber) for s in subs)

    def subscriptions(self, topic: Topic[Any]) -> tuple[Subscription, ...]:
        return self._subs.get(topic.name, ())

    # ------------------------------------------------------------ publish

    def publish(self, topic: Topic[E], event: E, *, sender: str | None = None) -> None:
        """Queue ``event`` for every subscriber of ``topic``.

        Raises :class:`BusError` here, at the call, if ``event`` is not of the topic's type
        or the topic was declared with another type, or if ``sender`` (the publishing
        component) is not who the event's ``topic.sender_field`` says it is.
        """
        if not isinstance(event, topic.type):
            raise BusError(
                f"cannot publish {type(event).__name__} on topic {topic.name!r}, "
                f"which carries {_type_name(topic.type)}"
            )
        field = topic.sender_field
        if field is not None and sender is not None:
            claimed = getattr(event, field, None)
            if claimed != sender:
                raise BusError(
                    f"component {sender!r} cannot publish {type(event).__name__} on "
                    f"{topic.name!r} with {field}={claimed!r}: a request names its own "
                    "publisher (only a declared relay publishes for others)"
                )
        if topic.retained:
            self._retained.setdefault(topic.name, []).append(event)
        routes = self._routes.get(topic.name)
        if routes is None:
            self.declare(topic)
            return
        if self._topics[topic.name] is not topic:
            self.declare(topic)  # raises if the two declarations disagree
        if self.strict:
            event = self.codec.roundtrip(event)
        self._dispatcher.submit_all(routes, event)

    def deliver(self, phase: int, handler: Handler, event: Event, subscriber: str) -> None:
        """Queue one event for one handler, outside any topic (timers use this)."""
        if self.strict:
            event = self.codec.roundtrip(event)
        self._dispatcher.submit(phase, handler, event, subscriber)

    async def drain(self) -> None:
        """Return once every pending delivery has been handled."""
        await self._dispatcher.drain()

    # ------------------------------------------------------------ request / reply

    def serve(
        self,
        topic: RequestTopic[E, R],
        responder: Callable[[E], Awaitable[R] | R],
        *,
        subscriber: str = "",
    ) -> None:
        """Make ``responder`` answer requests on ``topic``; one responder per topic."""
        self.declare(topic)
        if topic.name in self._responders:
            owner = self._responders[topic.name][0]
            raise BusError(f"request topic {topic.name!r} already has a responder ({owner})")
        self._responders[topic.name] = (subscriber or _handler_owner(responder), responder)

    def stop_serving(self, topic: RequestTopic[Any, Any]) -> None:
        self._responders.pop(topic.name, None)

    async def request(self, topic: RequestTopic[E, R], request: E) -> R:
        """Send ``request`` to the topic's responder and return its reply.

        The responder runs at once, in the caller's turn: a request is a question about
        the responder's current state, so it neither waits behind queued events nor lets
        any other delivery run before it returns.
        """
        if not isinstance(request, topic.request_type):
            raise BusError(
                f"cannot send {type(request).__name__} on request topic {topic.name!r}, "
                f"which takes {_type_name(topic.request_type)}"
            )
        entry = self._responders.get(topic.name)
        if entry is None:
            raise BusError(f"no responder serves request topic {topic.name!r}")
        owner, responder = entry
        if self.strict:
            request = self.codec.roundtrip(request)
        try:
            reply = responder(request)
            if inspect.isawaitable(reply):
                reply = await reply
        except Exception as exc:
            raise ComponentError(
                f"component {owner!r} failed answering {type(request).__name__} on "
                f"{topic.name!r}: {type(exc).__name__}: {exc}",
                component=owner,
                event_type=type(request).__name__,
                time_ns=request.ts_event,
            ) from exc
        if not isinstance(reply, topic.reply_type):
            raise BusError(
                f"responder {owner!r} on {topic.name!r} replied {type(reply).__name__}, "
                f"expected {_type_name(topic.reply_type)}"
            )
        return self.codec.roundtrip(reply) if self.strict else reply


def _handler_owner(handler: Callable[..., Any]) -> str:
    owner = getattr(handler, "__self__", None)
    name = getattr(owner, "name", None)
    if isinstance(name, str):
        return name
    return getattr(handler, "__qualname__", repr(handler))
