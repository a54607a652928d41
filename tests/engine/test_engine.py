"""The engine end to end: API parity, no look-ahead, determinism, failures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import ComponentError, OrderFilled, SubmitOrder
from ml4t.backtest.config import load_config
from ml4t.backtest.data.synthetic import SyntheticConfig, make_frames
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.runtime import RunOutcome
from ml4t.backtest.testing import Capture
from ml4t.backtest.topics import FILLS, ORDER_REQUESTS

from .conftest import base_config
from .strategies import Explodes, SignalBatch, SignalPerSymbol


def _run(ds, out, strategy, **sections):
    config = load_config(base_config(ds, out, **sections))
    return BacktestEngine(config, strategy=strategy).run()


def test_same_logic_in_both_apis_gives_identical_trades(dataset) -> None:
    per_symbol = _run(dataset, None, SignalPerSymbol("strategy"))
    batch = _run(dataset, None, SignalBatch("strategy"))
    assert per_symbol.trades.height >= 8, "the scenario must trade"
    assert per_symbol.trades.n_unique("symbol") > 3
    assert per_symbol.trades.equals(batch.trades)
    assert per_symbol.fills.equals(batch.fills)
    assert per_symbol.portfolio.equals(batch.portfolio)


def test_two_runs_write_byte_identical_trades_and_portfolio(dataset, tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        _run(dataset, out, SignalBatch("strategy"))
        digests.append(
            {
                name: hashlib.sha256((out / name).read_bytes()).hexdigest()
                for name in ("trades.parquet", "portfolio.parquet", "fills.parquet")
            }
        )
    assert digests[0] == digests[1]


def _perturb_after(frames, cut: pl.Datetime, lag_ns: int):
    """Every value known after ``cut`` replaced by garbage; earlier rows untouched."""

    def scramble(df: pl.DataFrame, cols: list[str], known: pl.Expr) -> pl.DataFrame:
        return df.with_columns(
            [
                pl.when(known > cut).then(pl.col(c) * 1.7 + 3.0).otherwise(pl.col(c)).alias(c)
                for c in cols
            ]
        )

    asset = frames.asset
    price_cols = ["open", "high", "low", "close"]
    asset = scramble(asset, price_cols, pl.col("timestamp"))
    asset = asset.with_columns(
        pl.when(pl.col("timestamp") > cut).then(pl.col("volume") * 3).otherwise(pl.col("volume")),
        pl.when(pl.col("timestamp") > cut).then(100 - pl.col("rsi")).otherwise(pl.col("rsi")),
    )
    signals = frames.signals.with_columns(
        pl.when(pl.col("timestamp") + pl.duration(nanoseconds=lag_ns) > cut)
        .then(1 - pl.col("signal_entry"))
        .otherwise(pl.col("signal_entry"))
        .alias("signal_entry")
    )
    context = scramble(frames.context, ["vix", "spy"], pl.col("timestamp"))
    return asset, signals, context


def test_changing_data_after_t_changes_nothing_done_up_to_t() -> None:
    frames = make_frames(SyntheticConfig(n_symbols=8, n_days=6, seed=11))
    timestamps = frames.asset["timestamp"].unique().sort()
    cut = timestamps[len(timestamps) * 3 // 5]
    cut_ns = int(cut.timestamp() * 1e9) if hasattr(cut, "timestamp") else int(cut)
    lag = 16 * 3600 * 10**9
    variants = [(frames.asset, frames.signals, frames.context), _perturb_after(frames, cut, lag)]
    seen = []
    for asset, signals, context in variants:
        config = load_config(
            {
                "data": {
                    "asset": {"indicators": ["rsi", "atr", "macd"]},
                    "signal_data": {
                        "columns": ["signal_entry", "signal_exit", "confidence"],
                        "available_lag": "16h",
                    },
                    "context": {"fields": ["vix", "spy"]},
                },
                "reporting": {"output_dir": None},
            }
        )
        capture = Capture(ORDER_REQUESTS, FILLS, name="witness")
        engine = BacktestEngine(
            config,
            strategy=SignalBatch("strategy"),
            asset=asset,
            signal_data=signals,
            context=context,
        )
        engine.add(capture)
        engine.run()
        seen.append([e for e in capture.events if e.ts_event <= cut_ns])
    assert any(isinstance(e, SubmitOrder) for e in seen[0])
    assert any(isinstance(e, OrderFilled) for e in seen[0])
    assert seen[0] == seen[1]


def test_a_strategy_that_raises_stops_the_run_and_flushes_incomplete_results(
    dataset, tmp_path: Path
) -> None:
    config = load_config(base_config(dataset, tmp_path / "out"))
    engine = BacktestEngine(config, strategy=Explodes("strategy"))
    with pytest.raises(ComponentError) as info:
        engine.run()
    message = str(info.value)
    assert message.startswith("component 'strategy' failed handling MarketBatch at 2023-01-")
    assert "StrategyError: on_bar(AAC) raised ValueError: model returned NaN" in message
    cause = info.value.__cause__
    assert cause is not None and isinstance(cause.__cause__, ValueError)
    assert engine.runtime is not None and engine.runtime.outcome is RunOutcome.FAILED
    out = tmp_path / "out"
    manifest = (out / "manifest.json").read_text()
    assert '"complete": false' in manifest
    fills = pl.read_parquet(out / "fills.parquet")
    assert fills.height >= 1  # what happened before the failure is kept
    assert not list(out.glob("*.tmp*"))


def test_custom_graph_two_strategies_share_one_broker_and_a_listener_hears_fills(
    dataset,
) -> None:
    from ml4t.backtest import Component, on

    class FirstHalf(SignalBatch):
        def on_timestamp(self, timestamp, batch, context) -> None:
            super().on_timestamp(timestamp, batch.head(batch.height // 2), context)

    class SecondHalf(SignalBatch):
        def on_timestamp(self, timestamp, batch, context) -> None:
            super().on_timestamp(timestamp, batch.tail(batch.height - batch.height // 2), context)

    class FillCounter(Component):
        def __init__(self) -> None:
            super().__init__("fill_counter")
            self.by_strategy: dict[str, int] = {}

        @on(FILLS)
        def count(self, fill: OrderFilled) -> None:
            self.by_strategy[fill.strategy_id] = self.by_strategy.get(fill.strategy_id, 0) + 1

    config = load_config(base_config(dataset, None))
    engine = BacktestEngine(config, strategy=[FirstHalf("first"), SecondHalf("second")])
    counter = engine.add(FillCounter())
    results = engine.run()
    by_strategy = results.trades.group_by("strategy_id").len().sort("strategy_id")
    assert by_strategy["strategy_id"].to_list() == ["first", "second"]
    assert counter.by_strategy == {
        "first": results.fills.filter(pl.col("strategy_id") == "first").height,
        "second": results.fills.filter(pl.col("strategy_id") == "second").height,
    }
    first_symbols = set(results.trades.filter(pl.col("strategy_id") == "first")["symbol"])
    second_symbols = set(results.trades.filter(pl.col("strategy_id") == "second")["symbol"])
    assert first_symbols and second_symbols and not first_symbols & second_symbols
