"""Ctrl-C (SIGINT) or SIGTERM on a running graph: every component's on_stop runs, then
the process ends with KeyboardInterrupt (SIGINT) or exit status 143 (SIGTERM). Run in a
child process so the signal is real."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from ml4t.backtest import Component, SimulatedClock, TimerFired
from ml4t.backtest.runtime import RunOutcome, RunTerminated, Runtime

CHILD = textwrap.dedent(
    """
    import sys
    import anyio
    from ml4t.backtest import Component, Runtime, WallClock, Event, Topic, on

    class Tick(Event, frozen=True, kw_only=True):
        n: int

    TICKS = Topic("ticks", Tick)

    class Producer(Component):
        def on_start(self):
            self.set_timer("tick", interval_ns=1_000_000)
            print("running", flush=True)

        def on_timer(self, event):
            self.publish(TICKS, Tick(ts_event=event.ts_event, n=1))

        def on_stop(self):
            print(f"stopped:{self.name}", flush=True)

    class Consumer(Component):
        @on(TICKS)
        async def handle(self, event):
            await anyio.sleep(0)

        async def on_stop(self):
            await anyio.sleep(0.01)  # an async flush still completes
            print(f"stopped:{self.name}", flush=True)

    runtime = Runtime(clock=WallClock(), dispatch=sys.argv[1], exit_when_idle=False)
    runtime.add(Producer("producer"))
    runtime.add(Consumer("consumer"))
    try:
        runtime.run_sync()
    finally:
        print(f"outcome:{runtime.outcome.value}", flush=True)
    """
)


def _interrupt(dispatch: str, signum: int = signal.SIGINT) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, dispatch],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "running", line
    time.sleep(0.2)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, line + out, err


def test_sigint_stops_a_sequenced_wall_clock_graph_cleanly() -> None:
    code, out, err = _interrupt("sequenced")
    assert code != 0 and "KeyboardInterrupt" in err
    assert out.splitlines()[1:] == ["stopped:consumer", "stopped:producer", "outcome:cancelled"]


def test_sigint_stops_a_concurrent_graph_cleanly() -> None:
    code, out, err = _interrupt("concurrent")
    assert code != 0 and "KeyboardInterrupt" in err
    assert out.splitlines()[1:] == ["stopped:consumer", "stopped:producer", "outcome:cancelled"]


def test_sigterm_terminates_a_graph_cleanly_with_exit_status_143() -> None:
    code, out, err = _interrupt("sequenced", signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    assert out.splitlines()[1:] == ["stopped:consumer", "stopped:producer", "outcome:terminated"]


def test_sigterm_terminates_a_concurrent_graph_cleanly_with_exit_status_143() -> None:
    code, out, err = _interrupt("concurrent", signal.SIGTERM)
    assert code == 143, err
    assert out.splitlines()[1:] == ["stopped:consumer", "stopped:producer", "outcome:terminated"]


class Terminator(Component):
    """Calls ``terminate()`` on its graph at the third tick, as a SIGTERM handler would."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__("terminator")
        self.runtime = runtime
        self.ticks = 0
        self.stopped = False

    def on_start(self) -> None:
        self.set_timer("tick", interval_ns=1_000)

    def on_timer(self, event: TimerFired) -> None:
        self.ticks += 1
        if self.ticks == 3:
            self.runtime.terminate()

    def on_stop(self) -> None:
        self.stopped = True


def test_terminate_stops_every_component_and_raises_run_terminated_with_status_143() -> None:
    runtime = Runtime(clock=SimulatedClock(0))
    component = runtime.add(Terminator(runtime))
    with pytest.raises(RunTerminated) as info:
        runtime.run_sync()
    assert info.value.code == 143 and info.value.signum == signal.SIGTERM
    assert runtime.outcome is RunOutcome.TERMINATED
    assert component.stopped and component.ticks == 3
    assert component.context.stop_reason == "terminated"


def test_a_sigterm_handler_of_the_callers_own_is_left_alone() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not delivered in this test")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        runtime = Runtime(clock=SimulatedClock(0))
        seen: list[Any] = []

        class Looks(Component):
            def on_start(self) -> None:
                seen.append(signal.getsignal(signal.SIGTERM))

        runtime.add(Looks("looks"))
        runtime.run_sync()
        assert seen == [mine] and signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
