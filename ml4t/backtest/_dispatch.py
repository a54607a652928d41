"""How deliveries reach handlers.

- :class:`SequencedDispatcher` (backtests and paper replay): one queue ordered by
  (phase, sequence number). ``drain`` runs one delivery at a time to completion, so the
  order of everything is a function of the data, never of the async scheduler; a handler
  may ``await`` anything (even a random sleep) without changing the order. The graph is
  quiescent exactly when the queue is empty.
- :class:`ConcurrentDispatcher` (live): each subscriber has an inbox (an anyio memory
  stream) and a task that handles its events in FIFO order, concurrently with the others,
  so a component waiting on a socket does not hold up the rest.

A handler that raises becomes a :class:`~ml4t.backtest.errors.ComponentError` naming the
subscriber, the event type and the clock time; the failed subscriber gets no more events.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ml4t.backtest._time import from_ns
from ml4t.backtest.errors import ComponentError

__all__ = [
    "ConcurrentDispatcher",
    "Delivery",
    "Dispatcher",
    "SequencedDispatcher",
    "describe_failure",
    "handler_failure",
]


Delivery = tuple[int, Callable[[Any], Any], str]
"""Where a topic's events go: ``(phase, handler, subscriber)`` of one subscription."""


class Dispatcher(Protocol):
    """What the bus needs from a dispatcher."""

    now_ns: Callable[[], int] | None
    waker: Callable[[], None] | None

    @property
    def pending(self) -> int: ...

    def submit(
        self, phase: int, handler: Callable[[Any], Any], event: Any, subscriber: str
    ) -> None: ...

    def submit_all(self, deliveries: Sequence[Delivery], event: Any) -> None:
        """``submit`` one event to each ``(phase, handler, subscriber)``, in order."""
        ...

    def disable(self, subscriber: str) -> None: ...

    async def drain(self) -> None: ...


def describe_failure(exc: BaseException) -> str:
    """``Type: message``; a ``sys.exit()`` is named as what it is.

    A component cannot end the process: ``SystemExit`` from a handler or hook fails the
    run like any other exception, with this message.
    """
    if isinstance(exc, SystemExit):
        return (
            f"it called sys.exit({exc.code!r}); a component cannot end the process, so the "
            "run stopped as a failure (raise an exception to fail a run)"
        )
    return f"{type(exc).__name__}: {exc}"


def handler_failure(
    subscriber: str, event: Any, exc: BaseException, now_ns: int | None
) -> ComponentError:
    """The ComponentError for ``exc`` raised by ``subscriber`` while handling ``event``."""
    event_type = type(event).__name__
    when = f" at {from_ns(now_ns).isoformat()}" if now_ns is not None else ""
    symbol = getattr(event, "symbol", None)
    where = f" for {symbol}" if isinstance(symbol, str) else ""
    err = ComponentError(
        f"component {subscriber!r} failed handling {event_type}{where}{when}: "
        f"{describe_failure(exc)}",
        component=subscriber,
        event_type=event_type,
        time_ns=now_ns,
    )
    err.__cause__ = exc
    return err


class SequencedDispatcher:
    """Deterministic delivery in (phase, sequence) order, one handler at a time."""

    __slots__ = ("_disabled", "_heap", "_seq", "now_ns", "waker")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[Any], Any], Any, str]] = []
        self._seq = count()
        self._disabled: set[str] = set()
        self.now_ns: Callable[[], int] | None = None
        self.waker: Callable[[], None] | None = None

    @property
    def pending(self) -> int:
        return len(self._heap)

    def submit(
        self, phase: int, handler: Callable[[Any], Any], event: Any, subscriber: str
    ) -> None:
        heapq.heappush(self._heap, (phase, next(self._seq), handler, event, subscriber))
        if self.waker is not None:
            self.waker()

    def submit_all(self, deliveries: Sequence[Delivery], event: Any) -> None:
        heap, seq, push = self._heap, self._seq, heapq.heappush
        for phase, handler, subscriber in deliveries:
            push(heap, (phase, next(seq), handler, event, subscriber))
        if self.waker is not None:
            self.waker()

    def disable(self, subscriber: str) -> None:
        self._disabled.add(subscriber)

    def clear(self) -> None:
        self._heap.clear()

    async def drain(self) -> None:
        heap = self._heap
        pop = heapq.heappop
        disabled = self._disabled
        while heap:
            _, _, handler, event, subscriber = pop(heap)
            if disabled and subscriber in disabled:
                continue
            try:
                result = handler(event)
                if result is not None:
                    await result
            except (Exception, SystemExit) as exc:  # sys.exit() in a handler fails the run
                self._disabled.add(subscriber)
                now = self.now_ns() if self.now_ns is not None else getattr(event, "ts_event", None)
                raise handler_failure(subscriber, event, exc, now) from exc


class _Inbox:
    __slots__ = ("receive", "send")

    def __init__(self, buffer: float) -> None:
        streams: tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]
        streams = anyio.create_memory_object_stream(max_buffer_size=buffer)
        self.send, self.receive = streams


class ConcurrentDispatcher:
    """One inbox and one task per subscriber; subscribers run concurrently.

    ``buffer`` bounds each inbox; a full inbox makes ``publish`` raise
    ``anyio.WouldBlock`` rather than grow without limit or drop events silently.
    """

    def __init__(self, buffer: float = math.inf) -> None:
        self._buffer = buffer
        self._inboxes: dict[str, _Inbox] = {}
        self._disabled: set[str] = set()
        self._pending = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._tg: TaskGroup | None = None
        self.now_ns: Callable[[], int] | None = None
        self.waker: Callable[[], None] | None = None

    @property
    def pending(self) -> int:
        return self._pending

    def submit(
        self, phase: int, handler: Callable[[Any], Any], event: Any, subscriber: str
    ) -> None:
        if subscriber in self._disabled:
            return
        inbox = self._inboxes.get(subscriber)
        if inbox is None:
            inbox = self._inboxes[subscriber] = _Inbox(self._buffer)
            if self._tg is not None:
                self._tg.start_soon(self._serve, subscriber, inbox, name=f"inbox:{subscriber}")
        inbox.send.send_nowait((handler, event))
        if self._pending == 0:
            self._idle = anyio.Event()
        self._pending += 1
        if self.waker is not None:
            self.waker()

    def submit_all(self, deliveries: Sequence[Delivery], event: Any) -> None:
        for phase, handler, subscriber in deliveries:
            self.submit(phase, handler, event, subscriber)

    def disable(self, subscriber: str) -> None:
        self._disabled.add(subscriber)

    def start(self, tg: TaskGroup) -> None:
        """Start one task per inbox in ``tg`` (inboxes made later start their own)."""
        self._tg = tg
        for subscriber, inbox in self._inboxes.items():
            tg.start_soon(self._serve, subscriber, inbox, name=f"inbox:{subscriber}")

    def close(self) -> None:
        """Close every inbox: the inbox tasks finish what is queued and return."""
        for inbox in self._inboxes.values():
            inbox.send.close()
        self._tg = None

    async def drain(self) -> None:
        await self._idle.wait()

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _serve(self, subscriber: str, inbox: _Inbox) -> None:
        async with inbox.receive:
            async for handler, event in inbox.receive:
                try:
                    if subscriber in self._disabled:
                        continue
                    result = handler(event)
                    if result is not None:
                        await result
                except (Exception, SystemExit) as exc:  # sys.exit() in a handler fails the run
                    self._disabled.add(subscriber)
                    now = self.now_ns() if self.now_ns is not None else None
                    raise handler_failure(subscriber, event, exc, now) from exc
                finally:
                    self._done()
