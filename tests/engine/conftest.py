"""A small synthetic data set shared by the engine tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticDataset, write_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root: Path = tmp_path_factory.mktemp("engine-data")
    return write_dataset(root, SyntheticConfig(n_symbols=10, n_days=8, seed=7))


def base_config(ds: SyntheticDataset, out: Path | None, **sections: dict) -> dict:
    """A run config dict over ``ds`` writing to ``out`` (None: in memory)."""
    config = {
        "backtest": {"initial_capital": 100_000, "calendar": "NYSE"},
        "data": {
            "asset": {"path": ds.asset, "indicators": ["rsi", "atr", "macd"]},
            "signal_data": {
                "path": ds.signals,
                "columns": ["signal_entry", "signal_exit", "confidence"],
                "available_lag": "16h",
            },
            "context": {"path": ds.context, "fields": ["vix", "spy"]},
        },
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": str(out) if out is not None else None},
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config
