"""Whole-graph runs over bars written by hand: a scripted strategy, the real engine.

``run_script(bars, steps, ...)`` builds a BacktestEngine over ``bars`` (symbol -> list of
(open, high, low, close, volume), one bar per day) and a strategy that, at bar ``i``,
calls ``steps[i](strategy)``; the results are kept in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from ml4t.backtest import BacktestEngine, BatchStrategy, OrderRejected
from ml4t.backtest.config import load_config

OHLCV = tuple[float, float, float, float, float]
Step = Callable[["Scripted"], Any]

START = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)  # daily bars known at the close


def frame(bars: Mapping[str, Sequence[OHLCV]], start: datetime = START) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for symbol, series in sorted(bars.items()):
        for i, (o, h, lo, c, v) in enumerate(series):
            rows.append(
                {
                    "timestamp": start + timedelta(days=i),
                    "symbol": symbol,
                    "open": float(o),
                    "high": float(h),
                    "low": float(lo),
                    "close": float(c),
                    "volume": float(v),
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    return frame.sort("timestamp", "symbol")  # the order the feed's validation asks for


def flat(price: float, volume: float = 1e6) -> OHLCV:
    return (price, price, price, price, volume)


class Scripted(BatchStrategy):
    """Runs ``steps[i]`` at the i-th timestamp; keeps every rejection and what it saw."""

    fractional = True

    def __init__(self, steps: Mapping[int, Step]) -> None:
        super().__init__("strategy")
        self.steps = dict(steps)
        self.bar = -1
        self.rejections: list[OrderRejected] = []
        self.ids: dict[str, str | None] = {}
        self.seen: list[dict[str, float]] = []

    def on_timestamp(self, timestamp, batch, context) -> None:
        self.bar += 1
        step = self.steps.get(self.bar)
        if step is not None:
            step(self)
        self.seen.append(self.holdings())

    def on_reject(self, rejection: OrderRejected) -> None:
        self.rejections.append(rejection)


def run_script(
    bars: Mapping[str, Sequence[OHLCV]],
    steps: Mapping[int, Step],
    *,
    start: datetime = START,
    **sections: dict[str, Any],
) -> tuple[Any, Scripted, BacktestEngine]:
    return run_frame(frame(bars, start), steps, **sections)


def run_frame(
    asset: pl.DataFrame, steps: Mapping[int, Step], **sections: dict[str, Any]
) -> tuple[Any, Scripted, BacktestEngine]:
    """``run_script`` over a frame written by hand (symbols that start and stop)."""
    config: dict[str, Any] = {
        "backtest": {"initial_capital": 10_000.0},
        "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    strategy = Scripted(steps)
    engine = BacktestEngine(load_config(config), strategy=strategy, asset=asset)
    return engine.run(), strategy, engine
