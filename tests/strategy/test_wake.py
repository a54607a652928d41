"""``wake = "signal"``: the bar callback runs where signals change and after events, and
a rule that reads only signals and positions trades exactly as it does on every bar."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import BatchStrategy
from ml4t.backtest.config import load_config
from ml4t.backtest.data._wakes import SignalWakes
from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticDataset, write_dataset
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.errors import ConfigError

from ..engine.conftest import base_config
from ..engine.strategies import SignalBatch, SignalPerSymbol

NAN = math.nan


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """The engine tests' data set: 10 symbols, 8 sessions of minute bars, daily signals."""
    return write_dataset(
        tmp_path_factory.mktemp("wake-data"), SyntheticConfig(n_symbols=10, n_days=8, seed=7)
    )


def _wakes(tracker: SignalWakes, rows: list[tuple[int, int, float]]) -> list[int]:
    """Wakes of one chunk given as (timestamp index, code, value) rows in time order."""
    ts = [r[0] for r in rows]
    lengths = np.bincount(ts).tolist()
    codes = np.array([r[1] for r in rows], dtype=np.int32)
    values = {"s": np.array([r[2] for r in rows])}
    return tracker.of_chunk(codes, values, lengths).tolist()


def test_a_wake_is_a_change_of_a_symbols_own_values_across_gaps_and_chunks() -> None:
    tracker = SignalWakes(["s"], 3)
    first = [
        (0, 0, NAN),
        (0, 1, NAN),  # nothing set yet: no wake
        (1, 0, 1.0),
        (1, 1, NAN),  # symbol 0's first value
        (2, 0, 1.0),
        (2, 1, NAN),  # unchanged
        (3, 1, 2.0),  # symbol 0's bar is missing; symbol 1 changes
        (4, 0, 1.0),
        (4, 1, 2.0),
        (4, 2, NAN),  # the gap hid nothing; 2 first seen, null
    ]
    assert _wakes(tracker, first) == [1, 3]
    second = [
        (0, 0, 1.0),
        (0, 1, 2.0),  # as the last rows of the previous chunk
        (1, 1, 2.0),  # symbol 0 missing
        (2, 0, 0.0),
        (2, 1, 2.0),  # symbol 0 changes where its bar is
        (3, 0, NAN),
        (3, 1, 2.0),  # expired: a change too
        (4, 0, NAN),
        (4, 1, 2.0),
        (4, 2, NAN),
    ]
    assert _wakes(tracker, second) == [2, 3]


def test_a_complete_grid_gives_the_wakes_of_the_same_rows_in_any_order() -> None:
    rng = np.random.default_rng(3)
    steps, width = 40, 6
    values = np.repeat(rng.integers(0, 3, size=(8, width)).astype(float), 5, axis=0)
    values[rng.random(values.shape) < 0.1] = NAN
    grid, ragged = SignalWakes(["s"], width), SignalWakes(["s"], width)
    for chunk in np.split(np.arange(steps), 2):  # two chunks: the carry between them too
        block = values[chunk]
        codes = np.tile(np.arange(width, dtype=np.int32), len(chunk))
        lengths = [width] * len(chunk)
        shuffled = np.concatenate([rng.permutation(width) for _ in chunk]).astype(np.int32)
        rows = np.arange(len(chunk)).repeat(width) * width + shuffled
        by_grid = grid.of_chunk(codes, {"s": block.ravel()}, lengths)
        by_rows = ragged.of_chunk(shuffled, {"s": block.ravel()[rows]}, lengths)
        assert by_grid.tolist() == by_rows.tolist()
        assert by_grid.size > 0


def test_the_universe_may_grow_between_chunks() -> None:
    tracker = SignalWakes(["s"], 1)
    assert _wakes(tracker, [(0, 0, 1.0)]) == [0]
    assert _wakes(tracker, [(0, 0, 1.0), (1, 0, 1.0), (1, 3, 5.0)]) == [1]


def test_an_unknown_wake_mode_is_refused_at_construction() -> None:
    class Typo(BatchStrategy):
        wake = "signals"

        def on_timestamp(self, timestamp, batch, context) -> None:
            pass

    with pytest.raises(ConfigError, match="must be 'bar'"):
        Typo("typo")


class _Counted:
    """Counts the timestamps the bar callback ran at."""

    calls: int

    def on_start(self) -> None:
        self.calls = 0
        self.times: set[int] = set()


class BatchEverywhere(_Counted, SignalBatch):
    def on_timestamp(self, timestamp, batch, context) -> None:
        self.calls += 1
        super().on_timestamp(timestamp, batch, context)


class BatchOnSignal(BatchEverywhere):
    wake = "signal"


class BarEverywhere(_Counted, SignalPerSymbol):
    def on_bar(self, bar) -> None:
        self.times.add(self.now_ns())
        super().on_bar(bar)


class BarOnSignal(BarEverywhere):
    wake = "signal"


def _run(ds, strategy):
    config = load_config(base_config(ds, None))
    return BacktestEngine(config, strategy=strategy).run()


@pytest.mark.parametrize(
    ("every", "on_signal"), [(BatchEverywhere, BatchOnSignal), (BarEverywhere, BarOnSignal)]
)
def test_a_signal_rule_trades_identically_when_woken_only_by_signals_and_events(
    dataset,
    every,
    on_signal,
) -> None:
    always, woken = every("strategy"), on_signal("strategy")
    a, b = _run(dataset, always), _run(dataset, woken)
    assert a.trades.height >= 8, "the scenario must trade"
    assert a.trades.equals(b.trades)
    assert a.fills.equals(b.fills)
    assert a.orders.equals(b.orders)
    assert a.portfolio.equals(b.portfolio)
    calls = (lambda s: s.calls) if every is BatchEverywhere else (lambda s: len(s.times))
    assert calls(always) > 10 * calls(woken) > 0, (calls(always), calls(woken))


def test_wakes_are_the_signal_days_and_the_bars_after_fills(dataset) -> None:
    strategy = BatchOnSignal("strategy")
    result = _run(dataset, strategy)
    days = pl.read_parquet(dataset.signals).get_column("timestamp").n_unique()
    fill_times = result.fills.get_column("timestamp").n_unique()
    assert result.fills.height > 0
    # every day's predictions arrive together (one wake); each fill wakes the next bar
    assert days <= strategy.calls <= days + fill_times + 1
