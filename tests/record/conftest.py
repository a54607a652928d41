"""The results tests' shared run: the demo (minute bars, NYSE, SPY as the benchmark),
run once from files in a temporary directory, as a user would, for the tests that hand
its results to other packages (pyfolio, quantstats, empyrical, ml4t-diagnostic)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ml4t.backtest import BacktestEngine, RecorderResults
from ml4t.backtest.demo import prepare_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, RecorderResults]:
    """``(results of engine.run(), RecorderResults.load(results directory))``."""
    root = tmp_path_factory.mktemp("demo")
    config = prepare_demo(root, n_symbols=8, n_days=60, html_report=False)
    text = config.read_text().replace(
        "  context: [vix]\n", "  context: [vix]\n  benchmark: {field: spy}\n"
    )
    config.write_text(text)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        results = BacktestEngine.from_config(config).run()
    finally:
        os.chdir(cwd)
    assert results.complete and results.trades.height > 10
    return results, RecorderResults.load(root / "results")
