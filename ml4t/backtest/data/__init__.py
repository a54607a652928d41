"""The data layer: streaming parquet feed, validation, point-in-time alignment, calendars.

``ParquetFeed`` publishes one :class:`~ml4t.backtest.MarketBatch` per timestamp from
long-format parquet; ``asof_join``/``align`` prepare asset data from separate sources
without look-ahead; ``SessionCalendar`` gives exchange sessions and timer rules;
:mod:`ml4t.backtest.data.synthetic` makes deterministic sample data. See docs/data.md.
"""

from __future__ import annotations

from ml4t.backtest.data._files import source_files
from ml4t.backtest.data.alignment import AsofSource, align, asof_join, check_lookahead
from ml4t.backtest.data.calendar import SessionCalendar, session_close_rule, session_open_rule
from ml4t.backtest.data.config import (
    AssetSourceConfig,
    ContextSourceConfig,
    FeedConfig,
    OutsideSession,
    Repair,
    SignalSourceConfig,
    decode_feed_config,
)
from ml4t.backtest.data.feed import ParquetFeed
from ml4t.backtest.data.validation import DataRuleViolation, ValidationReport, Violation

__all__ = [
    "AsofSource",
    "AssetSourceConfig",
    "ContextSourceConfig",
    "DataRuleViolation",
    "FeedConfig",
    "OutsideSession",
    "ParquetFeed",
    "Repair",
    "SessionCalendar",
    "SignalSourceConfig",
    "ValidationReport",
    "Violation",
    "align",
    "asof_join",
    "check_lookahead",
    "decode_feed_config",
    "session_close_rule",
    "session_open_rule",
    "source_files",
]
