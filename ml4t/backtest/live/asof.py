"""Signals and context joined onto live bars as of their time, as in a backtest.

A live market-data client gets OHLCV from its venue; the slower per-symbol signals
(``data.signal_data``: daily predictions) and the market-wide context (``data.context``:
VIX, an index) still come from files. :class:`AsofJoiner` reads them with the parquet
feed's own readers and joins them onto each live batch exactly as the feed joins them
onto a backtest's chunks: a signal row is used from its availability time on
(``available_at`` or label + ``available_lag``, never before; older than
``max_staleness`` is null), and each context field is its last value available at or
before the batch's time. The files are read once, in :meth:`AsofJoiner.prepare`; a
session that needs tomorrow's predictions is restarted with them.

>>> joiner = AsofJoiner()
>>> joiner.prepare(["AAA"])
>>> joiner.signal_columns, joiner.context_fields
((), ())
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ml4t.backtest.data import FeedConfig
from ml4t.backtest.data._context import ContextCursor, open_context
from ml4t.backtest.data._signals import SlowSignals
from ml4t.backtest.data._source import TS
from ml4t.backtest.data.validation import raise_violations
from ml4t.backtest.errors import ConfigError, DataValidationError

__all__ = ["AsofJoiner"]

Where = object
"""A path, glob, directory, LazyFrame or DataFrame (as ``ParquetFeed`` takes)."""


class AsofJoiner:
    """Joins ``config``'s ``signal_data`` and ``context`` onto live batches.

    ``signal_data`` and ``context`` override the config's paths with a path or a frame.
    The asset section's ``signals``/``indicators`` are columns of bar files, which a live
    venue does not have: naming any is a :class:`~ml4t.backtest.ConfigError`.
    """

    def __init__(
        self,
        config: FeedConfig | None = None,
        *,
        signal_data: Where = None,
        context: Where = None,
    ) -> None:
        self.config = config = config or FeedConfig()
        bar_columns = [*config.asset.signals, *config.asset.indicators]
        if bar_columns:
            raise ConfigError(
                f"data.asset.signals/indicators {bar_columns} are columns of bar files; live "
                "bars come from the venue with OHLCV only: put per-symbol values in "
                "data.signal_data (joined as of their availability)"
            )
        self._where = (signal_data, context)
        self.signal_columns: tuple[str, ...] = (
            tuple(config.signal_data.columns) if config.signal_data else ()
        )
        self.context_fields: tuple[str, ...] = (
            tuple(config.context.fields) if config.context else ()
        )
        self.dtype = pl.Enum([])
        self._signals: SlowSignals | None = None
        self._context: ContextCursor | None = None
        self._hi: int | None = None

    def prepare(self, symbols: Sequence[str]) -> None:
        """Read and check the files for the universe ``symbols`` (its code order); a
        :class:`~ml4t.backtest.DataValidationError` lists every broken rule."""
        self.dtype = pl.Enum(list(symbols))
        signal_where, context_where = self._where
        cfg = self.config
        violations = []
        if cfg.signal_data is not None:
            signals = SlowSignals(cfg.signal_data, signal_where)
            violations += signals.schema_violations()
            if not violations:
                violations += signals.load(self.dtype, None)
            self._signals = signals
        if cfg.context is not None:
            self._context, problems = open_context(cfg.context, context_where)
            violations += problems
        raise_violations(violations)

    def join(self, frame: pl.DataFrame, ts: int) -> tuple[pl.DataFrame, dict[str, float | None]]:
        """``frame`` (one row per symbol at ``ts``: ``symbol`` in this joiner's Enum, then
        OHLCV) with the signal columns added, and the context as of ``ts``. Batches must
        come in increasing time (the context is read forward)."""
        if self._hi is not None and ts < self._hi:
            raise DataValidationError(
                f"live batches must come in increasing time: {ts} after one at {self._hi - 1}"
            )
        if self._signals is not None:
            stamped = frame.with_columns(pl.lit(ts, dtype=pl.Int64).alias(TS))
            frame = self._signals.join(stamped).drop(TS)
        context: dict[str, float | None] = {}
        if self._context is not None:
            lo = ts if self._hi is None else self._hi
            context = self._context.values(np.array([ts], dtype=np.int64), lo, ts + 1)[0]
        self._hi = ts + 1
        return frame, context
