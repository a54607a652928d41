"""The views a strategy receives: the per-symbol :class:`Bar` of ``Strategy.on_bar`` and
the :class:`BatchFrame` of ``BatchStrategy.on_timestamp``.

One :class:`Bar` object per frame schema is reused for every row of every batch: it
points at a row index, and each column is a descriptor of the bar's class (made once per
schema, :func:`bar_class`) that reads a Python list converted from the batch only when
first read (once per batch and column, from the batch's numpy view). A strategy that
reads ``bar.symbol`` and ``bar.signal_entry`` costs two descriptor calls per row and no
dict, object or polars call per row. Context fields and unknown names go through
``__getattr__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from ml4t.backtest.errors import UnknownNameError

if TYPE_CHECKING:
    from ml4t.backtest.events import MarketBatch

__all__ = ["Bar", "Bars", "BatchFrame", "bar_class"]


class _Column:
    """One column of the bar's frame: ``bar.<name>`` is that column at the bar's row."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, bar: Bar | None, owner: type | None = None) -> Any:
        if bar is None:
            return self
        try:
            return bar._values[self.name][bar._i]
        except KeyError:
            return bar._load(self.name)[bar._i]


class Bar:
    """A read-only view of one symbol's row at one timestamp.

    OHLCV as attributes (``bar.close``); signals and indicators by attribute or by name
    (``bar.signal_entry``, ``bar["rsi"]``); context fields in ``bar.context`` and, when
    no column has the same name, as attributes too (``bar.vix``). ``bar.timestamp`` is the
    time the row became known (UTC), ``bar.ts_ns`` the same in nanoseconds.

    The object is reused for the next row: keep values, not the bar.
    """

    __slots__ = ("_batch", "_i", "_symbols", "_values", "context", "timestamp", "ts_ns")

    _columns: tuple[str, ...] = ()  # the frame's columns (set by bar_class)
    _names: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._batch: MarketBatch | None = None
        self._i = 0
        self._symbols: np.ndarray | None = None  # the universe by code, as objects
        self._values: dict[str, list[Any]] = {}
        self.context: dict[str, float | None] = {}
        self.timestamp: datetime | None = None
        self.ts_ns = 0

    def _point(self, batch: MarketBatch, symbols: np.ndarray | None, timestamp: datetime) -> None:
        """Show ``batch`` (row 0); ``symbols`` names the universe's codes (None: read the
        frame's symbol column)."""
        self._batch = batch
        self._symbols = symbols
        self._values = {}
        self.context = batch.context
        self.ts_ns = batch.ts_event
        self.timestamp = timestamp

    def _load(self, name: str) -> list[Any]:
        batch = self._batch
        if batch is None:
            raise UnknownNameError(f"the bar shows no batch yet; {name!r} has no value")
        if name == "symbol" and self._symbols is not None:
            values = self._symbols[batch.symbol_codes()].tolist()
        else:
            series = batch.frame.get_column(name)
            dtype = series.dtype
            if (dtype.is_float() or dtype.is_integer()) and series.null_count() == 0:
                values = batch.numpy(name).tolist()  # the chunk's view: no polars call
            else:
                values = series.to_list()  # None for nulls, datetimes as datetimes
        self._values[name] = values
        return values

    def __getitem__(self, name: str) -> Any:
        if name in self._names:
            values = self._values.get(name)
            return (values if values is not None else self._load(name))[self._i]
        if name in self.context:
            return self.context[name]
        raise UnknownNameError(f"bar has no column or context field {name!r}")

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not slots or columns: context fields.
        if name.startswith("_"):
            raise UnknownNameError(name)
        try:
            return self[name]
        except KeyError:
            raise UnknownNameError(
                f"bar has no column or context field {name!r}; columns: "
                f"{list(self._columns)}, context: {sorted(self.context)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """This row as a dict (allocates: for debugging, not for the hot path)."""
        row = {name: self[name] for name in self._columns} if self._batch is not None else {}
        return {**row, **{k: v for k, v in self.context.items() if k not in row}}

    def __repr__(self) -> str:
        if self._batch is None:
            return "Bar(<unbound>)"
        return f"Bar({self.timestamp}, {self['symbol']}, close={self['close']})"


def bar_class(columns: Sequence[str]) -> type[Bar]:
    """The :class:`Bar` subclass whose attributes are ``columns`` (made once per frame
    schema: its columns are descriptors, so reading one is a call, not a failed attribute
    lookup). Names that are the bar's own (``context``, ``timestamp``, ``get``...) stay
    the bar's; read such a column as ``bar["name"]``."""
    own = set(dir(Bar))
    namespace: dict[str, Any] = {
        "__slots__": (),
        "_columns": tuple(columns),
        "_names": frozenset(columns),
    }
    for name in columns:
        if name.isidentifier() and name not in own:
            namespace[name] = _Column(name)
    return type("Bar", (Bar,), namespace)


class Bars:
    """A per-symbol strategy's bars: one per frame schema, reused for every batch."""

    __slots__ = ("_bars", "_names")

    def __init__(self) -> None:
        self._bars: dict[tuple[str, ...], Bar] = {}
        self._names: tuple[int, np.ndarray] = (-1, np.empty(0, dtype=object))

    def point(self, batch: MarketBatch, symbols: list[str], timestamp: datetime) -> Bar:
        """The bar for ``batch``'s schema, showing its row 0; ``symbols`` is the
        universe in code order (``bar.symbol`` is read through the batch's codes)."""
        columns = tuple(batch.frame.columns)
        bar = self._bars.get(columns)
        if bar is None:
            bar = self._bars[columns] = bar_class(columns)()
        size, names = self._names
        if size != len(symbols):  # the universe grew: names by code again
            names = np.array(symbols, dtype=object)
            self._names = (len(symbols), names)
        bar._point(batch, names, timestamp)
        return bar


class BatchFrame(pl.DataFrame):
    """The frame ``BatchStrategy.on_timestamp`` receives: a ``pl.DataFrame`` (every polars
    method works) with :meth:`numpy`, a column as a read-only numpy array that is a
    zero-copy view of the feed's chunk, with no polars call. A frame derived from it
    (``filter``, ``head``...) is polars' own; where that is a ``BatchFrame`` too, its
    :meth:`numpy` reads the derived frame's rows.
    """

    _market: MarketBatch | None = None

    @classmethod
    def of(cls, batch: MarketBatch) -> BatchFrame:
        """``batch.frame`` seen as a :class:`BatchFrame` (shares its columns)."""
        frame = cast(BatchFrame, cls._from_pydf(batch.frame._df))
        frame._market = batch
        return frame

    def numpy(self, name: str) -> np.ndarray:
        """Column ``name`` as a read-only numpy array, one entry per row (nulls of a
        float column are NaN); raises ``UnknownNameError`` for a missing column."""
        market = self._market
        if market is not None:
            return market.numpy(name)
        try:
            values = self.get_column(name).to_numpy()
        except pl.exceptions.ColumnNotFoundError:
            raise UnknownNameError(
                f"the frame has no column {name!r}; columns: {self.columns}"
            ) from None
        values.flags.writeable = False
        return values
