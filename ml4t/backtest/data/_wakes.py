"""Where a symbol's signal values change: the timestamps a ``wake = "signal"`` strategy
is called at (see :class:`~ml4t.backtest.strategy.StrategyBase`).

A chunk's timestamp ``j`` is a *wake* when some row at ``j`` carries signal values that
differ from the previous row of the same symbol (the previous row may be in an earlier
chunk; a symbol's first row counts when any of its signals is set). A missing bar does
not hide a change: the symbol's next row is compared with its last row seen, so the
change is a wake where that row appears. Nulls compare equal to nulls.

The work is per chunk, on the feed's read-ahead thread: for a complete grid (every
timestamp has the same symbols in the same order) one comparison per signal column of
each timestamp's rows with the previous timestamp's; otherwise one stable sort of the
rows by symbol code, then one comparison per signal column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SignalWakes"]


class SignalWakes:
    """The wakes of consecutive chunks; each chunk must be given in time order, once."""

    def __init__(self, columns: Sequence[str], symbols: int) -> None:
        self.columns = tuple(columns)
        # each symbol's last values so far (NaN: none yet, or null)
        self._last = {name: np.full(symbols, np.nan) for name in self.columns}

    def of_chunk(
        self, codes: np.ndarray, values: dict[str, np.ndarray], lengths: Sequence[int]
    ) -> np.ndarray:
        """The sorted timestamp indices (within the chunk) that are wakes.

        ``codes`` are the rows' symbol codes, ``values`` each signal column's row values
        and ``lengths`` the rows per timestamp (the rows are in time order)."""
        n = codes.shape[0]
        if n == 0 or not self.columns:
            return np.empty(0, dtype=np.int64)
        codes = codes.astype(np.intp, copy=False)
        size = int(codes.max()) + 1
        for name, last in self._last.items():
            if last.shape[0] < size:  # the universe grew
                self._last[name] = np.append(last, np.full(size - last.shape[0], np.nan))
        width = lengths[0]
        if (
            n == width * len(lengths)
            and width
            and (codes.reshape(-1, width) == codes[:width]).all()
        ):
            return self._of_grid(codes[:width], values, len(lengths))
        order = np.argsort(codes, kind="stable")
        by_code = codes[order]
        first = np.ones(n, dtype=np.bool_)
        first[1:] = by_code[1:] != by_code[:-1]
        final = np.ones(n, dtype=np.bool_)
        final[:-1] = first[1:]
        changed = np.zeros(n, dtype=np.bool_)
        for name in self.columns:
            now = np.asarray(values[name], dtype=np.float64)[order]
            before = np.empty_like(now)
            before[1:] = now[:-1]
            last = self._last[name]
            before[first] = last[by_code[first]]
            changed |= (now != before) & ~(np.isnan(now) & np.isnan(before))
            last[by_code[final]] = now[final]
        rows = order[changed]
        if rows.size == 0:
            return np.empty(0, dtype=np.int64)
        row_ts = np.repeat(np.arange(len(lengths), dtype=np.int64), np.asarray(lengths))
        return np.unique(row_ts[rows])

    def _of_grid(self, codes: np.ndarray, values: dict[str, np.ndarray], steps: int) -> np.ndarray:
        """The same for a chunk where every timestamp has the same symbols in the same
        order (a complete grid): each timestamp's row is compared with the one before."""
        changed = np.zeros(steps, dtype=np.bool_)
        for name in self.columns:
            now = np.asarray(values[name], dtype=np.float64).reshape(steps, codes.shape[0])
            last = self._last[name]
            before = np.empty_like(now)
            before[0] = last[codes]
            before[1:] = now[:-1]
            diff = (now != before) & ~(np.isnan(now) & np.isnan(before))
            changed |= diff.any(axis=1)
            last[codes] = now[-1]
        return np.flatnonzero(changed).astype(np.int64)
