"""What ``ml4t paper`` and ``ml4t live`` share: a graph on a wall clock, run beside its
live view, stopped cleanly by Ctrl-C or SIGTERM.

:class:`SessionRunner` runs the runtime a subclass builds, with the
:class:`~ml4t.backtest.live.LiveView` (and any other task the subclass names) in one task
group. The first Ctrl-C or SIGTERM calls :meth:`SessionRunner.interrupt`, which asks the
subclass to stop the way it stops (paper: cancel the open orders and stop; live: ask the
risk manager to stop trading, then stop once the venue confirmed), with the results
marked incomplete; a second one cancels the graph at once (the results are still
flushed). In a notebook, where the loop already runs, the session runs on a worker
thread and a kernel interrupt does what Ctrl-C does in a script.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from ml4t.backtest._blocking import run_blocking
from ml4t.backtest._time import from_ns
from ml4t.backtest.engine import BacktestEngine, BacktestResults
from ml4t.backtest.live.monitor import LiveView, PaperMonitor
from ml4t.backtest.protocols import RecorderRole
from ml4t.backtest.runtime import Runtime, unwrap_group

__all__ = ["SessionRunner", "common_lines"]


class SessionRunner:
    """Runs ``engine``'s graph (as :meth:`build` makes it) beside ``view``; see the module.

    Subclasses implement :meth:`build` and :meth:`_stop`, and may add tasks to run beside
    the graph (:meth:`_tasks`).
    """

    view: LiveView

    def __init__(self, engine: BacktestEngine, *, handle_signals: bool = False) -> None:
        self.engine = engine
        self.handle_signals = handle_signals
        self.runtime: Runtime | None = None
        self.interrupted: str | None = None
        self.elapsed_time = 0.0
        self._scope: anyio.CancelScope | None = None  # the running session's

    def build(self) -> Runtime:
        raise NotImplementedError

    def _stop(self, why: str) -> None:
        """Stop the running graph cleanly because it was ``why`` (interrupted, ...)."""
        raise NotImplementedError

    def _tasks(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """Tasks to run beside the graph (cancelled when it stops)."""
        return []

    def mark_incomplete(self, reason: str) -> None:
        recorder = self.engine.recorder
        if isinstance(recorder, RecorderRole):  # as the engine reads it
            recorder.mark_incomplete(reason)

    def interrupt(self, why: str = "interrupted") -> None:
        """Stop cleanly (see :meth:`_stop`); safe from another task of the session's loop
        (a signal handler). Only the first call does anything."""
        if self.interrupted is not None or self.runtime is None:
            return
        self.interrupted = why
        self._stop(why)

    async def run(self) -> BacktestResults:
        runtime = self.runtime or self.build()
        start = time.perf_counter()
        try:
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                tg.start_soon(self.view.run)
                for task in self._tasks():
                    tg.start_soon(task)
                if self.handle_signals and threading.current_thread() is threading.main_thread():
                    tg.start_soon(self._watch_signals)
                try:
                    await runtime.run()
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise unwrap_group(group) from None
        finally:
            self._scope = None
            self.elapsed_time = time.perf_counter() - start
        return BacktestResults(
            recorder=self.engine.recorder,
            outcome=runtime.outcome,
            elapsed_time=self.elapsed_time,
            bar_events=self.engine.progress_counter.rows,
            initial_equity=self.engine.config.backtest.initial_capital,
        )

    def run_sync(self) -> BacktestResults:
        """Run to the end in a fresh event loop and return the results.

        Where this thread already runs a loop (a notebook), the session runs on a worker
        thread; a kernel interrupt then does what Ctrl-C does in a script: with
        ``handle_signals`` the first stops the session cleanly and the second cancels it
        (the results are returned either way), without it the run is cancelled and
        ``KeyboardInterrupt`` raised.
        """
        on_interrupt = self._on_keyboard_interrupt if self.handle_signals else None
        return run_blocking(self.run, on_interrupt=on_interrupt)

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if not self._on_signal(signum):
                    return

    def _on_signal(self, signum: int) -> bool:
        """The first signal stops the session cleanly, a second stops waiting for it (the
        graph is cancelled); False once nothing is left to do."""
        if self.interrupted is None:
            sigint = signum == signal.SIGINT
            self.interrupt("interrupted (Ctrl-C)" if sigint else "terminated (SIGTERM)")
            return True
        if self._scope is not None:
            self._scope.cancel()
        return False

    def _on_keyboard_interrupt(self, count: int) -> bool:
        """A kernel interrupt while :meth:`run_sync` waits on a worker thread is SIGINT;
        a third is left to :func:`~ml4t.backtest._blocking.run_blocking` (cancel)."""
        if count > 2:
            return False
        self._on_signal(signal.SIGINT)
        return True


def common_lines(
    monitor: PaperMonitor, results: BacktestResults, fmt: Callable[[int], str] | None
) -> list[str]:
    """The summary lines ``ml4t paper`` and ``ml4t live`` share: the market time seen
    (``fmt`` formats a time; None: ISO 8601 UTC), fills with their costs, trades by exit
    reason, P&L."""
    show = fmt or (lambda ns: from_ns(ns).isoformat(timespec="seconds"))
    lines = []
    if monitor.first_ts_ns is not None and monitor.last_ts_ns is not None:
        lines.append(f"  market time  {show(monitor.first_ts_ns)} to {show(monitor.last_ts_ns)}")
    fills = results.fills
    lines.append(
        f"  fills        {fills.height:,} (commission {float(fills['commission'].sum()):,.2f}, "
        f"slippage {float(fills['slippage'].sum()):,.2f})"
    )
    trades = results.trades
    reasons = trades["exit_reason"].fill_null("open").value_counts(sort=True)
    by_reason = ", ".join(f"{r} {n:,}" for r, n in reasons.sort("exit_reason").iter_rows())
    lines.append(f"  trades       {trades.height:,}" + (f" ({by_reason})" if by_reason else ""))
    pnl = results.final_equity - results.initial_equity
    lines.append(f"  P&L          {pnl:+,.2f} ({results.total_return:+.2%})")
    return lines
