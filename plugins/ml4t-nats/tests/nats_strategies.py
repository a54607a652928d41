"""The strategy the two-process tests run in the follower (and in the reference run)."""

from __future__ import annotations

import time

import msgspec

from ml4t.backtest import Strategy


class Momentum(Strategy):
    """Buy 10 on an up bar when flat, sell out on a down bar; ``delay`` seconds of
    "model time" per timestamp make a run long enough to restart a server under it."""

    class Params(msgspec.Struct, frozen=True, kw_only=True):
        delay: float = 0.0

    def on_bar(self, bar) -> None:
        if self.params.delay and bar.symbol == "AAA":
            time.sleep(self.params.delay)
        held = self.position(bar.symbol) + self.pending_quantity(bar.symbol)
        if held == 0 and bar.close > bar.open * 1.0005:
            self.buy(bar.symbol, 10, reason="signal")
        elif held > 0 and bar.close < bar.open * 0.9995:
            self.close_position(bar.symbol, reason="signal")
