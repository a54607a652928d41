"""Components: the actors of an ml4t graph.

A component owns its state and talks to the rest of the graph only through the bus. It
declares its handlers with :func:`on`; the table of (topic, phase, method) is built once
per class, and bound once when the runtime starts the component, never looked up per
event. It gets its bus, clock and logger from a :class:`Context` the runtime passes in, and
never holds a reference to another component.

Lifecycle: ``created -> starting -> running -> stopping -> stopped``, or ``failed`` from
any state. ``on_start`` and ``on_stop`` may be sync or async.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from ml4t.backtest.bus import Bus, Phase, Subscription, Topic
from ml4t.backtest.clock import Clock, Timer
from ml4t.backtest.errors import ComponentError
from ml4t.backtest.events import ComponentState, Event, TimerFired
from ml4t.backtest.logging import get_logger

__all__ = ["Component", "Context", "HandlerSpec", "on"]

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=Event)

_MARK = "__ml4t_handlers__"


class HandlerSpec:
    """One declared handler: ``attr`` of the class handles ``topic`` at ``phase``."""

    __slots__ = ("attr", "phase", "topic")

    def __init__(self, topic: Topic[Any], phase: int, attr: str) -> None:
        self.topic = topic
        self.phase = phase
        self.attr = attr

    def __repr__(self) -> str:
        return f"HandlerSpec({self.topic.name!r}, phase={self.phase}, {self.attr})"


def on(topic: Topic[Any], *, phase: int = Phase.DEFAULT) -> Callable[[F], F]:
    """Declare the decorated method as the handler of ``topic`` at ``phase``.

    Stack several ``@on`` to handle several topics with one method.
    """

    def mark(fn: F) -> F:
        marks = list(getattr(fn, _MARK, ()))
        marks.append((topic, int(phase)))
        setattr(fn, _MARK, tuple(marks))
        return fn

    return mark


class Context:
    """What the runtime gives a component: the bus, the clock, a bound logger and the
    run's trading calendar (a :class:`~ml4t.backtest.data.calendar.SessionCalendar`, or
    None), beside the clock so that every role sees the same session boundaries.

    ``stop_reason`` is set by the runtime before ``on_stop`` runs: ``"completed"``,
    ``"stopped"``, ``"failed"``, ``"cancelled"`` (Ctrl-C) or ``"terminated"`` (SIGTERM),
    so a component that writes results can mark them incomplete.
    """

    __slots__ = ("bus", "calendar", "clock", "deliver", "log", "stop_reason")

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        log: Any,
        deliver: Callable[[int, Callable[[Any], Any], Event, str], None],
        calendar: Any = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.log = log
        self.deliver = deliver
        self.calendar = calendar
        self.stop_reason = ""


class Component:
    """Base of every actor in a graph. Subclasses declare handlers with :func:`on`."""

    _handler_specs: tuple[HandlerSpec, ...] = ()
    relay: ClassVar[bool] = False
    """A relay republishes events made by others (a bridge between processes, a test
    script, an operator's cancel-all): the bus does not check that the requests it
    publishes name it as their sender (see ``Topic.sender_field``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs = {(s.topic.name, s.attr): s for s in cls._handler_specs}
        for attr, value in vars(cls).items():
            for topic, phase in getattr(value, _MARK, ()):
                specs[(topic.name, attr)] = HandlerSpec(topic, phase, attr)
        cls._handler_specs = tuple(specs.values())

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.state = ComponentState.CREATED
        self._ctx: Context | None = None
        self._subscriptions: list[Subscription] = []
        self._timers: dict[str, Timer] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.state.value}>"

    # ------------------------------------------------------------ context

    @property
    def context(self) -> Context:
        if self._ctx is None:
            raise ComponentError(
                f"component {self.name!r} is not part of a running graph yet; add it to a "
                "Runtime (or BacktestEngine) before using its bus, clock or logger",
                component=self.name,
            )
        return self._ctx

    @property
    def bus(self) -> Bus:
        return self.context.bus

    @property
    def clock(self) -> Clock:
        return self.context.clock

    @property
    def log(self) -> Any:
        return self.context.log

    def now_ns(self) -> int:
        return self.context.clock.now_ns()

    def publish(self, topic: Topic[E], event: E) -> None:
        ctx = self._ctx if self._ctx is not None else self.context  # (raises when detached)
        ctx.bus.publish(topic, event, sender=None if self.relay else self.name)

    # ------------------------------------------------------------ timers

    def set_timer(
        self,
        name: str,
        *,
        interval_ns: int | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
        next_time: Callable[[int], int | None] | None = None,
    ) -> Timer:
        """Start a timer; each fire delivers :class:`TimerFired` to :meth:`on_timer`.

        A timer of the same name replaces the old one.
        """
        ctx = self.context
        self.cancel_timer(name)
        handler = self.on_timer
        component = self.name

        def fire(scheduled_ns: int) -> None:
            event = TimerFired(
                ts_event=scheduled_ns, ts_init=scheduled_ns, name=name, component=component
            )
            ctx.deliver(Phase.STRATEGY, handler, event, component)

        timer = ctx.clock.set_timer(
            fire, interval_ns=interval_ns, start_ns=start_ns, stop_ns=stop_ns, next_time=next_time
        )
        self._timers[name] = timer
        return timer

    def cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Callable[[Any], Any], int]]:
        """Extra (topic, handler, phase) triples decided per instance, read once at start.

        ``@on`` covers handlers whose topic is known when the class is written; override
        this when the topic depends on configuration (say, one topic per instrument).
        """
        return ()

    def on_timer(self, event: TimerFired) -> Any:
        """Called when one of this component's timers fires. Override to use timers."""
        raise NotImplementedError(
            f"{type(self).__name__} set timer {event.name!r} but does not override on_timer"
        )

    # ------------------------------------------------------------ lifecycle hooks

    def on_start(self) -> Any:
        """Called once before the first event; may be async."""

    def on_stop(self) -> Any:
        """Called once when the graph stops, also after a failure; may be async."""

    # ------------------------------------------------------------ runtime side

    def _attach(self, ctx: Context) -> None:
        if self._ctx is not None:
            raise ComponentError(
                f"component {self.name!r} is already part of a graph", component=self.name
            )
        self._ctx = ctx

    def _subscribe_handlers(self) -> None:
        """Subscribe the declared handlers (once: the runtime subscribes every component
        before it starts any, so what one publishes in ``on_start`` reaches them all)."""
        if self._subscriptions:
            return
        bus = self.context.bus
        for spec in self._handler_specs:
            handler = getattr(self, spec.attr)
            self._subscriptions.append(
                bus.subscribe(spec.topic, handler, subscriber=self.name, phase=spec.phase)
            )
        for topic, handler, phase in self.subscriptions():
            self._subscriptions.append(
                bus.subscribe(topic, handler, subscriber=self.name, phase=phase)
            )

    def _unsubscribe_all(self) -> None:
        for name in list(self._timers):
            self.cancel_timer(name)
        bus = self.context.bus
        for sub in self._subscriptions:
            bus.unsubscribe(sub)
        self._subscriptions.clear()


async def call_hook(hook: Callable[[], Any]) -> None:
    """Call a sync or async lifecycle hook."""
    result = hook()
    if inspect.isawaitable(result):
        await result


def default_logger(name: str) -> Any:
    return get_logger("ml4t.backtest", component=name)
