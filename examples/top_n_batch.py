"""Multi-asset top-N strategy with the batch API.

Every timestamp, hold the N symbols the model is most confident about (equal weight),
rebalancing once a day at the session open through `rebalance(weights)`.

    python examples/top_n_batch.py [WORKDIR]
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


class TopN(BatchStrategy):
    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        top_n: int = 5
        gross: float = 0.9  # fraction of equity invested

    def on_start(self) -> None:
        self.rebalance_due = False
        self.schedule("daily", at="session_open")

    def on_timer(self, event) -> None:
        self.rebalance_due = True  # act on the first bar of the session

    def on_timestamp(self, timestamp, batch: pl.DataFrame, context) -> None:
        if not self.rebalance_due:
            return
        self.rebalance_due = False
        best = (
            batch.filter(pl.col("signal_entry") == 1)
            .sort(["confidence", "symbol"], descending=[True, False])
            .head(self.params.top_n)["symbol"]
            .to_list()
        )
        if best:
            weight = self.params.gross / len(best)
            self.rebalance({symbol: weight for symbol in best})


def run(workdir: Path, n_symbols: int = 30, n_days: int = 20) -> pl.DataFrame:
    data = write_dataset(workdir / "data", SyntheticConfig(n_symbols=n_symbols, n_days=n_days))
    config = load_config(
        {
            "backtest": {"initial_capital": 1_000_000, "calendar": "NYSE"},
            "data": {
                "asset": {"path": data.asset},
                "signal_data": {
                    "path": data.signals,
                    "columns": ["signal_entry", "confidence"],
                    "available_lag": "16h",
                },
            },
            "execution": {
                "slippage": {"model": "fixed_bps", "params": {"bps": 1.0}},
                "commission": {"model": "percent", "params": {"rate": 0.0005}},
            },
            "reporting": {"output_dir": str(workdir / "results"), "portfolio_frequency": "daily"},
        }
    )
    results = BacktestEngine(config, strategy=TopN(params={"top_n": 5})).run()
    print(results)
    return results.portfolio


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ml4t-"))
    print(run(root).select("timestamp", "equity", "num_positions", "gross_leverage"))
