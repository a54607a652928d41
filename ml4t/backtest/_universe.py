"""Symbol codes: the integer index every role uses for its per-symbol numpy arrays.

A :class:`~ml4t.backtest.events.MarketBatch` frame's ``symbol`` column is a ``pl.Enum``
whose categories are the whole sorted universe, the same on every batch, so the physical
code of a row *is* the index into arrays sized ``len(universe)``. A :class:`Universe` is
learned once from the first batch (or given up front) and maps names to codes with one
dict lookup; :func:`batch_codes` extracts a batch's codes as a numpy array.

Extracting codes is on the hot path of every role, and ``Series.to_physical()`` costs
~15 us whatever the batch size (it goes through the lazy engine). :func:`batch_codes`
reads the Enum's index buffer through the Arrow C data interface instead (~3 us, no
copy of the categories), falling back to ``to_physical()`` for anything unusual (several
chunks, nulls, an unexpected format). The last frame's codes are memoised by identity
(holding a reference, so the identity cannot be reused), since the broker, the portfolio
and the risk manager all ask for the same frame. That is a cache of a pure function,
not shared state: each process has its own.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable

import numpy as np
import polars as pl

__all__ = ["Universe", "batch_codes", "grow", "moved"]

_cached_frame: pl.DataFrame | None = None
_cached_codes: np.ndarray = np.empty(0, dtype=np.intp)


def prime_batch_codes(frame: pl.DataFrame, codes: np.ndarray) -> None:
    """Tell :func:`batch_codes` the codes of ``frame`` (a feed that computed them once
    per chunk hands each batch's slice over, so no component pays for them again)."""
    global _cached_frame, _cached_codes
    _cached_frame, _cached_codes = frame, codes


def batch_codes(frame: pl.DataFrame) -> np.ndarray:
    """The symbol codes of ``frame``'s rows (``intp``), computed once per frame."""
    global _cached_frame, _cached_codes
    if frame is _cached_frame:
        return _cached_codes
    series = frame.get_column("symbol")
    codes = _enum_codes(series) if series.n_chunks() == 1 else None
    if codes is None:
        codes = series.to_physical().to_numpy().astype(np.intp, copy=False)
    _cached_frame, _cached_codes = frame, codes
    return codes


# ---------------------------------------------------------------- Arrow C data interface


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.c_void_p),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.c_void_p),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]

_RELEASE_ARRAY = ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArray))
_RELEASE_SCHEMA = ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowSchema))
_INDEX_TYPES = {
    b"C": np.uint8,
    b"S": np.uint16,
    b"I": np.uint32,
    b"c": np.int8,
    b"s": np.int16,
    b"i": np.int32,
    b"l": np.int64,
    b"L": np.uint64,
}


class _Buffer:
    """Lends numpy a foreign buffer through ``__array_interface__`` (no ctypes array type
    is created per call, which would cost microseconds)."""

    __slots__ = ("__array_interface__",)


def _enum_codes(series: pl.Series) -> np.ndarray | None:
    """The index buffer of a one-chunk dictionary-encoded series, copied as ``intp``;
    None if the export is not what we expect (the caller falls back)."""
    array, schema = _ArrowArray(), _ArrowSchema()
    try:
        series._s._export_arrow_to_c(ctypes.addressof(array), ctypes.addressof(schema))
    except Exception:  # an unexpected polars version: use the slow, safe path
        return None
    try:
        dtype = _INDEX_TYPES.get(schema.format or b"")
        if dtype is None or not schema.dictionary or array.null_count or array.n_buffers != 2:
            return None
        n, offset = array.length, array.offset
        address = array.buffers[1]
        if n == 0 or not address:
            return np.empty(0, dtype=np.intp)
        view = _Buffer()
        view.__array_interface__ = {
            "data": (address + offset * np.dtype(dtype).itemsize, True),
            "shape": (n,),
            "typestr": np.dtype(dtype).str,
            "version": 3,
        }
        return np.array(view, dtype=np.intp)
    finally:
        if array.release:
            _RELEASE_ARRAY(array.release)(ctypes.byref(array))
        if schema.release:
            _RELEASE_SCHEMA(schema.release)(ctypes.byref(schema))


class Universe:
    """The ordered symbols of a run; ``code[symbol]`` is the symbol's array index.

    A symbol outside the universe can be :meth:`add`-ed (it gets the next code); the
    caller grows its arrays to :attr:`size`. Codes of batch rows always lie below the
    size learned from the batch's categories.
    """

    __slots__ = ("code", "symbols")

    def __init__(self, symbols: Iterable[str] = ()) -> None:
        self.symbols: list[str] = list(symbols)
        self.code: dict[str, int] = {s: i for i, s in enumerate(self.symbols)}
        if len(self.code) != len(self.symbols):
            raise ValueError("a universe cannot list a symbol twice")

    @classmethod
    def of_frame(cls, frame: pl.DataFrame) -> Universe:
        """The universe of a market frame: the categories of its ``symbol`` Enum."""
        dtype = frame.schema["symbol"]
        if not isinstance(dtype, pl.Enum):
            raise TypeError(
                f"market frames must carry 'symbol' as a pl.Enum of the universe, got {dtype}"
            )
        return cls(dtype.categories.to_list())

    @property
    def size(self) -> int:
        return len(self.symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.code

    def aligned_to(self, data: Universe) -> tuple[Universe, np.ndarray]:
        """A universe whose codes are ``data``'s (then this one's other symbols, in
        order), and ``new_code[old_code]`` to move per-symbol arrays over to it."""
        merged = Universe(data.symbols)
        mapping = np.fromiter(
            (merged.add(s) for s in self.symbols), dtype=np.intp, count=len(self.symbols)
        )
        return merged, mapping

    def add(self, symbol: str) -> int:
        """The code of ``symbol``, appending it if new."""
        code = self.code.get(symbol)
        if code is None:
            code = self.code[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return code


def moved(array: np.ndarray, mapping: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``array`` re-indexed by ``mapping`` (old code -> new code) into ``size`` entries."""
    out = np.full(size, fill, dtype=array.dtype)
    out[mapping] = array[: mapping.shape[0]]
    return out


def grow(array: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``array`` extended to ``size`` entries with ``fill`` (unchanged if long enough)."""
    if array.shape[0] >= size:
        return array
    extra = np.full(size - array.shape[0], fill, dtype=array.dtype)
    return np.concatenate([array, extra])
