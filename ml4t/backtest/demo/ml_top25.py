"""The proposal's top-25 ML strategy: enter the 25 most confident daily predictions,
skip new entries when the VIX is high, size each position by volatility (ATR), exit on
the model's exit signal.

Copy this file and change it: it uses only the public API of ml4t.backtest.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec
import polars as pl

from ml4t.backtest import BatchStrategy


class MLTop25Strategy(BatchStrategy):
    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        max_positions: int = 25
        position_size_pct: float = 0.04  # at most 4 % of equity per position
        risk_per_trade_pct: float = 0.005  # lose at most 0.5 % of equity at 2 ATR
        atr_multiple: float = 2.0
        vix_threshold: float = 30.0  # no new entries above this
        min_confidence: float = 0.7
        max_rsi: float = 70.0

    def on_timestamp(
        self, timestamp: datetime, batch: pl.DataFrame, context: dict[str, float | None]
    ) -> None:
        p = self.params
        held = sorted(self.holdings())

        # Exits first: the model says so.
        if held:
            exits = batch.filter(pl.col("symbol").is_in(held) & (pl.col("signal_exit") == 1))
            for symbol in exits["symbol"].to_list():
                self.close_position(symbol, reason="signal")
                held.remove(symbol)

        # Regime filter: no new risk when the VIX is high (or unknown).
        vix = context.get("vix")
        if vix is None or vix > p.vix_threshold:
            return

        pending = {o.symbol for o in self.open_orders.values()}
        slots = p.max_positions - len(held) - len(pending - set(held))
        if slots <= 0:
            return
        candidates = (
            batch.filter(
                (pl.col("signal_entry") == 1)
                & (pl.col("confidence") >= p.min_confidence)
                & (pl.col("rsi") <= p.max_rsi)
                & ~pl.col("symbol").is_in(held + sorted(pending))
            )
            .sort(["confidence", "symbol"], descending=[True, False])
            .head(slots)
        )
        equity = self.equity
        for symbol, close, atr in candidates.select("symbol", "close", "atr").iter_rows():
            quantity = self._size(equity, close, atr)
            if quantity > 0:
                self.buy(symbol, quantity, reason="signal")

    def _size(self, equity: float, close: float, atr: float | None) -> float:
        """Shares: the smaller of the position cap and the ATR risk budget."""
        p = self.params
        cap = p.position_size_pct * equity / close
        if atr is not None and atr > 0:
            cap = min(cap, p.risk_per_trade_pct * equity / (p.atr_multiple * atr))
        return float(math.floor(cap)) if math.isfinite(cap) else 0.0
