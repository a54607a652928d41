"""The per-bar half of the trade builder: the current market batch and the open lots.

- :class:`MarketView` holds the latest :class:`~ml4t.backtest.events.MarketBatch`: its
  symbol codes (carried by the batch, ``MarketBatch.symbol_codes``), which
  row each code is on, the columns the builder reads, and the signal and context values
  of one symbol (a :class:`CapturedValues`).
- :class:`OpenLots` keeps the excursion state of every open lot in numpy arrays indexed
  by slot (symbol code, entry time, whether the entry filled at its bar's close, highest
  high, lowest low, bars held, last close), so applying a bar is a few vectorised
  operations over the open lots, whatever their number, and nothing at all when none is
  open.
- :class:`DeferredBars` holds a run of consecutive bars of one chunk that reach the open
  lots later, together: while the lots do not change (no fill, action or universe
  change comes), a bar's excursion update can wait, and a run of them is a few
  reductions over the chunk's columns instead of one update per timestamp.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._universe import Universe
from ml4t.backtest.errors import ConfigError, DataValidationError
from ml4t.backtest.events import ChunkColumns, MarketBatch, SessionStarted, UniverseChanged

__all__ = ["OHLCV", "CapturedValues", "DeferredBars", "MarketView", "OpenLots"]

OHLCV = ("symbol", "open", "high", "low", "close", "volume")
_F64 = pa.float64()


class CapturedValues:
    """Signal values of one symbol and the context, at one moment."""

    __slots__ = ("context", "values")

    def __init__(self, values: tuple[Any, ...], context: dict[str, float | None]) -> None:
        self.values = values
        self.context = context


NO_CAPTURE = CapturedValues((), {})


class MarketView:
    """The latest market batch, with symbol codes mapped to its rows on demand.

    Codes are the run's (a :class:`~ml4t.backtest._symbols.SymbolTable` fed by the
    session events, the same table every role keeps); ``row_of[code]`` is valid where
    ``stamp[code] == seq``."""

    def __init__(self, signals: tuple[str, ...] | None, context: tuple[str, ...] | None) -> None:
        self._want_signals = signals
        self._want_context = context
        self.signal_types: dict[str, pa.DataType] | None = None
        self.context_fields: tuple[str, ...] | None = None
        self.table = SymbolTable({"row_of": 0, "stamp": -1})
        self.batch: MarketBatch | None = None
        self._columns: dict[str, Any] = {}
        self._stamped = False
        self.seq = 0
        self._arange = np.arange(0)
        self.recoded = False  # set when codes changed; the owner re-codes its lots

    @property
    def codes(self) -> dict[str, int]:
        return self.table.code

    @property
    def row_of(self) -> np.ndarray:
        return self.table["row_of"]

    @property
    def stamp(self) -> np.ndarray:
        return self.table["stamp"]

    def on_session(self, event: SessionStarted | UniverseChanged) -> None:
        """The universe from the session events (codes are the run's from then on)."""
        if self.table.apply(event) is not None:
            self.recoded = True

    def set(self, batch: MarketBatch) -> None:
        """Make ``batch`` current."""
        if not self.table.known:  # no session event (a graph without a feed)
            self.recoded |= self.table.adopt(Universe.of_frame(batch.frame).symbols) is not None
        if self.signal_types is None:
            self.choose_columns(batch.frame, batch.context)
        self.batch = batch
        self._columns = {}
        self._stamped = False

    def stamped(self) -> MarketBatch | None:
        """The current batch with ``row_of[code]`` valid where ``stamp[code] == seq``."""
        batch = self.batch
        if batch is None or batch.frame.height == 0:
            return None
        if not self._stamped:
            codes = batch.symbol_codes()
            self.seq += 1
            if self._arange.size < codes.size:
                self._arange = np.arange(codes.size)
            table = self.table
            try:
                table["row_of"][codes] = self._arange[: codes.size]
            except IndexError:
                raise DataValidationError(
                    f"a market batch at {batch.ts_event} has symbol code {int(codes.max())}, "
                    f"past the {table.size} symbols of the session; the feed must "
                    "announce new symbols with UniverseChanged before their rows"
                ) from None
            table["stamp"][codes] = self.seq
            self._stamped = True
        return batch

    def choose_columns(self, frame: pl.DataFrame | None, context: dict[str, Any]) -> None:
        schema = frame.schema if frame is not None else {}
        names = self._want_signals
        if names is None:
            names = tuple(c for c in schema if c not in OHLCV)
        types: dict[str, pa.DataType] = {}
        for name in names:
            dtype = schema.get(name)
            if frame is not None and dtype is None:
                raise ConfigError(
                    f"reporting.signals names {name!r}, which is not a column of the market "
                    f"data; columns are {list(schema)}"
                )
            numeric = dtype is None or dtype.is_numeric() or dtype == pl.Boolean
            types[name] = _F64 if numeric else pa.string()
        self.signal_types = types
        self.context_fields = (
            self._want_context if self._want_context is not None else tuple(sorted(context))
        )

    def code_of(self, symbol: str) -> int:
        """``symbol``'s code, a new one past the universe if it was never seen."""
        return self.table.ensure(symbol)

    def column(self, name: str) -> Any:
        """A column of the current batch: float64 numpy for numbers, else a list."""
        values = self._columns.get(name)
        if values is None:
            assert self.batch is not None
            series = self.batch.frame.get_column(name)
            if series.dtype == pl.Float64:
                values = self.batch.numpy(name)
            elif series.dtype.is_numeric() or series.dtype == pl.Boolean:
                values = series.cast(pl.Float64).to_numpy()
            else:
                values = series.cast(pl.String).to_list()
            self._columns[name] = values
        return values

    def bar_range(self, symbol: str, ts: int) -> tuple[float, float] | None:
        """(high, low) of ``symbol``'s bar at ``ts``, if the current batch is at ``ts`` and
        has a row for it."""
        batch = self.stamped()
        if batch is None or batch.ts_event != ts:
            return None
        code = self.codes.get(symbol)
        if code is None or self.stamp[code] != self.seq:
            return None
        row = int(self.row_of[code])
        return float(self.column("high")[row]), float(self.column("low")[row])

    def capture(self, symbol: str) -> CapturedValues:
        """``symbol``'s signal values in the current batch (None if absent), and the context."""
        if self.signal_types is None:
            self.choose_columns(None, {})
        batch = self.stamped()
        if batch is None:
            return NO_CAPTURE
        assert self.signal_types is not None
        code = self.codes.get(symbol)
        if code is None or self.stamp[code] != self.seq:
            return CapturedValues((None,) * len(self.signal_types), batch.context)
        row = int(self.row_of[code])
        values = []
        for name, typ in self.signal_types.items():
            value = self.column(name)[row]
            values.append(float(value) if typ == _F64 else value)
        return CapturedValues(tuple(values), batch.context)


class OpenLots:
    """Excursion state of the open lots, in arrays indexed by slot (compacted on release).

    ``hi``/``lo`` are the extremes of the lot's window, ``bars`` the number of bars in it.
    A bar enters the window when it is applied and the lot held it from its open: every
    bar after the entry bar, and the entry bar itself unless the lot filled at its close
    (``late``).
    """

    _ARRAYS = ("code", "entry_ts", "late", "hi", "lo", "bars", "close", "close_ts")

    def __init__(self, capacity: int = 64) -> None:
        self.n = 0
        self.owners: list[Any] = []  # the lot object in each slot (it knows its slot)
        self.newest_entry = -(2**63)
        self.code = np.zeros(capacity, dtype=np.intp)
        self.entry_ts = np.zeros(capacity, dtype=np.int64)
        self.late = np.zeros(capacity, dtype=np.bool_)
        self.hi = np.zeros(capacity)
        self.lo = np.zeros(capacity)
        self.bars = np.zeros(capacity, dtype=np.int64)
        self.close = np.zeros(capacity)
        self.close_ts = np.zeros(capacity, dtype=np.int64)

    def add(self, owner: Any, code: int, ts: int, price: float, *, late: bool) -> int:
        """Open a lot entered at ``price`` on the bar at ``ts`` (``late``: at its close)."""
        slot = self.n
        if slot == self.code.shape[0]:
            for name in self._ARRAYS:
                old = getattr(self, name)
                new = np.zeros(old.shape[0] * 2, dtype=old.dtype)
                new[: old.shape[0]] = old
                setattr(self, name, new)
        self.owners.append(owner)
        self.code[slot] = code
        self.entry_ts[slot] = ts
        self.late[slot] = late
        self.hi[slot] = self.lo[slot] = price
        self.bars[slot] = 0
        self.close[slot] = math.nan
        self.close_ts[slot] = ts
        self.newest_entry = max(self.newest_entry, ts)
        self.n = slot + 1
        return slot

    def see_price(self, slot: int, price: float) -> None:
        self.hi[slot] = max(self.hi[slot], price)
        self.lo[slot] = min(self.lo[slot], price)

    def state(self, slot: int) -> tuple[float, float, int]:
        """(highest high, lowest low, bars held) of the lot in ``slot``."""
        return float(self.hi[slot]), float(self.lo[slot]), int(self.bars[slot])

    def held_from_open(self, slot: int, ts: int) -> bool:
        """Whether the lot in ``slot`` held the bar at ``ts`` from its open (the bar is
        after its entry bar, or it is the entry bar of a lot filled at the open or within
        it)."""
        return bool(self.entry_ts[slot] < ts or not self.late[slot])

    def scale(self, slots: list[int], ratio: float) -> None:
        """A split of ``ratio``: the lots in ``slots`` get their highest high, lowest low
        and last close in post-split prices (divided by ``ratio``)."""
        if slots:
            index = np.asarray(slots, dtype=np.intp)
            for arr in (self.hi, self.lo, self.close):
                arr[index] /= ratio

    def recode(self, slots: list[int], code: int) -> None:
        """The lots in ``slots`` trade on under symbol code ``code`` (a symbol change)."""
        if slots:
            self.code[np.asarray(slots, dtype=np.intp)] = code

    def release(self, slot: int) -> Any:
        """Free ``slot`` by moving the last slot into it; returns the owner moved (or None)."""
        last = self.n - 1
        moved = None
        if slot != last:
            moved = self.owners[last]
            self.owners[slot] = moved
            for name in self._ARRAYS:
                arr = getattr(self, name)
                arr[slot] = arr[last]
        self.owners.pop()
        self.n = last
        return moved

    def apply(self, view: MarketView) -> None:
        """Apply the current batch's bars to every open lot of a symbol in it.

        The common case (every lot's symbol is in the batch, every lot opened before
        it) skips the masks.
        """
        batch = view.stamped()
        if batch is None:
            return
        n, ts, column = self.n, batch.ts_event, batch.numpy
        codes = self.code[:n]
        rows = view.row_of[codes]
        seen = view.stamp[codes] == view.seq
        if self.newest_entry < ts and seen.all():
            np.fmax(self.hi[:n], column("high")[rows], out=self.hi[:n])
            np.fmin(self.lo[:n], column("low")[rows], out=self.lo[:n])
            self.bars[:n] += 1
            self.close[:n] = column("close")[rows]
            self.close_ts[:n] = ts
            return
        entry_ts = self.entry_ts[:n]
        held = seen & (entry_ts <= ts)
        if not held.any():
            return
        rows = np.where(held, rows, 0)
        high = column("high")[rows]
        low = column("low")[rows]
        ranged = held & ((entry_ts < ts) | ~self.late[:n])
        np.copyto(self.hi[:n], np.fmax(self.hi[:n], high), where=ranged)
        np.copyto(self.lo[:n], np.fmin(self.lo[:n], low), where=ranged)
        self.bars[:n] += ranged
        np.copyto(self.close[:n], column("close")[rows], where=held)
        np.copyto(self.close_ts[:n], ts, where=held)


class DeferredBars:
    """Consecutive bars of one chunk, applied to the open lots later and together.

    The result is the one :meth:`OpenLots.apply` gives bar by bar, to the bit: the
    highest high and lowest low of a run are ``fmax``/``fmin`` reductions (which, like
    the bar-by-bar update, pass over NaN), each lot's bars held grows by the number of
    its symbol's rows in the run, and its last close and its time are those of its
    symbol's last row. That holds only while the set of open lots does not change and
    every lot opened before the run's bars: the owner applies the run (:meth:`apply_to`)
    before any fill, action or universe change touches the lots, and :meth:`take`
    refuses a bar at or before the newest entry, a batch not cut from a chunk, and a bar
    that does not follow the run in the same chunk.
    """

    __slots__ = ("_chunk", "_first", "_last", "_ts")

    def __init__(self) -> None:
        self._chunk: ChunkColumns | None = None
        self._first = 0
        self._last = -1
        self._ts: list[int] = []  # the run's timestamps

    @property
    def pending(self) -> int:
        """Bars waiting to be applied."""
        return len(self._ts) if self._chunk is not None else 0

    def take(self, batch: MarketBatch, lots: OpenLots) -> bool:
        """Add ``batch``'s bar to the run; False when it cannot wait (apply the run,
        then the bar on its own)."""
        if lots.newest_entry >= batch.ts_event:
            return False
        bound = batch.chunk()
        if bound is None:
            return False
        return self.take_steps(bound[0], bound[1], [batch.ts_event], lots)

    def take_steps(self, chunk: ChunkColumns, first: int, times: list[int], lots: OpenLots) -> bool:
        """Add timestamps ``first`` on of ``chunk`` (``times``, one per timestamp) to the
        run; False when they cannot wait (after a bar of another chunk or not right
        before them, with rows not back to back, or at or before the newest entry)."""
        if not times or lots.newest_entry >= times[0]:
            return False
        last = first + len(times) - 1
        offsets, lengths = chunk.offsets, chunk.lengths
        for index in range(first, last):
            if offsets[index + 1] != offsets[index] + lengths[index]:
                return False
        if self._chunk is None:
            self._chunk, self._first, self._ts = chunk, first, []
        elif (
            chunk is not self._chunk
            or first != self._last + 1
            or offsets[first] != offsets[self._last] + lengths[self._last]
        ):
            return False  # the run's rows must be one block of the chunk
        self._last = last
        self._ts.extend(times)
        return True

    def apply_to(self, lots: OpenLots, symbols: int) -> None:
        """Apply the run to ``lots`` (the lots open while it was taken) and empty it;
        ``symbols`` is the session's number of symbols (a code past it is an error, as
        bar by bar)."""
        chunk = self._chunk
        if chunk is None:
            return
        self._chunk = None
        first, last, n = self._first, self._last, lots.n
        r0 = chunk.offsets[first]
        r1 = chunk.offsets[last] + chunk.lengths[last]
        if not n or r1 == r0:
            return
        codes = chunk.codes()[r0:r1]
        if int(codes.max()) >= symbols:
            raise DataValidationError(
                f"a market batch between {self._ts[0]} and {self._ts[-1]} has symbol code "
                f"{int(codes.max())}, past the {symbols} symbols of the session; the feed "
                "must announce new symbols with UniverseChanged before their rows"
            )
        high = chunk.array("high")[r0:r1]
        low = chunk.array("low")[r0:r1]
        close = chunk.array("close")[r0:r1]
        steps = last - first + 1
        width = chunk.lengths[first]
        lengths = chunk.lengths[first : last + 1]
        if min(lengths) == max(lengths) and _same_rows(codes, steps, width):
            self._apply_grid(lots, n, codes[:width], steps, high, low, close)
        else:
            self._apply_rows(lots, n, chunk, r0, codes, high, low, close)

    def _apply_grid(
        self,
        lots: OpenLots,
        n: int,
        row_codes: np.ndarray,
        steps: int,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
    ) -> None:
        """Every bar of the run has the same symbols in the same rows: reduce by column."""
        width = row_codes.size
        column = np.full(max(int(row_codes.max()), int(lots.code[:n].max())) + 1, -1)
        column[row_codes] = np.arange(width)
        at = column[lots.code[:n]]
        slots = np.flatnonzero(at >= 0)
        if not slots.size:
            return
        at = at[slots]
        hi = np.fmax.reduce(high.reshape(steps, width), axis=0)
        lo = np.fmin.reduce(low.reshape(steps, width), axis=0)
        lots.hi[slots] = np.fmax(lots.hi[slots], hi[at])
        lots.lo[slots] = np.fmin(lots.lo[slots], lo[at])
        lots.bars[slots] += steps
        lots.close[slots] = close.reshape(steps, width)[-1, at]
        lots.close_ts[slots] = self._ts[-1]

    def _apply_rows(
        self,
        lots: OpenLots,
        n: int,
        chunk: ChunkColumns,
        r0: int,
        codes: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
    ) -> None:
        """Bars with symbols missing or in other rows: reduce by symbol code."""
        lot_codes = lots.code[:n]
        size = max(int(codes.max()), int(lot_codes.max())) + 1
        count = np.bincount(codes, minlength=size)
        slots = np.flatnonzero(count[lot_codes] > 0)
        if not slots.size:
            return
        hi = np.full(size, np.nan)
        lo = np.full(size, np.nan)
        np.fmax.at(hi, codes, high)
        np.fmin.at(lo, codes, low)
        last_row = np.full(size, -1, dtype=np.intp)
        np.maximum.at(last_row, codes, np.arange(codes.size))
        c = lot_codes[slots]
        rows = last_row[c]
        lots.hi[slots] = np.fmax(lots.hi[slots], hi[c])
        lots.lo[slots] = np.fmin(lots.lo[slots], lo[c])
        lots.bars[slots] += count[c]
        lots.close[slots] = close[rows]
        # the timestamp of each last row: the bar whose rows hold it
        starts = np.asarray(chunk.offsets[self._first : self._last + 1]) - r0
        step = np.searchsorted(starts, rows, side="right") - 1
        lots.close_ts[slots] = np.asarray(self._ts, dtype=np.int64)[step]


def _same_rows(codes: np.ndarray, steps: int, width: int) -> bool:
    """Whether each of ``steps`` bars of ``width`` rows has the first bar's codes."""
    grid = codes.reshape(steps, width)
    return bool((grid == grid[0]).all())
