"""Regime switching with context data.

The VIX (market-wide context, joined as of each bar) picks the regime: in calm markets
the strategy follows the model long; when the VIX is above its threshold it goes flat.
The context value at entry and exit lands in every trade record.

    python examples/regime_switching.py [WORKDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import msgspec
import polars as pl

from ml4t.backtest import BacktestEngine, BatchStrategy
from ml4t.backtest.config import load_config
from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset


class RegimeSwitch(BatchStrategy):
    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        vix_calm: float = 20.0
        size: float = 20.0

    def on_timestamp(self, timestamp, batch: pl.DataFrame, context) -> None:
        vix = context.get("vix")
        if vix is None:
            return
        if vix > self.params.vix_calm:  # stressed: go flat
            for symbol in sorted(self.holdings()):
                if self.pending_quantity(symbol) == 0:
                    self.close_position(symbol, reason="risk_halt")
            return
        for symbol, entry, exit_ in batch.select(
            "symbol", "signal_entry", "signal_exit"
        ).iter_rows():
            held = self.position(symbol) + self.pending_quantity(symbol)
            if held == 0 and entry == 1:
                self.buy(symbol, self.params.size, reason="signal")
            elif held > 0 and exit_ == 1:
                self.close_position(symbol, reason="signal")


def run(workdir: Path, n_symbols: int = 10, n_days: int = 20) -> pl.DataFrame:
    data = write_dataset(workdir / "data", SyntheticConfig(n_symbols=n_symbols, n_days=n_days))
    config = load_config(
        {
            "backtest": {"initial_capital": 200_000},
            "data": {
                "asset": {"path": data.asset},
                "signal_data": {
                    "path": data.signals,
                    "columns": ["signal_entry", "signal_exit"],
                    "available_lag": "16h",
                },
                "context": {"path": data.context, "fields": ["vix"]},
            },
            "reporting": {"output_dir": str(workdir / "results"), "context": ["vix"]},
        }
    )
    results = BacktestEngine(config, strategy=RegimeSwitch()).run()
    print(results)
    return results.trades


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ml4t-"))
    trades = run(root)
    print(trades.select("symbol", "entry_vix", "exit_vix", "exit_reason", "pnl_net"))
