"""``run()`` where an event loop already runs in the thread (Jupyter, IPython, an async
app): the same tables as a script, and Ctrl-C (a real SIGINT to a child process) cancels
the run with its results flushed and marked incomplete, as in a script."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from ml4t.backtest import Component, ComponentError, Runtime, SimulatedClock, TimerFired
from ml4t.backtest._blocking import loop_running, run_blocking
from ml4t.backtest.config import load_config
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.runtime import RunOutcome

from .conftest import base_config
from .strategies import Explodes, SignalBatch

TABLES = (
    "trades.parquet",
    "fills.parquet",
    "orders.parquet",
    "order_history.parquet",
    "portfolio.parquet",
    "cash_flows.parquet",
    "metrics.json",
)


def _engine(ds, out: Path | None, strategy=None) -> BacktestEngine:
    config = load_config(base_config(ds, out))
    return BacktestEngine(config, strategy=strategy or SignalBatch("strategy"))


def _digests(out: Path) -> dict[str, str]:
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in TABLES}


def test_run_inside_a_running_asyncio_loop_writes_byte_identical_tables(
    dataset, tmp_path: Path
) -> None:
    script = _engine(dataset, tmp_path / "script").run()
    threads: list[str] = []

    async def app() -> object:
        assert loop_running()
        engine = _engine(dataset, tmp_path / "in-loop")
        results = engine.run()  # would be "Already running asyncio in this thread"
        threads.append(threading.current_thread().name)
        return results

    in_loop = asyncio.run(app())
    assert script.trades.height >= 8, "the scenario must trade"
    assert in_loop.complete and in_loop.outcome is RunOutcome.COMPLETED  # type: ignore[attr-defined]
    assert _digests(tmp_path / "in-loop") == _digests(tmp_path / "script")
    assert in_loop.trades.equals(script.trades)  # type: ignore[attr-defined]
    assert threads == [threading.main_thread().name]  # the caller got its results back


def test_run_async_awaited_on_the_callers_loop_gives_the_same_trades(dataset) -> None:
    script = _engine(dataset, None).run()
    awaited = asyncio.run(_engine(dataset, None).run_async())
    assert awaited.trades.equals(script.trades) and awaited.portfolio.equals(script.portfolio)


def test_a_failing_strategy_inside_a_running_loop_raises_the_scripts_error(
    dataset, tmp_path: Path
) -> None:
    async def app() -> None:
        _engine(dataset, tmp_path, Explodes("boom")).run()

    with pytest.raises(ComponentError, match="'boom'") as caught:
        asyncio.run(app())
    assert caught.value.component == "boom"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed" and not manifest["complete"]


class Ticker(Component):
    """Ten timer ticks, then nothing: records the thread and the context it ran in."""

    def __init__(self) -> None:
        super().__init__("ticker")
        self.ticks = 0
        self.thread = ""

    def on_start(self) -> None:
        self.thread = threading.current_thread().name
        self.set_timer("tick", interval_ns=1_000, stop_ns=10_000)

    def on_timer(self, event: TimerFired) -> None:
        self.ticks += 1


def test_runtime_run_sync_inside_a_running_loop_runs_on_a_worker_thread() -> None:
    runtime = Runtime(clock=SimulatedClock(0))
    ticker = runtime.add(Ticker())

    async def app() -> None:
        runtime.run_sync()

    asyncio.run(app())
    assert runtime.outcome is RunOutcome.COMPLETED and ticker.ticks == 10
    assert ticker.thread == "ml4t-run"


def test_run_blocking_outside_a_loop_runs_in_the_callers_thread() -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert not loop_running()
    assert run_blocking(where) == threading.current_thread().name


def test_run_blocking_inside_a_loop_sees_the_callers_context_variables() -> None:
    import contextvars

    request = contextvars.ContextVar("request", default="none")

    async def read() -> tuple[str, str]:
        return request.get(), threading.current_thread().name

    async def app() -> tuple[str, str]:
        request.set("r-42")
        return run_blocking(read)

    assert asyncio.run(app()) == ("r-42", "ml4t-run")


# ----------------------------------------------------------------- Ctrl-C in a real loop

CHILD = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    from ml4t.backtest import BacktestEngine, BatchStrategy, load_config
    from ml4t.backtest.live import PaperSession

    class Slow(BatchStrategy):
        '''Trades a little and takes its time, so that the run is still going when the
        signal comes.'''

        def on_start(self):
            self.seen = 0

        def on_timestamp(self, timestamp, batch, context):
            self.seen += 1
            if self.seen == 5:
                print("running", threading.current_thread().name, flush=True)
            if self.seen % 50 == 1:
                self.buy(batch["symbol"][0], 1)
            time.sleep(0.002)

    def config(out):
        return load_config({
            "backtest": {"initial_capital": 100_000},
            "data": {"asset": {"path": sys.argv[2]}},
            "reporting": {"output_dir": out},
        })

    async def app():
        if sys.argv[1] == "engine":
            engine = BacktestEngine(config(sys.argv[3]), strategy=Slow("slow"))
            try:
                engine.run()
            finally:
                print("outcome", engine.runtime.outcome.value, flush=True)
        else:
            session = PaperSession(BacktestEngine(config(sys.argv[3]), strategy=Slow("slow")),
                                   speed=float("inf"), view=False, handle_signals=True)
            results = session.run_sync()
            print("outcome", results.outcome.value, session.interrupted, flush=True)

    asyncio.run(app())
    """
)


