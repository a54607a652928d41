"""The runtime: wires components to a bus and a clock and runs the graph under anyio.

Two choices make a run:

- the **clock**: :class:`SimulatedClock` jumps to the next alarm once the graph is
  quiescent (backtest); :class:`WallClock` sleeps until the next alarm is due (paper
  replay, live);
- the **dispatch**: ``"sequenced"`` runs one delivery at a time in (phase, sequence) order,
  deterministic whatever the handlers await (backtest, paper replay); ``"concurrent"``
  gives each component an inbox and a task (live components that wait on I/O).

A run ends when no alarm is left and the graph is quiescent (``exit_when_idle``), when
:meth:`Runtime.stop` is called, when a component fails, when it is cancelled (Ctrl-C), or
when it is terminated (:meth:`Runtime.terminate`, which SIGTERM calls under
:meth:`Runtime.run_sync` and :func:`run_terminable`). In every case each started
component's ``on_stop`` runs, no task is left behind, and a failure is raised as
:class:`~ml4t.backtest.errors.ComponentError` naming the component, the event it was
handling and the clock time. A component that raises, in a handler, a hook or an alarm,
fails the run; so does one that calls ``sys.exit()``: a component cannot end the
process. A termination is raised as :class:`RunTerminated` (a ``SystemExit`` with status
143) once every ``on_stop`` has run.
"""

from __future__ import annotations

import enum
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar

import anyio
import anyio.lowlevel

from ml4t.backtest._blocking import run_blocking
from ml4t.backtest._dispatch import ConcurrentDispatcher, SequencedDispatcher, describe_failure
from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Bus
from ml4t.backtest.clock import Alarm, Clock, SimulatedClock, WallClock
from ml4t.backtest.codec import Codec
from ml4t.backtest.component import Component, Context, call_hook, default_logger
from ml4t.backtest.errors import ComponentError, ConfigError
from ml4t.backtest.events import ComponentFailed, ComponentState, ComponentStateChanged
from ml4t.backtest.topics import ERRORS, LIFECYCLE

__all__ = ["RunOutcome", "RunTerminated", "Runtime", "run_terminable", "unwrap_group"]

C = TypeVar("C", bound=Component)
T = TypeVar("T")

_CHECKPOINT_EVERY = 256  # alarms between two yields to the event loop (lets Ctrl-C in)
_YIELD_AFTER_S = 0.05  # ...or this much wall time, whichever comes first


class RunOutcome(enum.StrEnum):
    NOT_RUN = "not_run"
    RUNNING = "running"
    COMPLETED = "completed"  # every alarm fired, graph quiescent
    STOPPED = "stopped"  # stop() was called
    FAILED = "failed"  # a component raised
    CANCELLED = "cancelled"  # the run was cancelled (Ctrl-C, a cancel scope)
    TERMINATED = "terminated"  # terminate() was called (SIGTERM)


