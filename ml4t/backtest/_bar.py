"""The per-symbol view a ``Strategy.on_bar`` receives.

One :class:`Bar` object is reused for every row of a batch: it points at a row index of
the batch's columns, converted to Python lists only when first read (once per batch and
column), so a strategy that reads ``bar.close`` and ``bar.signal_entry`` costs two list
lookups per row and no dict or object per row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from ml4t.backtest.errors import UnknownNameError

__all__ = ["Bar"]


class _Columns:
    """A batch's columns as lazily materialised Python lists."""

    __slots__ = ("_cache", "frame", "names")

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.names = frame.columns
        self._cache: dict[str, list[Any]] = {}

    def get(self, name: str) -> list[Any]:
        values = self._cache.get(name)
        if values is None:
            values = self._cache[name] = self.frame.get_column(name).to_list()
        return values


class Bar:
    """A read-only view of one symbol's row at one timestamp.

    OHLCV as attributes (``bar.close``); signals and indicators by attribute or by name
    (``bar.signal_entry``, ``bar["rsi"]``); context fields in ``bar.context`` and, when
    no column has the same name, as attributes too (``bar.vix``). ``bar.timestamp`` is the
    time the row became known (UTC), ``bar.ts_ns`` the same in nanoseconds.

    The object is reused for the next row: keep values, not the bar.
    """

    __slots__ = ("_cols", "_i", "context", "timestamp", "ts_ns")

    def __init__(self) -> None:
        self._cols: _Columns | None = None
        self._i = 0
        self.context: dict[str, float | None] = {}
        self.timestamp: datetime | None = None
        self.ts_ns = 0

    def _point(
        self, cols: _Columns, context: dict[str, float | None], ts_ns: int, timestamp: datetime
    ) -> None:
        self._cols = cols
        self.context = context
        self.ts_ns = ts_ns
        self.timestamp = timestamp

    @property
    def symbol(self) -> str:
        return self._cols.get("symbol")[self._i]  # type: ignore[union-attr]

    @property
    def open(self) -> float:
        return self._cols.get("open")[self._i]  # type: ignore[union-attr]

    @property
    def high(self) -> float:
        return self._cols.get("high")[self._i]  # type: ignore[union-attr]

    @property
    def low(self) -> float:
        return self._cols.get("low")[self._i]  # type: ignore[union-attr]

    @property
    def close(self) -> float:
        return self._cols.get("close")[self._i]  # type: ignore[union-attr]

    @property
    def volume(self) -> float:
        return self._cols.get("volume")[self._i]  # type: ignore[union-attr]

    def __getitem__(self, name: str) -> Any:
        cols = self._cols
        if cols is not None and name in cols.names:
            return cols.get(name)[self._i]
        if name in self.context:
            return self.context[name]
        raise UnknownNameError(f"bar has no column or context field {name!r}")

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not slots or properties: columns and context.
        if name.startswith("_"):
            raise UnknownNameError(name)
        try:
            return self[name]
        except KeyError:
            raise UnknownNameError(
                f"bar has no column or context field {name!r}; columns: "
                f"{self._cols.names if self._cols else []}, context: {sorted(self.context)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """This row as a dict (allocates: for debugging, not for the hot path)."""
        cols = self._cols
        row = {name: cols.get(name)[self._i] for name in cols.names} if cols else {}
        return {**row, **{k: v for k, v in self.context.items() if k not in row}}

    def __repr__(self) -> str:
        if self._cols is None:
            return "Bar(<unbound>)"
        return f"Bar({self.timestamp}, {self.symbol}, close={self.close})"
