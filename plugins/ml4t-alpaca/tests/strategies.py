"""Strategies for the stand-in tests: they trade often, so agreement means something."""

from __future__ import annotations

from ml4t.backtest import Strategy


class Momentum(Strategy):
    """Buy 10 on an up bar when flat; sell out on a down bar."""

    def on_bar(self, bar) -> None:
        held = self.position(bar.symbol) + self.pending_quantity(bar.symbol)
        if held == 0 and bar.close > bar.open * 1.0003:
            self.buy(bar.symbol, 10, reason="signal")
        elif held > 0 and bar.close < bar.open * 0.9997:
            self.close_position(bar.symbol, reason="signal")


class BuyOnce(Strategy):
    """Buys ``quantity`` of ``symbol`` on its first bar, then nothing."""

    def __init__(self, name: str, symbol: str = "AAA", quantity: float = 10, **kw) -> None:
        super().__init__(name, **kw)
        self.symbol, self.quantity, self.done = symbol, quantity, False

    def on_bar(self, bar) -> None:
        if not self.done and bar.symbol == self.symbol:
            self.done = True
            self.buy(self.symbol, self.quantity, reason="signal")