class RunTerminated(SystemExit):
    """A run was terminated (SIGTERM) and every ``on_stop`` has run: its results are flushed.

    A ``SystemExit`` whose code is ``128 + signal`` (143 for SIGTERM), the status a shell
    reports for a process a signal ended, so that uncaught it ends the process as the
    signal would have, only after the results are written; ``except Exception`` does not
    swallow it.
    """

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class Runtime:
    """A graph of components on one bus and one clock."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        dispatch: Literal["sequenced", "concurrent"] = "sequenced",
        strict: bool = False,
        codec: Codec | None = None,
        exit_when_idle: bool = True,
        calendar: Any = None,
        name: str = "graph",
    ) -> None:
        if dispatch not in ("sequenced", "concurrent"):
            raise ConfigError(f"dispatch must be 'sequenced' or 'concurrent', not {dispatch!r}")
        self.name = name
        self.clock = clock if clock is not None else SimulatedClock()
        self.calendar = calendar  # given to every component in its Context
        self.bus = Bus(strict=strict, codec=codec)
        self.dispatch = dispatch
        self.exit_when_idle = exit_when_idle
        self.outcome = RunOutcome.NOT_RUN
        self.error: BaseException | None = None
        self.alarms_fired = 0
        self._components: list[Component] = []
        self._observers: set[str] = set()
        self._started: list[Component] = []
        self._joining: list[Component] = []  # added while running, not yet started
        self._stop_requested = False
        self._terminated: int | None = None  # the signal terminate() was called for
        self._scope: anyio.CancelScope | None = None
        self._wake: anyio.Event | None = None
        self.log = default_logger(name)
        if dispatch == "concurrent":
            self.bus.use_dispatcher(ConcurrentDispatcher())
        self.bus.dispatcher.now_ns = self.clock.now_ns

    # ------------------------------------------------------------ building

    @property
    def components(self) -> Sequence[Component]:
        return tuple(self._components)

    def add(self, component: C, *, observer: bool = False) -> C:
        """Add ``component`` to the graph; it starts in the order it was added.

        An ``observer`` (a recorder) is started even when a component before it fails to
        start, so that it sees the failure (``ComponentFailed`` on ``errors``) and its
        ``on_stop`` can record it.

        Added while the graph runs (from a handler or an alarm), the component joins
        once the current delivery is done: it subscribes, starts, and is handed the
        session's events published so far (``SESSION`` is a retained topic) before
        anything else, so it builds its per-symbol state as the others did. It stops
        with the rest.
        """
        if self.outcome not in (RunOutcome.NOT_RUN, RunOutcome.RUNNING):
            raise ComponentError(
                f"cannot add {component.name!r}: the graph has already run",
                component=component.name,
            )
        if any(c.name == component.name for c in self._components):
            raise ComponentError(
                f"a component named {component.name!r} is already in the graph; give each "
                "component a unique name",
                component=component.name,
            )
        bus = self.bus
        log = default_logger(component.name)
        component._attach(Context(bus, self.clock, log, bus.deliver, self.calendar))
        self._components.append(component)
        if observer:
            self._observers.add(component.name)
        if self.outcome is RunOutcome.RUNNING:
            self._joining.append(component)
            self._poke()
        return component

    def stop(self) -> None:
        """Ask the run to end after the current delivery (safe from any handler)."""
        self._stop_requested = True
        self._poke()

    def terminate(self, signum: int = signal.SIGTERM) -> None:
        """End the run as Ctrl-C would (every ``on_stop`` runs, results are flushed and
        marked incomplete), then raise :class:`RunTerminated` from :meth:`run`.

        Safe from a handler or another task of the run's event loop; before the run
        starts, the run ends as soon as it starts.
        """
        if self._terminated is None:
            self._terminated = signum
        self.stop()  # from a handler: the loop ends after the current delivery
        if self._scope is not None:
            self._scope.cancel()  # from another task: a handler awaiting is cancelled

    def run_sync(self, backend: str = "asyncio") -> None:
        """Run the graph to the end in a fresh event loop; SIGTERM terminates it (see
        :func:`run_terminable`). Where this thread already runs a loop (a notebook), the
        graph runs on a worker thread and Ctrl-C cancels it as in a script
        (:func:`~ml4t.backtest._blocking.run_blocking`)."""

        async def main() -> None:
            await run_terminable(self.run, lambda: self)

        run_blocking(main, backend=backend)

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """Start every component, fire alarms until the end, stop every component."""
        if self.outcome is not RunOutcome.NOT_RUN:
            raise ComponentError(f"graph {self.name!r} has already run", component=self.name)
        self.outcome = RunOutcome.RUNNING
        dispatcher = self.bus.dispatcher
        if not self.clock.is_simulated:
            self.clock.on_schedule = self._poke
            dispatcher.waker = self._poke
        self._scope = scope = anyio.CancelScope()
        if self._terminated is not None:
            scope.cancel()
        try:
            with scope:
                await self._run_graph(dispatcher)
        except ComponentError as exc:
            self.outcome = RunOutcome.FAILED
            self.error = exc
            for component in self._components:
                if component.name == exc.component:
                    component.state = ComponentState.FAILED
            raise
        except anyio.get_cancelled_exc_class():
            self.outcome = RunOutcome.CANCELLED
            raise
        except BaseException as exc:  # KeyboardInterrupt, a bug in the runtime
            self.outcome = RunOutcome.CANCELLED
            self.error = exc
            raise
        finally:
            self._scope = None
            self.clock.on_schedule = None
            dispatcher.waker = None
        if self._terminated is not None:
            self.outcome = RunOutcome.TERMINATED
            raise RunTerminated(self._terminated)
        self.outcome = RunOutcome.STOPPED if self._stop_requested else RunOutcome.COMPLETED

    async def _run_graph(self, dispatcher: Any) -> None:
        if isinstance(dispatcher, ConcurrentDispatcher):
            try:
                async with anyio.create_task_group() as tg:
                    dispatcher.start(tg)
                    try:
                        await self._run_body()
                    finally:
                        dispatcher.close()
            except BaseExceptionGroup as group:
                error = unwrap_group(group)
                raise error from error.__cause__  # keep the failure's own cause
        else:
            await self._run_body()

    async def _run_body(self) -> None:
        failure: ComponentError | None = None
        reason = "cancelled"  # unless the body finishes or fails
        try:
            # every component subscribes, then each starts; what an on_start publishes is
            # delivered once all have started, so every role (the recorder too) sees it
            for component in self._components:
                component._subscribe_handlers()
            for component in self._components:
                await self._start(component)
            await self.bus.drain()
            if self.clock.is_simulated:
                await self._loop_simulated()
            else:
                await self._loop_wall()
            reason = "stopped" if self._stop_requested else "completed"
            if self._terminated is not None:
                reason = "terminated"
        except ComponentError as exc:
            failure = exc
            reason = "failed"
            await self._start_observers()
            await self._report_failure(exc)
            raise
        finally:
            if reason == "cancelled" and self._terminated is not None:
                reason = "terminated"
            self._set_stop_reason(reason)
            with anyio.CancelScope(shield=True):
                stop_error = await self._stop_all(drain=failure is None)
        if stop_error is not None:
            raise stop_error

    async def _start(self, component: Component) -> None:
        self._set_state(component, ComponentState.STARTING)
        try:
            component._subscribe_handlers()
            await call_hook(component.on_start)
        except (Exception, SystemExit) as exc:
            self._set_state(component, ComponentState.FAILED)
            self._started.append(component)  # so that its on_stop still runs
            err = ComponentError(
                f"component {component.name!r} failed in on_start: {describe_failure(exc)}",
                component=component.name,
                time_ns=self.clock.now_ns(),
            )
            raise err from exc
        self._started.append(component)
        self._set_state(component, ComponentState.RUNNING)

    async def _join(self) -> None:
        """Start the components added while running (see :meth:`add`)."""
        while self._joining:
            component = self._joining.pop(0)
            if component in self._started:  # added by an on_start: started with the rest
                continue
            component._subscribe_handlers()  # retained session events are queued first
            await self._start(component)
            await self.bus.drain()

    async def _start_observers(self) -> None:
        """Start the observers a start failure came before (a further failure is logged)."""
        for component in self._components:
            if component.name in self._observers and component not in self._started:
                try:
                    await self._start(component)
                except ComponentError as exc:
                    self.log.error("observer_failed_to_start", error=str(exc))

    async def _loop_simulated(self) -> None:
        clock = self.clock
        assert isinstance(clock, SimulatedClock)
        drain = self.bus.dispatcher.drain
        pop_alarm = clock.pop_alarm
        checkpoint = anyio.lowlevel.checkpoint
        monotonic = time.monotonic
        fired = 0
        last_yield = monotonic()
        await drain()
        if self._joining:
            await self._join()
        while not self._stop_requested:
            alarm = pop_alarm()
            if alarm is None:
                break
            clock.advance_to(alarm.ts_ns)
            _fire(alarm, clock)
            await drain()
            if self._joining:
                await self._join()
            fired += 1
            # yield to the event loop (so Ctrl-C and cancel scopes get in) every few
            # hundred alarms, or sooner when handlers are slow
            if not fired % _CHECKPOINT_EVERY or monotonic() - last_yield > _YIELD_AFTER_S:
                await checkpoint()
                last_yield = monotonic()
        self.alarms_fired += fired

    async def _loop_wall(self) -> None:
        clock = self.clock
        assert isinstance(clock, WallClock)
        drain = self.bus.dispatcher.drain
        while not self._stop_requested:
            await drain()
            if self._joining:
                await self._join()
            if self._stop_requested:
                break
            due = clock.next_alarm_ns()
            if due is None:
                if self.exit_when_idle and not self.bus.dispatcher.pending:
                    break
                await self._sleep(None)
                continue
            delay = clock.seconds_until(due)
            if delay > 0:
                await self._sleep(delay)
                continue
            alarm = clock.pop_alarm()
            if alarm is not None:
                _fire(alarm, clock)
                self.alarms_fired += 1
            await anyio.lowlevel.checkpoint()

    async def _sleep(self, seconds: float | None) -> None:
        """Sleep until ``seconds`` pass or something is scheduled, published or stopped."""
        self._wake = wake = anyio.Event()
        if self.bus.dispatcher.pending:
            return
        if seconds is None:
            await wake.wait()
        else:
            with anyio.move_on_after(seconds):
                await wake.wait()
        self._wake = None

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------ failure and stop

    async def _report_failure(self, exc: ComponentError) -> None:
        failed = next((c for c in self._components if c.name == exc.component), None)
        if failed is not None:
            self._set_state(failed, ComponentState.FAILED)
            self.bus.dispatcher.disable(failed.name)
        cause = exc.__cause__
        tb = "".join(traceback.format_exception(cause)) if cause is not None else ""
        self.log.error("component_failed", failed=exc.component, error=str(exc))
        self.bus.publish(
            ERRORS,
            ComponentFailed(
                ts_event=self.clock.now_ns(),
                component=exc.component,
                error_type=type(cause).__name__ if cause is not None else type(exc).__name__,
                message=str(exc),
                event_type=exc.event_type or "",
                traceback=tb,
            ),
        )
        if isinstance(self.bus.dispatcher, SequencedDispatcher):
            await self._drain_quietly()

    async def _drain_quietly(self) -> None:
        """Deliver what is pending; a further failure is logged, not raised."""
        while self.bus.dispatcher.pending:
            try:
                await self.bus.drain()
            except ComponentError as exc:
                self.log.error("component_failed_during_shutdown", error=str(exc))

    def _set_stop_reason(self, reason: str) -> None:
        for component in self._components:
            if component._ctx is not None:
                component._ctx.stop_reason = reason

    async def _stop_all(self, *, drain: bool) -> ComponentError | None:
        """Call every started component's ``on_stop``, last started first.

        An ``on_stop`` that raises fails the run: the failure is published on ``errors``
        (so a recorder that stops later marks its results failed) and raised at the end.
        """
        first_error: ComponentError | None = None
        for component in reversed(self._started):
            if component.state is not ComponentState.FAILED:
                self._set_state(component, ComponentState.STOPPING)
            try:
                await call_hook(component.on_stop)
            except (Exception, SystemExit) as exc:
                self.log.error("on_stop_failed", failed=component.name, error=repr(exc))
                error = ComponentError(
                    f"component {component.name!r} failed in on_stop: {describe_failure(exc)}",
                    component=component.name,
                    time_ns=self.clock.now_ns(),
                )
                error.__cause__ = exc
                first_error = first_error or error
                self._set_stop_reason("failed")
                await self._report_failure(error)
            if drain and isinstance(self.bus.dispatcher, SequencedDispatcher):
                await self._drain_quietly()
        for component in reversed(self._started):
            component._unsubscribe_all()
            if component.state is not ComponentState.FAILED:
                self._set_state(component, ComponentState.STOPPED)
        if isinstance(self.bus.dispatcher, SequencedDispatcher):
            self.bus.dispatcher.clear()
        self._started.clear()
        return first_error

    def _set_state(self, component: Component, state: ComponentState) -> None:
        component.state = state
        self.bus.publish(
            LIFECYCLE,
            ComponentStateChanged(
                ts_event=self.clock.now_ns(), component=component.name, state=state
            ),
        )


def _fire(alarm: Alarm, clock: Clock) -> None:
    """Run an alarm's callback; an exception becomes a ComponentError naming its owner."""
    try:
        alarm.callback()
    except ComponentError:
        raise
    except (Exception, SystemExit) as exc:
        now_ns = clock.now_ns()
        owner = alarm.owner or "clock"
        err = ComponentError(
            f"component {owner!r} failed in a clock alarm at {from_ns(now_ns).isoformat()}: "
            f"{describe_failure(exc)}",
            component=owner,
            event_type="alarm",
            time_ns=now_ns,
        )
        raise err from exc


