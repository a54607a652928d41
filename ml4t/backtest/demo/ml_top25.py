"""The proposal's top-25 ML strategy: enter the 25 most confident daily predictions,
skip new entries when the VIX is high, size each position by volatility (ATR), exit on
the model's exit signal.

Written twice: :class:`MLTop25Strategy` as in the proposal (a ``BatchStrategy`` that
filters and sorts the batch each timestamp) and :class:`MLTop25Expr`, the same rule as
polars expressions (an ``ExprStrategy``, evaluated once per chunk of the data); both send
the same orders. An entry the account refuses for buying power (25 positions of 4 % of
equity leave nothing for costs) stops new entries until the next fill frees cash, rather
than being sent again on every bar.

Copy this file and change it: it uses only the public API of ml4t.backtest.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec
import polars as pl

from ml4t.backtest import BatchStrategy, ExprRules, ExprStrategy, OrderFilled, OrderRejected


class Top25Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_positions: int = 25
    position_size_pct: float = 0.04  # at most 4 % of equity per position
    risk_per_trade_pct: float = 0.005  # lose at most 0.5 % of equity at 2 ATR
    atr_multiple: float = 2.0
    vix_threshold: float = 30.0  # no new entries above this
    min_confidence: float = 0.7
    max_rsi: float = 70.0


class MLTop25Strategy(BatchStrategy):
    Params = Top25Params
    cash_short = False  # an entry was refused for buying power and nothing filled since

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

        # Regime filter: no new risk when the VIX is high (or unknown), nor while the
        # account has refused an entry for want of cash.
        vix = context.get("vix")
        if vix is None or vix > p.vix_threshold or self.cash_short:
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

    def on_reject(self, rejection: OrderRejected) -> None:
        if rejection.rule == "buying_power":
            self.cash_short = True

    def on_fill(self, fill: OrderFilled) -> None:
        self.cash_short = False

    def _size(self, equity: float, close: float, atr: float | None) -> float:
        """Shares: the smaller of the position cap and the ATR risk budget."""
        p = self.params
        cap = p.position_size_pct * equity / close
        if atr is not None and atr > 0:
            cap = min(cap, p.risk_per_trade_pct * equity / (p.atr_multiple * atr))
        return float(math.floor(cap)) if math.isfinite(cap) else 0.0


class MLTop25Expr(ExprStrategy):
    """:class:`MLTop25Strategy`'s rule as polars expressions (same parameters, same
    orders): the engine evaluates entry, exit and rank once per chunk of the data."""

    Params = Top25Params

    def rules(self) -> ExprRules:
        p = self.params
        close, atr, equity = pl.col("close"), pl.col("atr"), pl.col("equity")
        cap = p.position_size_pct * equity / close
        risk = p.risk_per_trade_pct * equity / (p.atr_multiple * atr)
        return ExprRules(
            entry=(pl.col("signal_entry") == 1)
            & (pl.col("confidence") >= p.min_confidence)
            & (pl.col("rsi") <= p.max_rsi)
            & (pl.col("vix") <= p.vix_threshold),
            exit=pl.col("signal_exit") == 1,
            rank=pl.col("confidence"),
            top=p.max_positions,
            size=pl.when(atr > 0).then(pl.min_horizontal(cap, risk)).otherwise(cap),
        )
