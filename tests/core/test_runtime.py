"""The runtime: determinism whatever handlers await, clean failure, clean cancellation."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import anyio
import pytest

from ml4t.backtest import (
    Component,
    ComponentError,
    ComponentFailed,
    ComponentState,
    RunOutcome,
    Runtime,
    SimulatedClock,
    TimerFired,
    WallClock,
    on,
)
from ml4t.backtest.topics import ERRORS, LIFECYCLE

from ._graph import CHAIN, Num, Recorder, Relay, Source


def _random_delay(rng: random.Random):
    async def delay() -> None:
        choice = rng.random()
        if choice < 0.3:
            await anyio.sleep(rng.random() * 0.0005)
        elif choice < 0.6:
            await anyio.lowlevel.checkpoint()

    return delay


class Ticker(Component):
    """Sets a repeating timer and publishes a Num on each fire."""

    def __init__(self, interval: int, stop: int) -> None:
        super().__init__("ticker")
        self.interval = interval
        self.stop = stop

    def on_start(self) -> None:
        self.set_timer("tick", interval_ns=self.interval, start_ns=0, stop_ns=self.stop)

    def on_timer(self, event: TimerFired) -> None:
        self.publish(CHAIN[1], Num(ts_event=event.ts_event, value=-1, path="tick"))


def _build_graph(seed: int) -> tuple[Runtime, Recorder]:
    rng = random.Random(seed)
    runtime = Runtime(strict=True)
    runtime.add(Source(CHAIN[0], times=[t * 10 for t in range(40)] + [395, 395, 400]))
    runtime.add(Relay("fan_a", CHAIN[0], CHAIN[1], delay=_random_delay(rng)))
    runtime.add(Relay("fan_b", CHAIN[0], CHAIN[1], delay=_random_delay(rng)))
    runtime.add(Relay("join", CHAIN[1], CHAIN[2], delay=_random_delay(rng)))
    runtime.add(Ticker(interval=25, stop=300))
    recorder = runtime.add(Recorder(CHAIN[0], CHAIN[1], CHAIN[2]))
    return runtime, recorder


def test_graph_with_random_awaits_gives_the_identical_event_log_20_times() -> None:
    logs = []
    for run in range(20):
        seed = 1000 + run
        runtime, recorder = _build_graph(seed)
        runtime.run_sync()
        assert runtime.outcome is RunOutcome.COMPLETED, f"seed {seed}"
        logs.append(recorder.log_)
    first = logs[0]
    # 43 source events, each fanned out twice and joined: 43 + 86 + 86, plus 13 ticks
    # on chain.1 that "join" also relays.
    assert len(first) == 43 + 86 + 86 + 13 + 13
    for run, log in enumerate(logs[1:], start=1):
        assert log == first, f"run with seed {1000 + run} diverged from seed 1000"


def test_clock_only_advances_when_graph_is_quiescent() -> None:
    runtime, recorder = _build_graph(seed=7)
    runtime.run_sync()
    for _topic, now, event in recorder.log_:
        assert now == event.ts_event  # every derived event was handled at its own time
    times = [now for _, now, _ in recorder.log_]
    assert times == sorted(times)


class Exploder(Component):
    def __init__(self, at_value: int) -> None:
        super().__init__("exploder")
        self.at_value = at_value
        self.stopped = False

    @on(CHAIN[0])
    def handle(self, event: Num) -> None:
        if event.value == self.at_value:
            raise RuntimeError(f"cannot handle {event.value}")

    def on_stop(self) -> None:
        self.stopped = True


def _no_task_left(before: set[asyncio.Task[Any]]) -> bool:
    """True if no task exists now that did not exist at ``before`` (the test runner's)."""
    return asyncio.all_tasks() <= before


@pytest.mark.anyio
async def test_handler_that_raises_stops_the_run_with_a_clear_error() -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime()
    runtime.add(Source(CHAIN[0], times=[1_000_000_000 * t for t in range(10)]))
    exploder = runtime.add(Exploder(at_value=3))
    recorder = runtime.add(Recorder(CHAIN[0], ERRORS))
    with pytest.raises(ComponentError) as info:
        await runtime.run()
    err = info.value
    assert err.component == "exploder" and err.event_type == "Num"
    assert err.time_ns == 3_000_000_000
    assert str(err).startswith(
        "component 'exploder' failed handling Num at 1970-01-01T00:00:03+00:00: "
        "RuntimeError: cannot handle 3"
    )
    assert runtime.outcome is RunOutcome.FAILED
    assert exploder.state is ComponentState.FAILED and exploder.stopped
    assert recorder.state is ComponentState.STOPPED and recorder.stopped
    failures = [e for t, _, e in recorder.log_ if t == "errors"]
    assert len(failures) == 1 and isinstance(failures[0], ComponentFailed)
    assert failures[0].error_type == "RuntimeError" and "cannot handle 3" in failures[0].traceback
    # nothing after the failing time was processed
    assert max(e.value for t, _, e in recorder.log_ if t == "chain.0") == 3
    assert _no_task_left(before)


class FailsToStart(Component):
    def on_start(self) -> None:
        raise OSError("port in use")


class Tracks(Component):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls: list[str] = []

    def on_start(self) -> None:
        self.calls.append("start")

    async def on_stop(self) -> None:
        await anyio.sleep(0)
        self.calls.append("stop")


@pytest.mark.anyio
async def test_component_failing_in_on_start_stops_the_ones_already_started() -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime()
    first = runtime.add(Tracks("first"))
    runtime.add(FailsToStart("flaky"))
    never = runtime.add(Tracks("never"))
    with pytest.raises(ComponentError, match=r"component 'flaky' failed in on_start: OSError"):
        await runtime.run()
    assert first.calls == ["start", "stop"] and first.state is ComponentState.STOPPED
    assert never.calls == [] and never.state is ComponentState.CREATED
    assert runtime.outcome is RunOutcome.FAILED
    assert _no_task_left(before)


class Slow(Component):
    """Takes real time per event; cancels ``scope`` (if given) after ``cancel_after``
    events, so a run is cancelled in the middle however loaded the machine is."""

    def __init__(self, scope: anyio.CancelScope | None = None, cancel_after: int = 20) -> None:
        super().__init__("slow")
        self.handled = 0
        self.stopped = False
        self.scope = scope
        self.cancel_after = cancel_after

    @on(CHAIN[0])
    async def handle(self, event: Num) -> None:
        await anyio.sleep(0.002)
        self.handled += 1
        if self.scope is not None and self.handled == self.cancel_after:
            self.scope.cancel()

    def on_stop(self) -> None:
        self.stopped = True


@pytest.mark.anyio
@pytest.mark.parametrize("dispatch", ["sequenced", "concurrent"])
async def test_cancellation_mid_run_stops_every_component_and_leaves_no_task(
    dispatch: Any,
) -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime(dispatch=dispatch)
    runtime.add(Source(CHAIN[0], times=list(range(1000))))
    scope = anyio.CancelScope()
    slow = runtime.add(Slow(scope, cancel_after=20))
    tracker = runtime.add(Tracks("tracker"))
    with scope:
        await runtime.run()
    assert scope.cancelled_caught
    assert runtime.outcome is RunOutcome.CANCELLED
    assert 0 < slow.handled < 1000
    assert slow.stopped and tracker.calls == ["start", "stop"]
    assert slow.state is ComponentState.STOPPED
    assert _no_task_left(before)


@pytest.mark.anyio
async def test_concurrent_dispatch_failure_is_a_component_error() -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime(dispatch="concurrent")
    runtime.add(Source(CHAIN[0], times=list(range(10))))
    exploder = runtime.add(Exploder(at_value=4))
    with pytest.raises(ComponentError, match="component 'exploder' failed handling Num"):
        await runtime.run()
    assert exploder.stopped and exploder.state is ComponentState.FAILED
    assert _no_task_left(before)


@pytest.mark.anyio
async def test_concurrent_dispatch_keeps_each_subscriber_fifo() -> None:
    before = set(asyncio.all_tasks())
    runtime = Runtime(dispatch="concurrent")
    runtime.add(Source(CHAIN[0], times=[0] * 200))
    runtime.add(Relay("relay", CHAIN[0], CHAIN[1], delay=_random_delay(random.Random(3))))
    recorder = runtime.add(Recorder(CHAIN[1]))
    await runtime.run()
    assert [e.value for _, _, e in recorder.log_] == [i + 1 for i in range(200)]
    assert _no_task_left(before)


def test_lifecycle_events_trace_every_state() -> None:
    runtime = Runtime()
    watcher = runtime.add(Recorder(LIFECYCLE, name="watcher"))
    runtime.add(Tracks("worker"))
    runtime.run_sync()
    states = [(e.component, e.state) for _, _, e in watcher.log_]
    # every component subscribes before any starts, so the watcher sees its own start too
    assert states == [
        ("watcher", ComponentState.STARTING),
        ("watcher", ComponentState.RUNNING),
        ("worker", ComponentState.STARTING),
        ("worker", ComponentState.RUNNING),
        ("worker", ComponentState.STOPPING),
        ("watcher", ComponentState.STOPPING),
    ]


def test_a_graph_runs_once_and_names_are_unique() -> None:
    runtime = Runtime()
    runtime.add(Tracks("a"))
    with pytest.raises(ComponentError, match="already in the graph"):
        runtime.add(Tracks("a"))
    runtime.run_sync()
    with pytest.raises(ComponentError, match="already run"):
        runtime.run_sync()


def test_component_without_graph_explains_itself() -> None:
    with pytest.raises(ComponentError, match="not part of a running graph"):
        Tracks("loose").publish(CHAIN[0], Num(ts_event=0, value=1))


class TimerLog(Component):
    def __init__(self) -> None:
        super().__init__("timers")
        self.fired: list[tuple[str, int, int]] = []

    def on_start(self) -> None:
        self.set_timer("every", interval_ns=10, start_ns=5, stop_ns=45)
        self.set_timer("once", start_ns=22)
        self.set_timer("cancelled", start_ns=30)
        self.cancel_timer("cancelled")

    def on_timer(self, event: TimerFired) -> None:
        self.fired.append((event.name, event.ts_event, self.now_ns()))


def test_timers_fire_on_schedule_on_a_simulated_clock() -> None:
    runtime = Runtime(clock=SimulatedClock(0))
    timers = runtime.add(TimerLog())
    runtime.run_sync()
    assert timers.fired == [
        ("every", 5, 5),
        ("every", 15, 15),
        ("once", 22, 22),
        ("every", 25, 25),
        ("every", 35, 35),
        ("every", 45, 45),
    ]


def test_timers_behave_the_same_on_a_wall_clock() -> None:
    """Times are relative to the clock's reading in ``on_start`` plus a margin: a wall
    clock runs while the graph starts (a start that passed a timer's first time would
    rightly skip it), and a loaded machine can take many milliseconds to start."""
    ms = 1_000_000
    runtime = Runtime(clock=WallClock(speed=1.0, origin_ns=0))
    base: list[int] = []

    class WallTimers(TimerLog):
        def on_start(self) -> None:
            t0 = self.now_ns() + 100 * ms
            base.append(t0)
            self.set_timer("every", interval_ns=40 * ms, start_ns=t0, stop_ns=t0 + 120 * ms)
            self.set_timer("once", start_ns=t0 + 50 * ms)

    timers = runtime.add(WallTimers())
    runtime.run_sync()
    (t0,) = base
    assert [(n, t - t0) for n, t, _ in timers.fired] == [
        ("every", 0),
        ("every", 40 * ms),
        ("once", 50 * ms),
        ("every", 80 * ms),
        ("every", 120 * ms),
    ]
    for _, scheduled, seen_at in timers.fired:
        assert seen_at >= scheduled  # a wall clock never fires early


def test_data_before_timers_at_the_same_time() -> None:
    runtime = Runtime()

    class Both(Component):
        def __init__(self) -> None:
            super().__init__("both")
            self.seen: list[str] = []

        def on_start(self) -> None:
            self.set_timer("t", start_ns=10)

        @on(CHAIN[0])
        def data(self, event: Num) -> None:
            self.seen.append("data")

        def on_timer(self, event: TimerFired) -> None:
            self.seen.append("timer")

    both = runtime.add(Both())
    runtime.add(Source(CHAIN[0], times=[10]))
    runtime.run_sync()
    assert both.seen == ["data", "timer"]


def test_simulated_alarm_in_the_past_is_refused() -> None:
    clock = SimulatedClock(100)
    with pytest.raises(ValueError, match="before the simulated time"):
        clock.schedule(99, lambda: None)


def test_wall_clock_replays_at_speed() -> None:
    clock = WallClock(speed=1000.0, origin_ns=0)
    assert clock.seconds_until(2_000_000_000) <= 0.002
    with pytest.raises(ValueError, match="speed must be positive"):
        WallClock(speed=0)


class Reason(Component):
    def __init__(self) -> None:
        super().__init__("reason")
        self.seen = ""

    def on_stop(self) -> None:
        self.seen = self.context.stop_reason


@pytest.mark.anyio
async def test_on_stop_knows_why_the_run_ended() -> None:
    done = Runtime()
    ok = done.add(Reason())
    await done.run()
    assert ok.seen == "completed"

    failing = Runtime()
    failing.add(Source(CHAIN[0], times=[0, 1]))
    failing.add(Exploder(at_value=1))
    witness = failing.add(Reason())
    with pytest.raises(ComponentError):
        await failing.run()
    assert witness.seen == "failed"

    cancelled = Runtime()
    cancelled.add(Source(CHAIN[0], times=list(range(1000))))
    scope = anyio.CancelScope()
    cancelled.add(Slow(scope, cancel_after=5))
    late = cancelled.add(Reason())
    with scope:
        await cancelled.run()
    assert late.seen == "cancelled"


class BadAlarm(Component):
    def on_start(self) -> None:
        self.clock.schedule(5_000_000_000, self._tick)

    def _tick(self) -> None:
        raise LookupError("chunk 3 is corrupt")


def test_alarm_callback_that_raises_names_its_component() -> None:
    runtime = Runtime()
    runtime.add(BadAlarm("feed"))
    witness = runtime.add(Recorder(ERRORS))
    with pytest.raises(ComponentError) as info:
        runtime.run_sync()
    assert str(info.value) == (
        "component 'feed' failed in a clock alarm at 1970-01-01T00:00:05+00:00: "
        "LookupError: chunk 3 is corrupt"
    )
    assert info.value.component == "feed" and isinstance(info.value.__cause__, LookupError)
    assert [e.component for _, _, e in witness.log_] == ["feed"]
