"""From your own data to a tear sheet: prepare in polars, run once, read the results.

A researcher's data rarely arrives as one file: minute prices from a vendor, indicators
computed from them, and a model's daily predictions published the morning after the close
they are labelled with. Here the synthetic generator stands in for the vendor and the
model; everything after that is what you would write yourself:

1. prices, indicators (computed with polars expressions, per symbol, from the bars
   themselves) and predictions (joined **as of the time they became available**, never
   forward), checked for look-ahead;
2. one run: ``BacktestEngine(config, asset=frame, context=frame, strategy=...)``, the
   frames passed as they are, no files needed;
3. the tear sheet: headline metrics, P&L by symbol and exit reason, the HTML report.

    python examples/from_your_data.py [WORKDIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from ml4t.backtest import BacktestEngine, BacktestResults, BatchStrategy
from ml4t.backtest.config import load_config
from ml4t.backtest.data import AsofSource, align, check_lookahead
from ml4t.backtest.data.synthetic import SyntheticConfig, make_frames

HEADLINE = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "num_trades",
    "total_costs",
)


def vendor_data(n_symbols: int, n_days: int, seed: int = 11) -> dict[str, pl.DataFrame]:
    """What arrives from outside: minute OHLCV, daily predictions, a market-wide VIX."""
    frames = make_frames(SyntheticConfig(n_symbols=n_symbols, n_days=n_days, seed=seed))
    return {
        "prices": frames.asset.select(
            "timestamp", "symbol", "open", "high", "low", "close", "volume"
        ),
        # one row per (session close, symbol): the model's score for the next session
        "predictions": frames.signals.select("timestamp", "symbol", score="confidence"),
        "context": frames.context.select("timestamp", "vix"),
    }


def add_indicators(prices: pl.DataFrame) -> pl.DataFrame:
    """Per-symbol indicators from the bars themselves: each value uses bars up to its own,
    so it is known at that bar's time (no lag needed when joining)."""
    close = pl.col("close")
    return (
        prices.sort("symbol", "timestamp")
        .with_columns(
            momentum=(close / close.shift(60) - 1.0).over("symbol"),
            volatility=close.pct_change().rolling_std(60).over("symbol"),
        )
        .sort("timestamp", "symbol")
    )


def asset_frame(prices: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """Prices with indicators, plus each symbol's latest prediction as of each bar:
    predictions labelled at a close are published 16 hours later."""
    asset = align(
        add_indicators(prices),
        AsofSource(predictions, columns=["score"], available_lag="16h", stamp="score_known_at"),
    )
    check_lookahead(asset, available="score_known_at")  # raises if a row peeks ahead
    return asset.drop("score_known_at")


class TopScores(BatchStrategy):
    """Each morning, hold the ``top_n`` best-scored symbols with positive momentum, equal
    weight, unless the VIX is above ``max_vix``."""

    class Params(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        top_n: int = 3
        gross: float = 0.9
        max_vix: float = 30.0

    def on_start(self) -> None:
        self.due = False
        self.schedule("morning", at="session_open")

    def on_timer(self, event: Any) -> None:
        self.due = True  # act on the session's first bar

    def on_timestamp(self, timestamp: Any, batch: pl.DataFrame, context: Any) -> None:
        if not self.due:
            return
        self.due = False
        p = self.params
        vix = context.get("vix")
        if vix is None or vix > p.max_vix:
            self.rebalance({})  # stressed: flat
            return
        best = (
            batch.filter(pl.col("score").is_not_null() & (pl.col("momentum") > 0))
            .sort(["score", "symbol"], descending=[True, False])
            .head(p.top_n)["symbol"]
            .to_list()
        )
        self.rebalance({symbol: p.gross / len(best) for symbol in best} if best else {})


def run(workdir: Path, n_symbols: int = 8, n_days: int = 10) -> BacktestResults:
    data = vendor_data(n_symbols, n_days)
    asset = asset_frame(data["prices"], data["predictions"])
    config = load_config(
        {
            "backtest": {"initial_capital": 250_000, "calendar": "NYSE"},
            "data": {
                "asset": {"signals": ["score"], "indicators": ["momentum", "volatility"]},
                "context": {"fields": ["vix"]},
            },
            "execution": {
                "slippage": {"model": "fixed_bps", "params": {"bps": 1.0}},
                "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            },
            "reporting": {
                "output_dir": str(workdir / "results"),
                "signals": ["score", "momentum"],
                "context": ["vix"],
                "html_report": True,
            },
        }
    )
    engine = BacktestEngine(config, asset=asset, context=data["context"], strategy=TopScores())
    return engine.run()


def tear_sheet(results: BacktestResults) -> dict[str, pl.DataFrame]:
    """The figures a first look needs, as tables."""
    metrics = pl.DataFrame(
        {"metric": list(HEADLINE), "value": [float(results.metrics[k]) for k in HEADLINE]}
    )
    trades = results.trades
    by_symbol = (
        trades.group_by("symbol")
        .agg(
            trades=pl.len(),
            pnl_net=pl.col("pnl_net").sum(),
            win_rate=(pl.col("pnl_net") > 0).mean(),
        )
        .sort("pnl_net", descending=True)
    )
    by_exit = trades.group_by("exit_reason").agg(trades=pl.len(), pnl_net=pl.col("pnl_net").sum())
    return {
        "metrics": metrics,
        "by_symbol": by_symbol,
        "by_exit_reason": by_exit.sort("exit_reason"),
    }


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ml4t-"))
    results = run(root)
    print(results)
    for name, table in tear_sheet(results).items():
        print(name, table, sep="\n")
    assert results.output_dir is not None
    print("report:", results.output_dir / "report.html")
