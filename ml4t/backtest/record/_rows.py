"""What a trade record is made of, and how it becomes a row of ``trades``.

- :class:`Lot` is an entry the FIFO rule closes, :class:`ExitRecord` one (lot, exit
  order) trade being assembled from that order's partial fills. Both are in **current
  shares**: a split multiplies their quantities by its ratio and divides their prices
  by it (:mod:`~ml4t.backtest.record._actions`), and ``Lot.split_ratio`` keeps the
  product of the ratios, so a trade's price per original share is ``price x
  split_ratio`` and its quantity in original shares ``quantity / split_ratio``.
- :class:`TradeRows` owns the trades table: its schema (the captured columns are chosen
  from the first batch), the captured values, and the row of a trade.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
import pyarrow as pa

from ml4t.backtest._time import NS_PER_DAY
from ml4t.backtest.record._lots import CapturedValues, MarketView
from ml4t.backtest.record.tables import TableBuffer, trades_schema

__all__ = ["ExitPart", "ExitRecord", "Lot", "TradeRows"]

_json = msgspec.json.Encoder(order="sorted")


class Lot:
    """An open entry: what is left of it (``open``), what it was (``filled``), its VWAP
    entry price and the entry costs not yet given to a trade."""

    __slots__ = (
        "commission",
        "direction",
        "entry",
        "entry_symbol",
        "entry_ts",
        "filled",
        "lot_id",
        "open",
        "order_id",
        "price",
        "slippage",
        "slot",
        "split_ratio",
        "stop_loss",
        "strategy_id",
        "symbol",
        "take_profit",
    )

    commission: float
    direction: int  # +1 long, -1 short
    entry: CapturedValues
    entry_symbol: str  # the symbol it was entered under (``symbol`` follows renames)
    entry_ts: int
    filled: float
    lot_id: str
    open: float
    order_id: str
    price: float
    slippage: float
    slot: int  # its slot in OpenLots, -1 once closed
    split_ratio: float
    stop_loss: float | None
    strategy_id: str
    symbol: str
    take_profit: float | None


class ExitRecord:
    """One (lot, exit order) trade record being assembled from partial fills."""

    __slots__ = (
        "bars",
        "capture",
        "commission",
        "entry_commission",
        "entry_slippage",
        "hi",
        "last_ts",
        "lo",
        "lot",
        "notional",
        "order_id",
        "quantity",
        "reason",
        "slippage",
        "symbol",
    )

    bars: int
    capture: CapturedValues
    commission: float
    entry_commission: float
    entry_slippage: float
    hi: float
    last_ts: int
    lo: float
    lot: Lot
    notional: float
    order_id: str
    quantity: float
    reason: str
    slippage: float
    symbol: str  # the symbol of its last exit fill


class ExitPart(NamedTuple):
    """The exit half of a row (absent for a lot left open at the end)."""

    order_id: str | None
    ts: int
    price: float
    commission: float
    slippage: float
    reason: str
    capture: CapturedValues | None


class TradeRows:
    """The trades table: created on the first row (or at the end), one row per trade.

    ``make_table(schema)`` returns the buffer rows go to.
    """

    def __init__(self, market: MarketView, make_table: Callable[[pa.Schema], TableBuffer]) -> None:
        self._market = market
        self._make_table = make_table
        self.table: TableBuffer | None = None
        self.count = 0

    def ensure_table(self) -> TableBuffer:
        if self.table is None:
            market = self._market
            if market.signal_types is None:
                market.choose_columns(None, {})
            assert market.signal_types is not None and market.context_fields is not None
            schema = trades_schema(market.signal_types, market.context_fields)
            self.table = self._make_table(schema)
        return self.table

    def _captured(self, capture: CapturedValues | None) -> list[Any]:
        signals, fields = self._market.signal_types, self._market.context_fields
        assert signals is not None and fields is not None
        if capture is None:
            return [None] * (len(signals) + len(fields) + 1)
        values = list(capture.values) or [None] * len(signals)
        ctx = capture.context
        values += [ctx.get(name) for name in fields]
        if ctx:  # numbers as floats, as the codec decodes them: a replay gives equal JSON
            plain = {k: float(v) if isinstance(v, int) else v for k, v in ctx.items()}
            values.append(_json.encode(plain).decode())
        else:
            values.append(None)
        return values

    def write(
        self,
        lot: Lot,
        qty: float,
        entry_costs: tuple[float, float],
        exit_part: ExitPart | None,
        excursion: tuple[float, float, int],
        symbol: str,
    ) -> None:
        """The row of ``qty`` of ``lot`` (entry commission and slippage given), closed by
        ``exit_part`` (None: still open) under ``symbol``, with the (highest high,
        lowest low, bars) of its window."""
        table = self.ensure_table()
        self.count += 1
        entry_commission, entry_slippage = entry_costs
        hi, lo, bars = excursion
        d = lot.direction
        entry = lot.price
        if d > 0:
            mfe, mae = max(hi - entry, 0.0), max(entry - lo, 0.0)
        else:
            mfe, mae = max(entry - lo, 0.0), max(hi - entry, 0.0)
        pct = 100.0 / entry if entry else math.nan
        if exit_part is not None:
            gross = (exit_part.price - entry) * qty * d
            net = gross - entry_commission - exit_part.commission
            basis = entry * qty
            exit_cols = [
                exit_part.order_id,
                exit_part.ts,
                exit_part.price,
                qty,
                exit_part.commission,
                exit_part.slippage,
                exit_part.reason,
                *self._captured(exit_part.capture),
            ]
            costs = entry_commission + entry_slippage + exit_part.commission + exit_part.slippage
            pnl: list[float | int | None] = [
                gross,
                net,
                net / basis * 100.0 if basis else math.nan,
                costs,
                bars,
                (exit_part.ts - lot.entry_ts) / NS_PER_DAY,
            ]
        else:
            exit_cols = [None] * 7 + self._captured(None)
            pnl = [None, None, None, entry_commission + entry_slippage, bars, None]
        table.append(
            (
                f"T{self.count}",
                lot.lot_id,
                lot.strategy_id,
                symbol,
                lot.entry_symbol,
                "long" if d > 0 else "short",
                qty,
                lot.filled,
                lot.split_ratio,
                lot.order_id,
                lot.entry_ts,
                entry,
                qty,
                entry_commission,
                entry_slippage,
                *self._captured(lot.entry),
                *exit_cols,
                *pnl,
                lot.stop_loss,
                lot.take_profit,
                mfe,
                mae,
                mfe * pct,
                mae * pct,
            )
        )
