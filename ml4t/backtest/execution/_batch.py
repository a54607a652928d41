"""The current market batch as the broker reads it.

Two ways in, both lazy and both at most once per batch: the lows and highs scattered
into arrays indexed by symbol code (NaN where a symbol has no row), for the order book's
vectorised prefilter; and one symbol's bar as floats, for the Python-level fill rules.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml4t.backtest.events import MarketBatch

__all__ = ["BarPrices", "BatchView"]


class BarPrices:
    """One symbol's bar, as floats; ``row`` is its row in the batch frame."""

    __slots__ = ("c", "h", "lo", "o", "row", "v")

    def __init__(self, row: int, o: float, h: float, lo: float, c: float, v: float) -> None:
        self.row, self.o, self.h, self.lo, self.c, self.v = row, o, h, lo, c, v


class BatchView:
    """The latest batch of a universe of ``size`` symbols."""

    __slots__ = (
        "_arange",
        "_batch",
        "_batch_no",
        "_codes",
        "_columns",
        "_high",
        "_low",
        "_row_of",
        "_stamp",
        "frame",
        "ts",
    )

    def __init__(self) -> None:
        self.frame: pl.DataFrame | None = None
        self._batch: MarketBatch | None = None
        self.ts = -1
        self._columns: tuple[np.ndarray, ...] | None = None
        self._batch_no = 0
        self._codes = np.empty(0, dtype=np.intp)
        self._row_of = self._arange = np.empty(0, dtype=np.intp)
        self._stamp = np.empty(0, dtype=np.int64)
        self._low = self._high = np.empty(0)

    def show(self, batch: MarketBatch, size: int) -> None:
        """Make ``batch`` (its symbol codes below ``size``) the current batch."""
        self._batch = batch
        self.frame = batch.frame
        self._codes = batch.symbol_codes()
        self.ts = batch.ts_event
        self._columns = None
        if self._row_of.shape[0] < size:
            self._row_of = np.zeros(size, dtype=np.intp)
            self._arange = np.arange(size, dtype=np.intp)
            self._stamp = np.full(size, -1, dtype=np.int64)
            self._low = np.full(size, np.nan)
            self._high = np.full(size, np.nan)

    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` indexed by symbol code, NaN where the batch has no row."""
        batch = self._batch
        assert batch is not None
        codes = self._codes
        low, high = self._low, self._high
        low.fill(np.nan)
        high.fill(np.nan)
        low[codes] = batch.numpy("low")
        high[codes] = batch.numpy("high")
        return low, high

    def bar(self, code: int) -> BarPrices | None:
        """The bar of symbol ``code`` in the current batch, or None if it has no row."""
        batch = self._batch
        if batch is None:
            return None
        columns = self._columns
        if columns is None:
            codes = self._codes
            self._batch_no += 1
            self._row_of[codes] = self._arange[: codes.shape[0]]
            self._stamp[codes] = self._batch_no
            get = batch.numpy
            columns = self._columns = tuple(
                get(name) for name in ("open", "high", "low", "close", "volume")
            )
        if code >= self._stamp.shape[0] or self._stamp[code] != self._batch_no:
            return None
        row = int(self._row_of[code])
        o, h, lo, c, v = columns
        return BarPrices(
            row, float(o[row]), float(h[row]), float(lo[row]), float(c[row]), float(v[row])
        )

    def value(self, column: str, row: int) -> float:
        """The current batch's ``column`` at ``row`` (NaN if the column is missing or null)."""
        frame = self.frame
        if frame is None or column not in frame.columns:
            return float("nan")
        value = frame.get_column(column)[row]
        return float(value) if value is not None else float("nan")
