"""Blocking calls around an async graph that also work where an event loop already runs.

``BacktestEngine.run()``, ``Runtime.run_sync()`` and ``PaperSession.run_sync()`` are
synchronous calls around async code. In a script they start an event loop
(``anyio.run``). In Jupyter, IPython or an async application the calling thread already
runs one, and a second cannot start in it ("Already running asyncio in this thread").
There :func:`run_blocking` runs the coroutine on a worker thread with an event loop of its
own while the caller's thread waits, and returns what it returned (or raises what it
raised). The result is the one a script gets: a backtest's order comes from the data, never
from the scheduler, so the tables are byte-identical. The caller's context variables are
copied to the worker, as ``asyncio.to_thread`` does.

Ctrl-C (a Jupyter kernel interrupt) is delivered to the caller's thread, not to the worker:
a ``KeyboardInterrupt`` there is handed to the run's loop as SIGINT would be in a script.
By default the run is cancelled, as ``asyncio.run`` cancels its main task: every
``on_stop`` runs, the results are flushed and marked incomplete, then ``KeyboardInterrupt``
is raised in the caller. A run that handles Ctrl-C itself (a paper session stops cleanly
on the first) passes ``on_interrupt``. A further interrupt after the run was cancelled stops
the wait at once, as a second Ctrl-C does under ``asyncio.run``; the worker finishes its
clean-up on its own. While the caller waits, its thread's SIGINT handler, if it is a Python
callable other than the default (an asyncio runner's, which only schedules work on the loop
the caller is blocking), is swapped for the default one that raises, and put back after.
SIGTERM keeps whatever action the application gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel

__all__ = ["loop_running", "run_blocking"]

T = TypeVar("T")

_WAKE_S = 0.05  # how often the waiting thread looks for a pending KeyboardInterrupt

OnInterrupt = Callable[[int], bool]
"""Called in the run's loop with the count of interrupts so far; True when it handled this
one (the run goes on to its end), False to have the run cancelled."""


def loop_running() -> bool:
    """True when this thread is running an asyncio event loop (a kernel's, an app's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(
    main: Callable[[], Awaitable[T]],
    *,
    on_interrupt: OnInterrupt | None = None,
    backend: str = "asyncio",
) -> T:
    """Await ``main()`` to the end from synchronous code and return its result.

    With no event loop running in this thread, this is ``anyio.run(main)``; otherwise the
    coroutine runs on a worker thread (see the module docstring for Ctrl-C).
    """
    if not loop_running():
        return anyio.run(main, backend=backend)
    worker = _Worker(main, backend, on_interrupt)
    worker.start()
    interrupts: list[KeyboardInterrupt] = []
    with _raising_sigint():
        while True:
            try:
                worker.wait()
                break
            except KeyboardInterrupt as exc:
                interrupts.append(exc)
                if not worker.interrupt(len(interrupts)):
                    raise
    return worker.outcome(interrupts[0] if interrupts else None)


class _Worker(Generic[T]):
    """One coroutine on its own thread and event loop, cancellable from the caller."""

    def __init__(
        self, main: Callable[[], Awaitable[T]], backend: str, on_interrupt: OnInterrupt | None
    ) -> None:
        self._main = main
        self._backend = backend
        self._on_interrupt = on_interrupt
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._post: Callable[[Callable[[], object]], object] | None = None  # to the loop
        self._scope: anyio.CancelScope | None = None
        self._cancel_early = False  # interrupted before the loop started
        self._cancel_sent = False  # an interrupt cancelled the run (set in the loop)
        self._cancelled = False  # the run ended cancelled
        self._result: Any = None
        self._error: BaseException | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._target,), name="ml4t-run", daemon=False
        )

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        """Block until the run is over (a KeyboardInterrupt may end the wait).

        The wait wakes a few times a second: a signal that the system hands to another
        thread of the process (a kernel has several) only raises here once this thread
        runs Python again, and a wait that never wakes would hold it until the run ends.
        """
        while not self._done.wait(_WAKE_S):
            pass

    def outcome(self, interrupt: KeyboardInterrupt | None) -> T:
        """What the run returned, or raised; the caller's ``interrupt`` if it cancelled
        the run (as ``asyncio.run`` raises KeyboardInterrupt for a cancelled main task)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._cancelled:
            assert interrupt is not None
            raise interrupt
        return cast(T, self._result)

    def interrupt(self, count: int) -> bool:
        """Hand the ``count``-th interrupt to the run without waiting for its loop; False
        when an earlier one already cancelled the run (the caller stops waiting)."""
        if self._cancel_sent:
            return False
        with self._lock:
            post = self._post
            if post is None:  # the loop has not started: the run will not begin
                self._cancel_early = True
                return True
        # a loop that has closed raises RuntimeError: the run is over, its outcome says how
        with contextlib.suppress(RuntimeError):
            post(partial(self._deliver, count))
        return True

    # -------------------------------------------------------------- in the worker

    def _target(self) -> None:
        try:
            self._result = anyio.run(self._body, backend=self._backend)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._error = exc
        finally:
            self._done.set()

    async def _body(self) -> T | None:
        with anyio.CancelScope() as scope:
            with self._lock:
                self._post = _poster(self._backend)
                self._scope = scope
                if self._cancel_early:
                    scope.cancel()
            return await self._main()
        self._cancelled = True
        return None

    def _deliver(self, count: int) -> None:
        scope = self._scope
        assert scope is not None
        if scope.cancel_called or (self._on_interrupt is not None and self._on_interrupt(count)):
            return
        self._cancel_sent = True
        scope.cancel()


def _poster(backend: str) -> Callable[[Callable[[], object]], object]:
    """How another thread runs a function in this thread's event loop: asyncio's
    ``call_soon_threadsafe`` (it returns at once), else anyio's ``from_thread.run_sync``."""
    if backend == "asyncio":
        return asyncio.get_running_loop().call_soon_threadsafe
    token = anyio.lowlevel.current_token()
    return partial(anyio.from_thread.run_sync, token=token)


@contextlib.contextmanager
def _raising_sigint() -> Iterator[None]:
    """While blocked, let SIGINT raise KeyboardInterrupt in this thread (see module doc)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    current = signal.getsignal(signal.SIGINT)
    swap = callable(current) and current is not signal.default_int_handler
    if swap:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if swap:
            signal.signal(signal.SIGINT, current)
