"""Helpers for the data layer tests: a recording subscriber, running a feed, writing files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ml4t.backtest import Component, MarketBatch, Runtime, on
from ml4t.backtest.data import ParquetFeed
from ml4t.backtest.topics import MARKET


class Recorder(Component):
    """A real subscriber: keeps every MarketBatch it is handed, and the clock time."""

    def __init__(self, name: str = "recorder") -> None:
        super().__init__(name)
        self.batches: list[MarketBatch] = []
        self.clock_times: list[int] = []

    @on(MARKET)
    def record(self, batch: MarketBatch) -> None:
        self.batches.append(batch)
        self.clock_times.append(self.now_ns())


def run_feed(feed: ParquetFeed, *, strict: bool = False) -> Recorder:
    """Run ``feed`` and a Recorder on a fresh Runtime (simulated clock) to the end."""
    runtime = Runtime(strict=strict)
    runtime.add(feed)
    recorder = runtime.add(Recorder())
    runtime.run_sync()
    return recorder


def write(df: pl.DataFrame, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.write_parquet(path)
    return str(path)
