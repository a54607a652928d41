"""Small components shared by the core tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ml4t.backtest import Component, Event, Phase, Topic
from ml4t.backtest.clock import AlarmPriority


class Num(Event, frozen=True, kw_only=True):
    value: int
    path: str = ""


class Word(Event, frozen=True, kw_only=True):
    text: str


CHAIN = tuple(Topic(f"chain.{i}", Num) for i in range(8))


class Source(Component):
    """Publishes ``Num(value=i)`` on ``topic`` at times ``times[i]``."""

    def __init__(self, topic: Topic[Num], times: list[int], name: str = "source") -> None:
        super().__init__(name)
        self.topic = topic
        self.times = times

    def on_start(self) -> None:
        for i, ts in enumerate(self.times):
            self.clock.schedule(ts, lambda i=i: self._emit(i), priority=AlarmPriority.DATA)

    def _emit(self, i: int) -> None:
        now = self.now_ns()
        self.publish(self.topic, Num(ts_event=now, ts_init=now, value=i, path=self.name))


class Relay(Component):
    """Handles ``inbound`` and publishes a derived event on ``outbound``."""

    def __init__(self, name: str, inbound: Topic[Num], outbound: Topic[Num], delay=None) -> None:
        super().__init__(name)
        self.inbound = inbound
        self.outbound = outbound
        self.delay = delay

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        handler = self.handle_async if self.delay is not None else self.handle
        return [(self.inbound, handler, Phase.DEFAULT)]

    def handle(self, event: Num) -> None:
        self.publish(
            self.outbound,
            Num(ts_event=event.ts_event, value=event.value + 1, path=f"{event.path}>{self.name}"),
        )

    async def handle_async(self, event: Num) -> None:
        await self.delay()
        self.handle(event)


class Recorder(Component):
    """Keeps (topic, clock time, event) for every event on its topics."""

    def __init__(self, *topics: Topic[Any], name: str = "recorder") -> None:
        super().__init__(name)
        self.topics = topics
        self.log_: list[tuple[str, int, Event]] = []
        self.stopped = False

    def subscriptions(self) -> Iterable[tuple[Topic[Any], Any, int]]:
        for topic in self.topics:
            yield topic, (lambda e, n=topic.name: self.log_.append((n, self.now_ns(), e))), 90

    def on_stop(self) -> None:
        self.stopped = True
