"""Strategies for the paper and adapter tests: they trade often, so parity means something."""

from __future__ import annotations

from ml4t.backtest import Strategy


class Momentum(Strategy):
    """Buy 10 on an up bar when flat; sell out on a down bar. Dozens of trades a day."""

    def on_bar(self, bar) -> None:
        held = self.position(bar.symbol) + self.pending_quantity(bar.symbol)
        if held == 0 and bar.close > bar.open * 1.0005:
            self.buy(bar.symbol, 10, reason="signal")
        elif held > 0 and bar.close < bar.open * 0.9995:
            self.close_position(bar.symbol, reason="signal")


class RestingLimit(Momentum):
    """Momentum plus one buy limit far below the market that never fills (stays open)."""

    def on_bar(self, bar) -> None:
        if bar.symbol == "AAA" and not getattr(self, "_placed", False):
            self._placed = True
            self.buy("AAA", 1, limit=bar.close * 0.5, reason="resting")
        super().on_bar(bar)


class HoldOvernight(Strategy):
    """Buys 10 AAA on its first bar and holds them; rests a buy limit for 1 AAB at half
    its first close, which never fills (an open order to cancel at a stop)."""

    def on_bar(self, bar) -> None:
        if self.position(bar.symbol) or self.pending_quantity(bar.symbol):
            return
        if bar.symbol == "AAA":
            self.buy("AAA", 10, reason="signal")
        elif bar.symbol == "AAB" and not getattr(self, "_rested", False):
            self._rested = True
            self.buy("AAB", 1, limit=bar.close * 0.5, reason="resting")
