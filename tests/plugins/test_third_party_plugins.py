"""Third-party plugins written against the published protocols (plugins/ml4t-csv-feed,
plugins/ml4t-delay-broker, installed by the Makefile) run the demo config unchanged but
for its ``plugins`` section."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import BacktestEngine, BacktestResults
from ml4t.backtest.demo import prepare_demo

pytest.importorskip("ml4t_csv_feed", reason="pip install -e plugins/ml4t-csv-feed (make does)")
pytest.importorskip("ml4t_delay_broker", reason="pip install -e plugins/ml4t-delay-broker")

SIZE = {"n_symbols": 20, "n_days": 6}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    prepare_demo(root, **SIZE, html_report=False)
    return root / "config.yaml"


@pytest.fixture(scope="module")
def builtin(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> BacktestResults:
    """The demo on the built-in feed and broker (run once for the module)."""
    out = tmp_path_factory.mktemp("builtin")
    results = BacktestEngine.from_config(demo, overrides=[f"reporting.output_dir={out}"]).run()
    assert results.complete
    assert results.trades.height > 0, "the demo made no trades: the comparisons would prove nothing"
    return results


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


def test_demo_on_csv_feed_plugin_makes_the_parquet_feeds_trades(
    demo: Path, builtin: BacktestResults, tmp_path: Path
) -> None:
    csv_root = tmp_path / "csv-demo"
    shutil.copytree(demo.parent, csv_root, ignore=shutil.ignore_patterns("results"))
    _as_csv(csv_root)
    assert not list((csv_root / "data").rglob("*.parquet"))
    trades = _run(
        csv_root / "config.yaml", "plugins.feed=csv", f"reporting.output_dir={tmp_path / 'csv'}"
    )
    assert trades.equals(builtin.trades)


def test_demo_on_delay_broker_plugin_runs_with_fills_one_bar_later(
    demo: Path, builtin: BacktestResults, tmp_path: Path
) -> None:
    results = BacktestEngine.from_config(
        demo, overrides=["plugins.broker=delay", f"reporting.output_dir={tmp_path}"]
    ).run()
    assert results.complete
    assert results.trades.height > 0
    fills = results.fills
    assert fills.height > 0 and fills["fill_id"][0] == "broker-1"  # the plugin's ids
    # the first order reaches the market one bar (one minute) later than with the
    # built-in broker (fill_timing: next_open), and without slippage
    first, late = builtin.fills.row(0, named=True), fills.row(0, named=True)
    assert late["order_id"] == first["order_id"]
    assert late["timestamp"] - first["timestamp"] == timedelta(minutes=1)
    assert late["slippage"] == 0.0
    assert not results.trades.equals(builtin.trades)
