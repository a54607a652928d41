"""Small synthetic data, a base config over it, and the 2x3 grid run once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticDataset, write_dataset
from ml4t.backtest.sweep import LocalExecutor, run_sweep

STRATEGY = str(Path(__file__).with_name("strategies.py"))

GRID_2X3 = {
    "params": {
        "strategy.params.threshold": [0.4, 0.6],
        "execution.slippage.params.bps": [1.0, 3.0, 5.0],
    },
    "metric": "sharpe_ratio",
}


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """4 symbols x 6 NYSE sessions (2023-01-03 .. 2023-01-10) of one-minute bars."""
    root = tmp_path_factory.mktemp("sweep-data")
    return write_dataset(root, SyntheticConfig(n_symbols=4, n_days=6, seed=7))


def base_config(ds: SyntheticDataset, **params: Any) -> dict[str, Any]:
    """A run config dict over ``ds`` with the Threshold strategy (by path)."""
    return {
        "backtest": {"initial_capital": 100_000, "calendar": "NYSE"},
        "data": {
            "asset": {"path": ds.asset, "indicators": ["rsi"]},
            "signal_data": {
                "path": ds.signals,
                "columns": ["signal_entry", "signal_exit", "confidence"],
                "available_lag": "16h",
            },
            "context": {"path": ds.context, "fields": ["vix"]},
        },
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": None},
        "strategy": {"path": STRATEGY, "class": "Threshold", "params": params},
    }


@pytest.fixture(scope="session")
def local_grid(
    dataset: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, pl.DataFrame]:
    """The 2x3 grid on the local process pool (two workers)."""
    out = tmp_path_factory.mktemp("sweep-local")
    table = run_sweep(base_config(dataset), GRID_2X3, out_dir=out, executor=LocalExecutor(2))
    return out, table
