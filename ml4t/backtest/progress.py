"""Progress of a run: a counting component inside the graph, a display outside it.

:class:`RunProgress` lives on the bus and only counts (rows, batches, the last simulated
time), so it costs an addition per batch and never reads a wall clock. :class:`ProgressBar`
runs as a separate task beside the graph, polls the counter a few times a second and
draws a rich progress bar (events, simulated date, throughput, ETA). It stays quiet when
the output is not a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import anyio
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ml4t.backtest._span import MARKET_SPAN, MarketSpan
from ml4t.backtest._time import from_ns
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.events import ChunkColumns, MarketBatch
from ml4t.backtest.topics import MARKET

__all__ = ["ProgressBar", "RunProgress"]


class RunProgress(Component):
    """Counts market rows and batches as they pass (the last thing in each timestamp)."""

    def __init__(self, name: str = "progress") -> None:
        super().__init__(name)
        self.rows = 0
        self.batches = 0
        self.last_ts_ns: int | None = None
        self.first_ts_ns: int | None = None

    @on(MARKET, phase=Phase.RECORD)
    def _count(self, batch: MarketBatch) -> None:
        self.rows += batch.frame.height
        self.batches += 1
        if self.first_ts_ns is None:
            self.first_ts_ns = batch.ts_event
        self.last_ts_ns = batch.ts_event

    # quiet spans (see ml4t.backtest._span) are counted as their batches
    span_handlers = frozenset({"_count", "_count_span"})

    def quiet_until(self, chunk: ChunkColumns, first: int, last: int) -> int:
        return last

    @on(MARKET_SPAN, phase=Phase.RECORD)
    def _count_span(self, span: MarketSpan) -> None:
        self.rows += span.height
        self.batches += span.steps
        if self.first_ts_ns is None:
            self.first_ts_ns = span.times[0]
        self.last_ts_ns = span.times[-1]


class ProgressBar:
    """A terminal progress bar fed by a :class:`RunProgress`; a no-op off a terminal."""

    def __init__(
        self,
        counter: RunProgress,
        *,
        start_ns: int | None,
        end_ns: int | None,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.25,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        self.counter = counter
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.interval = interval
        self._console = Console(file=stream)

    async def run(self) -> None:
        """Redraw until cancelled (the engine cancels it when the graph is done)."""
        if not self.enabled:
            await anyio.sleep_forever()
        columns = (
            TextColumn("[bold]{task.fields[when]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]} bar-events  {task.fields[rate]}/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self._console, transient=False) as progress:
            task = progress.add_task("backtest", total=1.0, when="starting", rows="0", rate="0")
            wall0 = time.perf_counter()
            try:
                while True:
                    await anyio.sleep(self.interval)
                    self._draw(progress, task, time.perf_counter() - wall0)
            finally:
                self._draw(progress, task, time.perf_counter() - wall0)

    def _draw(self, progress: Progress, task: object, elapsed: float) -> None:
        counter = self.counter
        done = 0.0
        when = "starting"
        if counter.last_ts_ns is not None:
            when = from_ns(counter.last_ts_ns).strftime("%Y-%m-%d %H:%M")
            if (
                self.start_ns is not None
                and self.end_ns is not None
                and self.end_ns > self.start_ns
            ):
                done = (counter.last_ts_ns - self.start_ns) / (self.end_ns - self.start_ns)
        rate = counter.rows / elapsed if elapsed > 0 else 0.0
        progress.update(
            task,  # type: ignore[arg-type]
            completed=min(max(done, 0.0), 1.0),
            when=when,
            rows=f"{counter.rows:,}",
            rate=f"{rate:,.0f}",
        )
