"""Fixtures for testing components, the ones ml4t's own tests use.

Test a component the way the graph uses it: put it on a real :class:`Runtime` with a
:class:`SimulatedClock`, publish events at chosen times with :class:`Script`, and assert on
what :class:`Capture` saw. Nothing is mocked.

    capture = Capture(FILLS, ORDER_EVENTS)
    script = Script([(t0, MARKET, batch0), (t0, ORDER_REQUESTS, order), (t1, MARKET, batch1)])
    run_components(MyBroker(), script, capture)
    assert capture.of_type(OrderFilled)[0].price == 101.0

:func:`capture_logs` collects what ml4t logs, as ``structlog.testing.capture_logs`` does
for structlog's own loggers (ml4t's log through the standard library).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, TypeVar

from ml4t.backtest.bus import Phase, Topic
from ml4t.backtest.clock import AlarmPriority, SimulatedClock
from ml4t.backtest.component import Component
from ml4t.backtest.events import Event
from ml4t.backtest.logging import ROOT_LOGGER
from ml4t.backtest.runtime import Runtime

__all__ = ["Capture", "Script", "capture_logs", "run_components"]

E = TypeVar("E", bound=Event)


class Capture(Component):
    """Records every event on the given topics, in delivery order, with its topic name."""

    def __init__(self, *topics: Topic[Any], name: str = "capture", phase: int = Phase.RECORD):
        super().__init__(name)
        self._topics = topics
        self._phase = phase
        self.records: list[tuple[str, Event]] = []

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        for topic in self._topics:

            def record(event: Event, _name: str = topic.name) -> None:
                self.records.append((_name, event))

            yield topic, record, self._phase

    @property
    def events(self) -> list[Event]:
        return [event for _, event in self.records]

    def on_topic(self, topic: Topic[Any]) -> list[Event]:
        return [event for name, event in self.records if name == topic.name]

    def of_type(self, event_type: type[E]) -> list[E]:
        return [event for _, event in self.records if isinstance(event, event_type)]


class Script(Component):
    """Publishes scripted events at scripted times: ``[(ts_ns, topic, event), ...]``.

    Each entry becomes a clock alarm at ``ts_ns`` (data priority), so entries at the same
    time are published in list order and the graph drains between distinct alarms.
    It is a relay: its requests may name any strategy.
    """

    relay = True

    def __init__(self, steps: Iterable[tuple[int, Topic[Any], Event]], name: str = "script"):
        super().__init__(name)
        self.steps = list(steps)

    def on_start(self) -> None:
        for ts_ns, topic, event in self.steps:
            self.clock.schedule(
                ts_ns, partial(self.publish, topic, event), priority=AlarmPriority.DATA
            )


def run_components(*components: Component, strict: bool = True, start_ns: int = 0) -> Runtime:
    """Run ``components`` on a fresh simulated graph (strict codec round-trips by default)."""
    runtime = Runtime(clock=SimulatedClock(start_ns), strict=strict)
    for component in components:
        runtime.add(component)
    runtime.run_sync()
    return runtime


class _Collect(logging.Handler):
    def __init__(self, into: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "event_dict", None)
        event = dict(fields) if isinstance(fields, dict) else {"event": record.getMessage()}
        event["log_level"] = record.levelname.lower()
        self.into.append(event)


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """The events ml4t logs inside the block, as dicts: the event's name (``event``), its
    fields and ``log_level``.

    ml4t's loggers drop a call below their level before building it, so the block lowers
    the ``"ml4t"`` logger's level to ``level`` and puts it back after.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    events: list[dict[str, Any]] = []
    handler = _Collect(events)
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
