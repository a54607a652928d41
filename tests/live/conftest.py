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


@pytest.fixture(scope="session")
def scripted_bars(short_data: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 40 timestamps of ``short_data`` (five symbols): the bars the scripted
    adapter plays in the ``ml4t live`` tests, and a backtest replays for comparison."""
    frame = pl.read_parquet(short_data.asset).sort("timestamp", "symbol")
    first = frame["timestamp"].unique().sort()[:40]
    path = tmp_path_factory.mktemp("scripted") / "bars.parquet"
    frame.filter(pl.col("timestamp").is_in(first.implode())).write_parquet(path)
    return path


def live_config(
    bars: Path, runs: Path, *, strategy: str = "Momentum", interval: float = 0.01, **extra: object
) -> dict:
    """A YAML-able ``ml4t live`` config: the scripted adapter over ``bars``, the
    simulated venue, run directories under ``runs``."""
    config: dict = {
        "backtest": {"initial_capital": 100_000},
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": None},
        "strategy": {"path": str(STRATEGIES), "class": strategy, "name": "m"},
        "live": {
            "data": {"adapter": "scripted", "params": {"path": str(bars), "interval": interval}},
            "runs_dir": str(runs),
        },
    }
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value}  # type: ignore[dict-item]
    return config


from tests.plugins.conftest import distribution  # noqa: E402, F401  (the plugin installer)
