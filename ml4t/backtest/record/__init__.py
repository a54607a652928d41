"""Results: the Recorder component, its tables, and the reporting config.

- :class:`Recorder` listens to the graph and writes trades, fills, orders (with their
  state history), portfolio states, ``metrics.json`` and ``manifest.json``;
- :class:`TradeBuilder` is the pure FIFO-lot trade logic it uses;
- :class:`ReportingConfig` is the ``reporting`` section of a run's config.

``docs/results.md`` describes every file and column.
"""

from __future__ import annotations

from ml4t.backtest.record.config import ReportingConfig
from ml4t.backtest.record.recorder import JOURNAL_FILE, Recorder, RecorderResults
from ml4t.backtest.record.trades import EXIT_REASONS, TradeBuilder

__all__ = [
    "EXIT_REASONS",
    "JOURNAL_FILE",
    "Recorder",
    "RecorderResults",
    "ReportingConfig",
    "TradeBuilder",
]
