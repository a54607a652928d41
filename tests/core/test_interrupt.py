"""Ctrl-C (SIGINT) or SIGTERM on a running graph: every component's on_stop runs, then
the process ends with KeyboardInterrupt (SIGINT) or exit status 143 (SIGTERM). Run in a
child process so the signal is real."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

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