def _interrupt_child(kind: str, data: str, out: Path) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, data, str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.split() == ["running", "ml4t-run"], (line, proc.communicate(timeout=60))
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, line + rest, err


def _check_flushed(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["status"] == "incomplete"
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names
    for name, info in manifest["files"].items():
        if name.endswith(".parquet"):
            assert pq.ParquetFile(out / name).metadata.num_rows == info["rows"]
    return manifest


def test_ctrl_c_during_run_inside_a_running_loop_flushes_and_raises_keyboard_interrupt(
    dataset, tmp_path: Path
) -> None:
    code, out, err = _interrupt_child("engine", dataset.asset, tmp_path)
    assert code != 0 and "KeyboardInterrupt" in err, err
    assert out.splitlines()[-1] == "outcome cancelled"
    manifest = _check_flushed(tmp_path)
    assert "cancelled" in manifest["incomplete_reason"]
    assert 5 <= manifest["market_batches"] < 390 * 8  # cut short: 8 days of minute bars
    assert pl.read_parquet(tmp_path / "portfolio.parquet").height > 0


def test_ctrl_c_during_a_paper_session_inside_a_running_loop_stops_it_cleanly(
    dataset, tmp_path: Path
) -> None:
    code, out, err = _interrupt_child("paper", dataset.asset, tmp_path)
    assert code == 0, err
    assert out.splitlines()[-1] == "outcome stopped interrupted (Ctrl-C)"
    manifest = _check_flushed(tmp_path)
    assert "interrupted (Ctrl-C)" in manifest["incomplete_reason"]


TWICE = textwrap.dedent(
    """
    import asyncio, time
    from ml4t.backtest import Component, Runtime, SimulatedClock

    class Ticks(Component):
        '''Ticks for ever (a slow alarm at a time); its on_stop takes its time.'''

        def on_start(self):
            self.set_timer("tick", interval_ns=1_000)

        def on_timer(self, event):
            if event.ts_event == 1_000:
                print("running", flush=True)
            time.sleep(0.001)

        def on_stop(self):
            time.sleep(2.0)
            print("on_stop done", flush=True)

    async def app():
        runtime = Runtime(clock=SimulatedClock(0))
        runtime.add(Ticks("ticks"))
        try:
            runtime.run_sync()
        except KeyboardInterrupt:
            print("caller stopped waiting", runtime.outcome.value, flush=True)

    asyncio.run(app())
    """
)


def test_a_second_interrupt_while_the_run_stops_ends_the_wait_and_the_flush_still_ends() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", TWICE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running"
        proc.send_signal(signal.SIGINT)  # cancel: on_stop starts its two seconds
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # stop waiting for it
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    # the caller got control back while on_stop was still running, and the worker thread
    # (not a daemon) still finished it before the process ended
    assert out.splitlines() == ["caller stopped waiting running", "on_stop done"]
