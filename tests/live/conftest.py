"""Short data sets for the paper-replay and adapter tests: two days of five symbols, and
two symbols across one overnight gap."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest.data.synthetic import (
    SyntheticConfig,
    SyntheticDataset,
    make_frames,
    write_dataset,
)

# the last ten minutes of 2023-01-03 and the first twenty of 2023-01-04 (NYSE), in UTC
GAP_DAY1 = datetime(2023, 1, 3, 20, 51, tzinfo=UTC)  # first bar; the close is 21:00
GAP_DAY2 = datetime(2023, 1, 4, 14, 31, tzinfo=UTC)  # first bar after the overnight gap
GAP_END = datetime(2023, 1, 4, 14, 50, tzinfo=UTC)  # last bar

STRATEGIES = Path(__file__).with_name("strategies.py")


@pytest.fixture(scope="session")
def short_data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root: Path = tmp_path_factory.mktemp("live-data")
    return write_dataset(root, SyntheticConfig(n_symbols=5, n_days=2, seed=11))


@pytest.fixture(scope="session")
def gap_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo-like minute bars of two symbols (AAA, AAB) across one overnight gap: ten bars
    before the 16:00 close of 2023-01-03 and twenty after the open of 2023-01-04, so a
    replay at x600 reaches the 17.5 h gap (105 s at that speed) within a second."""
    asset = make_frames(SyntheticConfig(n_symbols=2, n_days=2, seed=7)).asset
    ts = pl.col("timestamp")
    day1 = (ts >= GAP_DAY1) & (ts < GAP_DAY2.replace(hour=0, minute=0))
    cut = asset.filter(day1 | ((ts >= GAP_DAY2) & (ts <= GAP_END)))
    assert cut.height == 2 * 30
    path = tmp_path_factory.mktemp("gap-data") / "asset.parquet"
    cut.write_parquet(path)
    return path


def gap_config(data: Path, out: Path, *, strategy: str = "HoldOvernight") -> dict:
    """A YAML-able run of ``strategy`` (from tests/live/strategies.py) on the gap data,
    on the NYSE calendar."""
    return {
        "backtest": {"initial_capital": 100_000, "calendar": "NYSE"},
        "data": {"asset": {"path": str(data)}},
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": str(out)},
        "strategy": {"path": str(STRATEGIES), "class": strategy, "name": "h"},
    }


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
