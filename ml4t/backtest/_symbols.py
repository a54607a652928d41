"""One role's per-symbol state: named numpy arrays indexed by symbol code.

Every role that keeps state per symbol (the portfolio's positions, the risk manager's
view, the strategy's positions, the broker's universe, the recorder's market view) holds
a :class:`SymbolTable`. It learns the universe from the session events
(:class:`~ml4t.backtest.events.SessionStarted`, then
:class:`~ml4t.backtest.events.UniverseChanged`), which the feed publishes before
anything else, so a component's codes are the run's codes from its first event on. A
component run without a feed (a unit test publishing bare batches) learns the universe
from a batch's ``symbol`` Enum instead, through the same :meth:`SymbolTable.adopt`.

Growing the universe is one code path: :meth:`adopt` with a longer symbol list appends
the new symbols (arrays grow with each column's fill value). The only other case — a
symbol a role met before it knew the universe (an order naming it), with the universe
then listing symbols in another order — re-codes the arrays by name and returns the
mapping (old code -> new code), so the owner can re-code what else it keeps by code.

>>> table = SymbolTable({"quantity": 0.0, "last": float("nan")})
>>> table.adopt(["AAA", "BBB"]) is None, table.size, table.code["BBB"]
(True, 2, 1)
>>> table["quantity"][1] = 5.0
>>> _ = table.adopt(["AAA", "BBB", "CCC"])  # a symbol listed mid-run
>>> table["quantity"].tolist(), table.code["CCC"]
([0.0, 5.0, 0.0], 2)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ml4t.backtest._universe import Universe, grow, moved
from ml4t.backtest.events import SessionStarted, UniverseChanged

__all__ = ["SymbolTable"]


class SymbolTable:
    """Named arrays by symbol code, sized to the universe; ``fills`` gives each array's
    name and the value a new symbol starts with."""

    __slots__ = ("_arrays", "_fills", "known", "universe")

    def __init__(self, fills: Mapping[str, float], symbols: Iterable[str] | None = None) -> None:
        self._fills = dict(fills)
        self.universe = Universe(symbols or ())
        # the run's universe was adopted (from the session, or a batch); symbols given
        # here are provisional codes, re-coded by name once the universe is known
        self.known = False
        size = len(self.universe)
        self._arrays = {name: np.full(size, fill) for name, fill in self._fills.items()}

    # ------------------------------------------------------------ reading

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.universe.code

    @property
    def code(self) -> dict[str, int]:
        return self.universe.code

    @property
    def symbols(self) -> list[str]:
        return self.universe.symbols

    @property
    def size(self) -> int:
        return len(self.universe)

    def code_of(self, symbol: str) -> int | None:
        return self.universe.code.get(symbol)

    # ------------------------------------------------------------ changing

    def apply(self, event: SessionStarted | UniverseChanged) -> np.ndarray | None:
        """Take the universe from a session event; returns a re-coding mapping or None
        (see :meth:`adopt`)."""
        if isinstance(event, SessionStarted):
            return self.adopt(event.symbols)
        return self.adopt([*self.symbols, *(s for s in event.added if s not in self)])

    def adopt(self, symbols: Sequence[str]) -> np.ndarray | None:
        """Make ``symbols`` (in code order) the universe's first symbols.

        When the table's symbols are a prefix of ``symbols`` (always, once the universe
        is known), the new ones are appended and None is returned. Otherwise the arrays
        are re-coded by name (symbols met before, not in ``symbols``, go after them) and
        the mapping old code -> new code is returned."""
        self.known = True
        current = self.universe.symbols
        if current == list(symbols[: len(current)]):
            for symbol in symbols[len(current) :]:
                self.universe.add(symbol)
            self._grow()
            return None
        merged, mapping = self.universe.aligned_to(Universe(symbols))
        size = len(merged)
        self._arrays = {
            name: moved(array, mapping, size, self._fills[name])
            for name, array in self._arrays.items()
        }
        self.universe = merged
        return mapping

    def ensure(self, symbol: str) -> int:
        """The code of ``symbol``, appending it (and growing the arrays) if new."""
        code = self.universe.code.get(symbol)
        if code is None:
            code = self.universe.add(symbol)
            self._grow()
        return code

    def _grow(self) -> None:
        size = len(self.universe)
        for name, array in self._arrays.items():
            if array.shape[0] < size:
                self._arrays[name] = grow(array, size, self._fills[name])
