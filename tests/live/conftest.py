"""A short data set for the paper-replay and adapter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticDataset, write_dataset


@pytest.fixture(scope="session")
def short_data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root: Path = tmp_path_factory.mktemp("live-data")
    return write_dataset(root, SyntheticConfig(n_symbols=5, n_days=2, seed=11))


def run_config(ds: SyntheticDataset, out: Path | None, **reporting: object) -> dict:
    return {
        "backtest": {"initial_capital": 100_000},
        "data": {"asset": {"path": ds.asset}},
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": str(out) if out is not None else None, **reporting},
    }
