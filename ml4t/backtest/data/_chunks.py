"""Time-ordered chunks sized by a memory budget, read ahead on a worker thread.

The data set is cut into contiguous time ranges ``[lo, hi)`` whose rows fit a share of
``chunk_memory_mb``; a timestamp never straddles two chunks (a batch is one slice of one
chunk). Ranges are read with a predicate on the raw timestamp column, which polars pushes
down to the parquet reader, so each chunk reads only the row groups it needs.

:class:`ChunkReader` keeps at most two chunks alive: the one being consumed and the next,
collected on a worker thread while the caller works (polars releases the GIL while it
reads, so on two cores reading and publishing overlap). The sequence of chunks is fixed by
the plan, never by thread timing, so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np
import polars as pl

__all__ = ["ChunkPlan", "ChunkReader", "bytes_per_row", "plan_chunks"]

T = TypeVar("T")

_MB = 1024 * 1024
RESIDENT_CHUNKS = 2
"""Chunks alive at once (current + read-ahead); each gets budget / RESIDENT_CHUNKS."""
FIRST_CHUNK_SHARE = 1 / 8
"""The first chunk's share of a chunk's budget (see :func:`plan_chunks`)."""


class ChunkPlan:
    """Contiguous time ranges covering the data: chunk ``i`` is ``[bounds[i], bounds[i+1])``."""

    __slots__ = ("bounds", "rows")

    def __init__(self, bounds: list[int], rows: list[int]) -> None:
        self.bounds = bounds
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def ranges(self) -> list[tuple[int, int]]:
        b = self.bounds
        return [(b[i], b[i + 1]) for i in range(len(self.rows))]

    def __repr__(self) -> str:
        return f"ChunkPlan({len(self)} chunks, max {max(self.rows, default=0)} rows)"


_WIDTHS: dict[type[pl.DataType], int] = {
    pl.Boolean: 1, pl.Int8: 1, pl.UInt8: 1, pl.Int16: 2, pl.UInt16: 2,
    pl.Int32: 4, pl.UInt32: 4, pl.Float32: 4, pl.Date: 4,
    pl.Enum: 4, pl.Categorical: 4,
}  # fmt: skip


def bytes_per_row(schema: pl.Schema) -> int:
    """Bytes one row of ``schema`` occupies in memory (fixed-width estimate + validity).

    8 bytes for 64-bit numbers and times, less for narrower types, 16 for a string view.
    """
    total = 0
    for dtype in schema.values():
        if type(dtype) in _WIDTHS:
            total += _WIDTHS[type(dtype)]
        elif dtype.is_numeric() or isinstance(dtype, pl.Datetime | pl.Duration):
            total += 8
        else:
            total += 16
    return total + len(schema) // 8 + 1


def plan_chunks(
    ts: np.ndarray, counts: np.ndarray, *, row_bytes: int, budget_mb: float
) -> ChunkPlan:
    """Cut sorted unique timestamps ``ts`` (with row ``counts``) into memory-sized ranges.

    Each chunk holds as many whole timestamps as fit ``budget_mb / RESIDENT_CHUNKS``; a
    single timestamp larger than that gets a chunk of its own. The first chunk is
    :data:`FIRST_CHUNK_SHARE` of that size: it is read before the first event, with
    nothing to overlap it, while every later chunk is read ahead as the one before plays.
    """
    if len(ts) == 0:
        return ChunkPlan([], [])
    cap = max(1, int(budget_mb * _MB / RESIDENT_CHUNKS / max(row_bytes, 1)))
    cum = np.cumsum(counts, dtype=np.int64)
    starts = [0]
    while True:
        base = cum[starts[-1] - 1] if starts[-1] > 0 else 0
        room = max(1, int(cap * FIRST_CHUNK_SHARE)) if len(starts) == 1 else cap
        nxt = int(np.searchsorted(cum, base + room, side="right"))
        nxt = max(nxt, starts[-1] + 1)
        if nxt >= len(ts):
            break
        starts.append(nxt)
    bounds = [int(ts[i]) for i in starts] + [int(ts[-1]) + 1]
    ends = [*starts[1:], len(ts)]
    rows = [int(cum[e - 1] - (cum[s - 1] if s else 0)) for s, e in zip(starts, ends, strict=True)]
    return ChunkPlan(bounds, rows)


class ChunkReader(Generic[T]):
    """Iterate ``load(lo, hi)`` over a plan, reading the next chunk ahead on a thread."""

    def __init__(
        self, plan: ChunkPlan, load: Callable[[int, int], T], *, read_ahead: bool = True
    ) -> None:
        self._ranges = plan.ranges()
        self._load = load
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ml4t-chunks") if read_ahead else None
        self._pending: Future[T] | None = None
        self._next = 0

    def __iter__(self) -> Iterator[T]:
        while True:
            chunk = self.next_chunk()
            if chunk is None:
                return
            yield chunk

    def next_chunk(self) -> T | None:
        """The next chunk in time order, or None after the last (then the reader closes)."""
        if self._next >= len(self._ranges):
            self.close()
            return None
        pending, self._pending = self._pending, None
        chunk = pending.result() if pending is not None else self._load(*self._ranges[self._next])
        self._next += 1
        if self._pool is not None and self._next < len(self._ranges):
            self._pending = self._pool.submit(self._load, *self._ranges[self._next])
        return chunk

    def close(self) -> None:
        """Stop reading ahead; waits for a read in flight and drops its result."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._next = len(self._ranges)