def unwrap_group(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one meaningful exception of a task group's failure (a ComponentError first)."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    for exc in leaves:
        if isinstance(exc, ComponentError):
            return exc
    return leaves[0] if leaves else group


async def run_terminable(
    main: Callable[[], Awaitable[T]], runtime: Callable[[], Runtime | None]
) -> T:
    """Await ``main()``, which runs the graph ``runtime()`` returns; SIGTERM terminates it.

    What ``asyncio.run`` does for Ctrl-C, for SIGTERM: the signal calls
    :meth:`Runtime.terminate`, so every ``on_stop`` runs and the results are flushed and
    marked incomplete before :class:`RunTerminated` (exit status 143) is raised. A signal
    before the graph runs or after it has run ends ``main`` at its next checkpoint with
    :class:`RunTerminated`. A second signal while the results are written is ignored.
    Installed
    only in the main thread and only while SIGTERM has its default action: a handler of
    the caller's own is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return await main()
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return await main()
    early: list[int] = []

    async def watch(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async for signum in signals:
                graph = runtime()
                if graph is not None and graph.outcome is RunOutcome.RUNNING:
                    graph.terminate(signum)
                else:  # before or after the run: nothing to flush, end now
                    early.append(signum)
                    scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch, tg.cancel_scope)
            try:
                result = await main()
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        error = unwrap_group(group)
        raise error from error.__cause__  # keep the failure's own cause
    if early:
        raise RunTerminated(early[0])
    return result
