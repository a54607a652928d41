"""The positions the account holds, per symbol, and the price each is marked at.

The recorder keeps them for ``daily_positions`` (and pyfolio's ``positions`` frame): the
portfolio says every change of a quantity (``PositionChanged``, after a fill, a split or
a symbol change), and prices come from the market batches, as the portfolio marks them:
a symbol's last close (divided by a split's ratio; carried over to the new symbol of a
symbol change). While nothing is held no batch is read at all; a position opened is
priced from the batch it filled on.
"""

from __future__ import annotations

import math

import numpy as np

from ml4t.backtest._span import MarketSpan
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._universe import Universe
from ml4t.backtest.events import (
    ActionKind,
    CorporateAction,
    MarketBatch,
    PositionChanged,
    SessionStarted,
    UniverseChanged,
)
from ml4t.backtest.record.daily import Holdings

__all__ = ["PositionBook"]


class PositionBook:
    """Signed quantity and last price per symbol code; :meth:`holdings` at any moment."""

    __slots__ = ("_batch", "_held", "_names", "_span_prices", "table")

    def __init__(self) -> None:
        self.table = SymbolTable({"quantity": 0.0, "price": math.nan})
        self._held = np.zeros(0, dtype=np.intp)  # codes with a non-zero quantity
        self._names: tuple[str, ...] = ()  # their symbols
        self._batch: MarketBatch | None = None
        # the held symbols' prices at each timestamp of the latest quiet span
        self._span_prices: np.ndarray | None = None

    def on_session(self, event: SessionStarted | UniverseChanged) -> None:
        if self.table.apply(event) is not None:
            self._rehold()

    def on_market(self, batch: MarketBatch) -> None:
        """Mark the held symbols at this batch's closes."""
        table = self.table
        if not table.known and table.adopt(Universe.of_frame(batch.frame).symbols) is not None:
            self._rehold()  # no session event (a graph without a feed): re-coded
        self._batch = batch
        if self._held.size and batch.frame.height:
            self.table["price"][batch.symbol_codes()] = batch.numpy("close")

    def on_span(self, span: MarketSpan) -> None:
        """A quiet span's bars: the held symbols' prices at each of its timestamps are
        kept for :meth:`holdings_at`, and the table ends as bar by bar."""
        self._batch = span.batch
        self._span_prices = None
        held = self._held
        if held.size and span.height:
            price = self.table["price"]
            self._span_prices = span.filled("close", held, price[held])
            span.scatter_last(price, "close")

    def holdings_at(self, step: int) -> Holdings:
        """:meth:`holdings` as of timestamp ``step`` of the latest quiet span."""
        prices = self._span_prices
        if prices is None or not self._held.size:
            return self.holdings()
        return (self._names, self.table["quantity"][self._held], prices[step].copy())

    def on_position(self, event: PositionChanged) -> None:
        code = self.table.ensure(event.symbol)
        quantity = self.table["quantity"]
        opened = quantity[code] == 0.0 and event.quantity != 0.0
        quantity[code] = event.quantity
        if opened and not self._held.size:
            self._price_from_batch(code)  # batches were not read while flat
        if opened and math.isnan(self.table["price"][code]):
            self.table["price"][code] = event.avg_price
        self._rehold()

    def on_action(self, action: CorporateAction) -> None:
        """A split reprices (its quantity change comes as ``PositionChanged``); a symbol
        change carries the last price over to the new symbol."""
        price = self.table["price"]
        if action.action is ActionKind.SPLIT:
            price[self.table.ensure(action.symbol)] /= action.ratio
        elif action.action is ActionKind.SYMBOL_CHANGE:
            old, new = self.table.ensure(action.symbol), self.table.ensure(action.new_symbol)
            if math.isnan(price[new]):
                price[new] = price[old]

    def holdings(self) -> Holdings:
        """(symbols, quantities, prices) held now, or None when flat."""
        held = self._held
        if not held.size:
            return None
        return (
            self._names,
            self.table["quantity"][held],
            self.table["price"][held].copy(),
        )

    def _rehold(self) -> None:
        self._held = np.flatnonzero(self.table["quantity"] != 0.0)
        symbols = self.table.symbols
        self._names = tuple(map(symbols.__getitem__, self._held.tolist()))

    def _price_from_batch(self, code: int) -> None:
        batch = self._batch
        if batch is None or not batch.frame.height:
            return
        rows = np.flatnonzero(batch.symbol_codes() == code)
        if rows.size:
            self.table["price"][code] = float(batch.numpy("close")[int(rows[0])])
