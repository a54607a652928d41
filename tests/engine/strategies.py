"""The same signal logic written in both strategy APIs (for the parity tests)."""

from __future__ import annotations

import polars as pl

from ml4t.backtest import BatchStrategy, Strategy

SIZE = 10.0


class SignalPerSymbol(Strategy):
    """Enter on signal_entry with confidence > 0.5 when flat; exit on signal_exit."""

    def on_bar(self, bar) -> None:
        held = self.position(bar.symbol) + self.pending_quantity(bar.symbol)
        if held == 0 and bar.signal_entry == 1 and bar.confidence > 0.5:
            self.buy(bar.symbol, SIZE, reason="signal")
        elif held > 0 and bar.signal_exit == 1:
            self.close_position(bar.symbol, reason="signal")


class SignalBatch(BatchStrategy):
    """The same rule over the whole batch at once."""

    def on_timestamp(self, timestamp, batch: pl.DataFrame, context) -> None:
        rows = batch.select("symbol", "signal_entry", "signal_exit", "confidence")
        for symbol, entry, exit_, confidence in rows.iter_rows():
            held = self.position(symbol) + self.pending_quantity(symbol)
            if held == 0 and entry == 1 and confidence > 0.5:
                self.buy(symbol, SIZE, reason="signal")
            elif held > 0 and exit_ == 1:
                self.close_position(symbol, reason="signal")


class Explodes(Strategy):
    """Raises on the first bar of one symbol after some trading."""

    def on_bar(self, bar) -> None:
        if self.now_ns() > self.context.clock.now_ns() - 1 and bar.symbol == "AAC":
            if self._seen >= 300:
                raise ValueError("model returned NaN")
            self._seen += 1
        if bar.symbol == "AAA" and self.position("AAA") == 0 and not self.open_orders:
            self.buy("AAA", 5)

    _seen = 0
