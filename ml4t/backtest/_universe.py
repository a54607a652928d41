"""Symbol codes: the integer index every role uses for its per-symbol numpy arrays.

A :class:`~ml4t.backtest.events.MarketBatch` frame's ``symbol`` column is a ``pl.Enum``
whose categories are the whole sorted universe, the same on every batch, so the physical
code of a row *is* the index into arrays sized ``len(universe)``. A :class:`Universe` is
learned once from the first batch (or given up front) and maps names to codes with one
dict lookup. The codes of a batch's rows travel in the batch itself
(:meth:`~ml4t.backtest.events.MarketBatch.symbol_codes`: the feed computes them once per
chunk); :func:`frame_codes` reads them from a bare frame's Enum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import polars as pl

from ml4t.backtest.errors import ConfigError, ProtocolError

__all__ = ["Universe", "frame_codes", "grow", "moved"]


def frame_codes(frame: pl.DataFrame) -> np.ndarray:
    """The symbol codes of ``frame``'s rows, from its ``symbol`` Enum (~20 us: use the
    batch's own codes where there is a batch)."""
    return frame.get_column("symbol").to_physical().to_numpy().astype(np.intp, copy=False)


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
            twice = sorted(s for s, n in Counter(self.symbols).items() if n > 1)
            raise ConfigError(f"a universe cannot list a symbol twice: {twice}; list each once")

    @classmethod
    def of_frame(cls, frame: pl.DataFrame) -> Universe:
        """The universe of a market frame: the categories of its ``symbol`` Enum."""
        dtype = frame.schema["symbol"]
        if not isinstance(dtype, pl.Enum):
            raise ProtocolError(
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
