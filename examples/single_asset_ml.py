"""Single-asset ML strategy with the per-symbol API.

One stock, daily model predictions on minute bars: buy when the model is confident and
RSI is not stretched, with a bracket (stop-loss 2 ATR below, take-profit 3 ATR above),
and leave on the model's exit signal.

    python examples/single_asset_ml.py [WORKDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import msgspec
import polars as pl

from ml4t.backtest import BacktestEngine, Strategy
from ml4t.backtest.config import load_config
from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset


class SingleAssetML(Strategy):
    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        symbol: str = "AAA"
        min_confidence: float = 0.6
        max_rsi: float = 65.0
        stop_atr: float = 2.0
        target_atr: float = 3.0
        fraction: float = 0.5  # of equity per entry

    def on_bar(self, bar) -> None:
        p = self.params
        if bar.symbol != p.symbol:
            return
        held = self.position(bar.symbol) + self.pending_quantity(bar.symbol)
        if held == 0 and bar.signal_entry == 1 and bar.confidence >= p.min_confidence:
            if bar.rsi is not None and bar.rsi <= p.max_rsi and bar.atr:
                quantity = int(p.fraction * self.equity / bar.close)
                if quantity > 0:
                    self.buy(
                        bar.symbol,
                        quantity,
                        stop_loss=bar.close - p.stop_atr * bar.atr,
                        take_profit=bar.close + p.target_atr * bar.atr,
                        reason="signal",
                    )
        elif self.position(bar.symbol) > 0 and bar.signal_exit == 1 and not self.open_orders:
            self.close_position(bar.symbol, reason="signal")


def run(workdir: Path, n_days: int = 20) -> pl.DataFrame:
    data = write_dataset(workdir / "data", SyntheticConfig(n_symbols=1, n_days=n_days, seed=3))
    config = load_config(
        {
            "backtest": {"initial_capital": 50_000, "calendar": "NYSE"},
            "data": {
                "asset": {"path": data.asset, "indicators": ["rsi", "atr"]},
                "signal_data": {
                    "path": data.signals,
                    "columns": ["signal_entry", "signal_exit", "confidence"],
                    "available_lag": "16h",
                },
            },
            "execution": {
                "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}}
            },
            "reporting": {"output_dir": str(workdir / "results")},
        }
    )
    results = BacktestEngine(config, strategy=SingleAssetML()).run()
    print(results)
    return results.trades


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ml4t-"))
    trades = run(root)
    print(trades.select("symbol", "entry_timestamp", "exit_timestamp", "exit_reason", "pnl_net"))
