"""A strategy's timers stop after the data's last timestamp, so a backtest with an
``every=`` or a session timer ends with its data (a calendar has sessions for centuries,
and an interval timer has no end of its own)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from ml4t.backtest import BacktestEngine, BatchStrategy, TimerFired, load_config
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.synthetic import SyntheticConfig, make_frames

MINUTES_30 = 30 * 60 * 10**9


class Timed(BatchStrategy):
    def __init__(self, **schedule: Any) -> None:
        super().__init__("timed")
        self._schedule = schedule
        self.fired: list[int] = []

    def on_start(self) -> None:
        self.schedule("t", **self._schedule)

    def on_timer(self, event: TimerFired) -> None:
        self.fired.append(event.ts_event)

    def on_timestamp(self, timestamp: Any, batch: pl.DataFrame, context: Any) -> None:
        pass


@pytest.fixture(scope="module")
def asset() -> pl.DataFrame:
    return make_frames(SyntheticConfig(n_symbols=2, n_days=3, seed=2)).asset


def _bounds(asset: pl.DataFrame) -> tuple[int, int]:
    ns = asset["timestamp"].dt.epoch("ns")
    return int(ns.min()), int(ns.max())  # type: ignore[arg-type]


def test_an_every_timer_fires_through_the_data_and_the_run_ends(asset: pl.DataFrame) -> None:
    strategy = Timed(every="30m")
    config = load_config({"backtest": {"calendar": "NYSE"}})
    results = BacktestEngine(config, asset=asset, strategy=strategy).run()
    first, last = _bounds(asset)
    expected = list(range(first + MINUTES_30, last + 1, MINUTES_30))
    assert results.complete and strategy.fired == expected
    assert len(expected) == (last - first) // MINUTES_30  # about 2 days and 6.5 hours


def test_a_session_open_timer_fires_at_each_open_inside_the_data_only(
    asset: pl.DataFrame,
) -> None:
    strategy = Timed(at="session_open")
    config = load_config({"backtest": {"calendar": "NYSE"}})
    results = BacktestEngine(config, asset=asset, strategy=strategy).run()
    first, last = _bounds(asset)
    calendar, opens, after = SessionCalendar("NYSE"), [], first - 1
    while (when := calendar.next_open(after)) is not None and when <= last:
        opens.append(when)
        after = when
    assert results.complete and strategy.fired == opens
    assert len(opens) == 2  # the first bar (09:31) comes after the first open (09:30)
