"""Third-party plugins written against the published protocols (plugins/ml4t-csv-feed,
plugins/ml4t-delay-broker, installed by the Makefile) run the demo config unchanged but
for its ``plugins`` section."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import BacktestEngine
from ml4t.backtest.demo import prepare_demo

pytest.importorskip("ml4t_csv_feed", reason="pip install -e plugins/ml4t-csv-feed (make does)")

SIZE = {"n_symbols": 20, "n_days": 6}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    prepare_demo(root, **SIZE, html_report=False)
    return root / "config.yaml"


def _run(config: Path, *overrides: str) -> pl.DataFrame:
    results = BacktestEngine.from_config(config, overrides=list(overrides)).run()
    assert results.complete
    return results.trades


def _as_csv(root: Path) -> None:
    """The demo's parquet data written as CSV files in the same directories."""
    for part in ("asset", "signals", "context"):
        for file in sorted((root / "data" / part).rglob("*.parquet")):
            pl.read_parquet(file).write_csv(file.with_suffix(".csv"))
            file.unlink()


def test_demo_on_csv_feed_plugin_makes_the_parquet_feeds_trades(demo: Path, tmp_path: Path) -> None:
    builtin = _run(demo, f"reporting.output_dir={tmp_path / 'parquet'}")
    csv_root = tmp_path / "csv-demo"
    shutil.copytree(demo.parent, csv_root, ignore=shutil.ignore_patterns("results"))
    _as_csv(csv_root)
    assert not list((csv_root / "data").rglob("*.parquet"))
    trades = _run(
        csv_root / "config.yaml", "plugins.feed=csv", f"reporting.output_dir={tmp_path / 'csv'}"
    )
    assert builtin.height > 0, "the demo made no trades: the comparison would prove nothing"
    assert trades.equals(builtin)
