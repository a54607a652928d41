"""A small demo folder (data, config, strategy) written once for the command tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml4t.backtest.demo import prepare_demo

SIZE = {"n_symbols": 6, "n_days": 2}
"""Small enough that a run takes about a second; the demo's strategy still trades."""


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``config.yaml`` of a demo folder; tests must not edit it (copy the folder)."""
    return prepare_demo(tmp_path_factory.mktemp("demo"), **SIZE, html_report=False)
