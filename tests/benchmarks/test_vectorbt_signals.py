"""The fair vectorbt comparison's own machinery, on tiny data (no timing asserted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from benchmarks.vectorbt_signals import GridError, compare_trades, load_grid, run
from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset

SHAPE = (6, 8)  # symbols, sessions: enough for a few trades


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grid")
    write_dataset(root, SyntheticConfig(n_symbols=SHAPE[0], n_days=SHAPE[1], seed=3))
    return root


def write_asset(tmp_path: Path, frame: pl.DataFrame) -> Path:
    asset = tmp_path / "asset"
    asset.mkdir()
    frame.write_parquet(asset / "2023-01.parquet")
    return asset


def test_load_grid_reshapes_the_long_columns_to_time_by_symbol(data: Path) -> None:
    asset = pl.read_parquet(data / "asset")
    grid = load_grid(data / "asset")
    wide = asset.pivot(on="symbol", index="timestamp", values="open").sort("timestamp")
    assert grid.symbols == ["AAA", "AAB", "AAC", "AAD", "AAE", "AAF"]
    assert grid.open.shape == (wide.height, SHAPE[0])
    np.testing.assert_array_equal(grid.open, wide.select(grid.symbols).to_numpy())
    stamps = wide["timestamp"].dt.epoch("ns").to_numpy()
    np.testing.assert_array_equal(grid.times, stamps)
    entry = asset.pivot(on="symbol", index="timestamp", values="signal_entry").sort("timestamp")
    np.testing.assert_array_equal(grid.entries, entry.select(grid.symbols).to_numpy() == 1.0)
    assert grid.entries.any() and not grid.entries.all()


def test_load_grid_with_a_missing_row_raises_grid_error(data: Path, tmp_path: Path) -> None:
    frame = pl.read_parquet(data / "asset")
    asset = write_asset(tmp_path, pl.concat([frame.head(10), frame.slice(11)]))
    with pytest.raises(GridError, match="is not a multiple of 6 symbols"):
        load_grid(asset)


def test_load_grid_with_symbols_out_of_order_raises_grid_error(data: Path, tmp_path: Path) -> None:
    frame = pl.read_parquet(data / "asset")
    swapped = pl.concat(
        [frame.slice(0, 12), frame.slice(13, 1), frame.slice(12, 1), frame.slice(14)]
    )
    with pytest.raises(GridError, match="row 12 breaks the"):
        load_grid(write_asset(tmp_path, swapped))


def trades() -> pl.DataFrame:
    entry = datetime(2023, 1, 3, 15, tzinfo=UTC)
    return pl.DataFrame(
        {
            "symbol": ["AAA", "AAB"],
            "quantity": [100.0, 100.0],
            "entry_timestamp": [entry, entry],
            "entry_price": [10.0, 20.0],
            "exit_timestamp": [entry + timedelta(minutes=5), entry + timedelta(days=2)],
            "exit_price": [11.0, 19.0],
            "exit_reason": ["signal", "end_of_backtest"],
        }
    )


def test_compare_trades_of_equal_lists_in_any_order_finds_nothing() -> None:
    assert compare_trades(trades(), trades().reverse()) is None


def test_compare_trades_with_a_price_a_cent_off_names_the_trade() -> None:
    off = trades().with_columns(exit_price=pl.Series([11.0, 19.01]))
    found = compare_trades(off, trades())
    assert found is not None and "1 of 2 trades differ" in found and "19.01" in found
    within_half_a_cent = trades().with_columns(exit_price=pl.Series([11.0, 19.004]))
    assert compare_trades(within_half_a_cent, trades()) is None


def test_compare_trades_with_a_missing_trade_counts_both_sides() -> None:
    found = compare_trades(trades().head(1), trades())
    assert found is not None and "ml4t has 1 trades, vectorbt 2" in found and "AAB" in found


@pytest.mark.slow
def test_vectorbt_and_the_batch_api_trade_the_same_list(data: Path) -> None:
    # four fresh interpreters (vectorbt's imports and numba warm-up are most of it): the
    # batch API called at every bar and with wake = "signal"; the per-symbol API is
    # compared in the benchmark itself
    pytest.importorskip("vectorbt", reason="vectorbt is the validate extra")
    result = run(data, repeat=1, per_bar=False, shape=SHAPE)
    assert result["trades"] > 0
    sides = result["runs"]
    assert [r["trades"] for r in sides["vectorbt"]] == [result["trades"]]
    assert [r["trades"] for r in sides["signal_batch"]] == [result["trades"]]
    assert [r["trades"] for r in sides["signal_batch_wake"]] == [result["trades"]]
    assert result["gap"] < 0.005
