"""ExprStrategy, MarketBatch.numpy and the views strategies get: same orders as the rule
written by hand, per chunk as per batch, and nothing after t changes what was done at t."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestEngine,
    BatchFrame,
    BatchStrategy,
    ChunkColumns,
    Codec,
    ConfigError,
    ExprRules,
    ExprStrategy,
    MarketBatch,
    PortfolioSnapshot,
    Strategy,
    SubmitOrder,
    UnknownNameError,
)
from ml4t.backtest.config import load_config
from ml4t.backtest.data.synthetic import SyntheticConfig, make_frames
from ml4t.backtest.demo.ml_top25 import MLTop25Expr, MLTop25Strategy
from ml4t.backtest.testing import Capture, Script, run_components
from ml4t.backtest.topics import MARKET, ORDER_REQUESTS, PORTFOLIO

SYMBOLS = [f"S{i:02d}" for i in range(12)]
UNIVERSE = pl.Enum(SYMBOLS)
T0 = 1_704_205_800_000_000_000
MIN = 60_000_000_000


# ------------------------------------------------------------------ a chunked producer


def market_frame(n_ts: int, seed: int) -> pl.DataFrame:
    """Every symbol at each of ``n_ts`` minutes: a chunk's rows, in (time, symbol) order."""
    rng = np.random.default_rng(seed)
    rows = n_ts * len(SYMBOLS)
    close = 50 + rng.random(rows) * 10
    return pl.DataFrame(
        {
            "symbol": pl.Series(SYMBOLS * n_ts, dtype=UNIVERSE),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": np.full(rows, 1e6),
            "score": rng.normal(size=rows),
            "exit_signal": rng.integers(0, 2, rows).astype(np.float64),
        }
    )


def batches(frame: pl.DataFrame, *, bound: bool) -> list[MarketBatch]:
    """One batch per minute, bound to one chunk of the whole frame (or not)."""
    n = len(SYMBOLS)
    n_ts = frame.height // n
    offsets, lengths = [i * n for i in range(n_ts)], [n] * n_ts
    contexts: list[dict[str, float | None]] = [{"vix": 10.0 + i % 30} for i in range(n_ts)]
    chunk = ChunkColumns(frame, offsets, lengths, contexts)
    out = []
    for i in range(n_ts):
        batch = MarketBatch(
            ts_event=T0 + i * MIN, frame=frame.slice(offsets[i], n), context=contexts[i]
        )
        if bound:
            batch.bind_chunk(chunk, i)
        out.append(batch)
    return out


def orders_sent(strategy: Strategy | BatchStrategy | ExprStrategy, steps: list[MarketBatch]):
    snapshot = PortfolioSnapshot(
        ts_event=T0,
        equity=1e6,
        cash=1e6,
        positions_value=0.0,
        gross_exposure=0.0,
        net_exposure=0.0,
        num_positions=0,
    )
    script = Script([(T0, PORTFOLIO, snapshot), *((b.ts_event, MARKET, b) for b in steps)])
    capture = Capture(ORDER_REQUESTS, name="witness")
    run_components(script, strategy, capture, strict=False)  # in-process: bindings kept
    return [
        (e.ts_event, e.symbol, e.side, e.quantity)
        for e in capture.events
        if isinstance(e, SubmitOrder)
    ]


def cross_sectional() -> ExprStrategy:
    """Aggregations over one timestamp's rows: a rank, a mean, even a shift."""
    score = pl.col("score")
    return ExprStrategy(
        "s",
        entry=(score.rank(descending=True) <= 3) & (score > score.mean()) & (pl.col("vix") < 35),
        exit=pl.col("exit_signal") == 1,
        rank=score - score.shift(1).fill_null(0.0) * 0.0,
        top=4,
        size=pl.col("equity") * 0.01 / pl.col("close"),
    )


def test_per_chunk_and_per_batch_evaluation_send_the_same_orders() -> None:
    frame = market_frame(60, seed=3)
    per_chunk = orders_sent(cross_sectional(), batches(frame, bound=True))
    per_batch = orders_sent(cross_sectional(), batches(frame, bound=False))
    assert len(per_chunk) >= 4, "the scenario must trade"
    assert per_chunk == per_batch


def test_changing_rows_after_t_in_the_same_chunk_changes_nothing_done_up_to_t() -> None:
    frame = market_frame(60, seed=5)
    cut = 30 * len(SYMBOLS)  # the rows of minutes 30.. are replaced by garbage
    later = pl.int_range(pl.len()) >= cut
    scrambled = frame.with_columns(
        pl.when(later).then(-pl.col("score") * 7 + 1).otherwise(pl.col("score")).alias("score"),
        pl.when(later).then(1 - pl.col("exit_signal")).otherwise(pl.col("exit_signal")),
        pl.when(later).then(pl.col("close") * 3).otherwise(pl.col("close")).alias("close"),
    )
    t_cut = T0 + 29 * MIN
    seen = []
    for data in (frame, scrambled):
        sent = orders_sent(cross_sectional(), batches(data, bound=True))
        seen.append([o for o in sent if o[0] <= t_cut])
    assert len(seen[0]) >= 2
    assert seen[0] == seen[1]


class HandWritten(BatchStrategy):
    """cross_sectional()'s rule written out with a filter and a sort."""

    def on_timestamp(self, timestamp, batch, context) -> None:
        for symbol in batch.filter(pl.col("exit_signal") == 1)["symbol"].to_list():
            if self.position(symbol) != 0:
                self.close_position(symbol)
        working = {o.symbol for o in self.open_orders.values()}
        busy = set(self.holdings()) | working
        slots = 4 - len(busy)
        if slots <= 0 or not context["vix"] < 35:
            return
        score = batch["score"]
        picks = (
            batch.with_columns(top3=score.rank(descending=True) <= 3, above=score > score.mean())
            .filter(pl.col("top3") & pl.col("above") & ~pl.col("symbol").is_in(sorted(busy)))
            .sort(["score", "symbol"], descending=[True, False])
            .head(slots)
        )
        for symbol, close in picks.select("symbol", "close").iter_rows():
            quantity = math.floor(self.equity * 0.01 / close)
            if quantity > 0:
                self.buy(symbol, quantity)


def test_expressions_send_the_orders_of_the_rule_written_by_hand() -> None:
    frame = market_frame(60, seed=3)
    assert orders_sent(cross_sectional(), batches(frame, bound=True)) == orders_sent(
        HandWritten("s"), batches(frame, bound=False)
    )


# ------------------------------------------------------------------ whole runs


def run(strategy, frames, **sections):
    config = {
        "backtest": {"initial_capital": 100_000, "calendar": "NYSE"},
        "data": {
            "asset": {"indicators": ["rsi", "atr", "macd"]},
            "signal_data": {
                "columns": ["signal_entry", "signal_exit", "confidence"],
                "available_lag": "16h",
            },
            "context": {"fields": ["vix", "spy"]},
        },
        "execution": {
            "commission": {"model": "per_share", "params": {"cost_per_share": 0.005}},
            "slippage": {"model": "fixed_bps", "params": {"bps": 2.0}},
        },
        "reporting": {"output_dir": None},
        **sections,
    }
    engine = BacktestEngine(
        load_config(config),
        strategy=strategy,
        asset=frames.asset,
        signal_data=frames.signals,
        context=frames.context,
    )
    return engine.run()


@pytest.fixture(scope="module")
def frames():
    return make_frames(SyntheticConfig(n_symbols=12, n_days=15, seed=21))


class SignalOnBar(Strategy):
    def on_bar(self, bar) -> None:
        symbol = bar.symbol
        if self.position(symbol) == 0 and not self.pending_quantity(symbol):
            if bar.signal_entry == 1 and bar.confidence > 0.5 and bar.vix < 40:
                self.buy(symbol, 10, reason="signal")
        elif self.position(symbol) != 0 and bar.signal_exit == 1:
            self.close_position(symbol)


def test_signal_rule_as_expressions_trades_as_the_on_bar_strategy(frames) -> None:
    expr = ExprStrategy(
        "strategy",
        entry=(pl.col("signal_entry") == 1) & (pl.col("confidence") > 0.5) & (pl.col("vix") < 40),
        exit=pl.col("signal_exit") == 1,
        size=10,
    )
    a = run(expr, frames)
    b = run(SignalOnBar("strategy"), frames)
    assert a.trades.height >= 8, "the scenario must trade"
    assert a.trades.equals(b.trades)
    assert a.fills.equals(b.fills)


def test_top25_as_expressions_trades_as_the_demo_batch_strategy(frames) -> None:
    # few slots and small cash, so entries are ranked, slots run out and the account
    # refuses entries for buying power (the rule both strategies follow then)
    params = {
        "max_positions": 4,
        "position_size_pct": 0.3,
        "risk_per_trade_pct": 1.0,
        "min_confidence": 0.5,
        "max_rsi": 100.0,
    }
    risk = {"risk": {"account": "cash"}}
    demo = run(MLTop25Strategy("strategy", params=params), frames, **risk)
    expr = run(MLTop25Expr("strategy", params=params), frames, **risk)
    assert demo.trades.height >= 8, "the scenario must trade"
    refused = demo.orders.filter(pl.col("status") == "rejected")
    assert (refused["reject_rule"] == "buying_power").any(), "the scenario must refuse an entry"
    assert expr.trades.equals(demo.trades)
    assert expr.orders.equals(demo.orders)


# ------------------------------------------------------------------ rules and errors


def test_bad_rules_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="entry must be a polars expression"):
        ExprStrategy(entry="signal > 0")
    with pytest.raises(ConfigError, match="top must be a positive int"):
        ExprStrategy(entry=pl.col("x") > 0, top=0)
    with pytest.raises(ConfigError, match="size must be positive"):
        ExprStrategy(entry=pl.col("x") > 0, size=-5)
    with pytest.raises(ConfigError, match="needs its rules"):
        ExprStrategy()
    assert isinstance(ExprRules(entry=pl.col("x") > 0).entry, pl.Expr)


def test_an_expression_over_a_missing_column_names_the_columns() -> None:
    strategy = ExprStrategy("s", entry=pl.col("sginal") > 0)
    with pytest.raises(Exception, match=r"cannot be evaluated on the batch \(columns \["):
        orders_sent(strategy, batches(market_frame(2, seed=1), bound=False))


# ------------------------------------------------------------------ the views


def test_batch_numpy_is_a_read_only_view_of_the_bound_chunk() -> None:
    frame = market_frame(5, seed=2)
    bound, loose = batches(frame, bound=True), batches(frame, bound=False)
    for b, u in zip(bound, loose, strict=True):
        assert np.array_equal(b.numpy("score"), u.numpy("score"))
        assert np.array_equal(b.numpy("score"), b.frame["score"].to_numpy())
    view = bound[3].numpy("close")
    chunk_column = bound[3].chunk()[0].array("close")
    assert np.shares_memory(view, chunk_column)
    assert not view.flags.writeable
    with pytest.raises(UnknownNameError, match="no column 'nope'"):
        bound[0].numpy("nope")


def test_a_batch_that_crossed_the_wire_reads_its_own_frame() -> None:
    batch = batches(market_frame(3, seed=4), bound=True)[1]
    codec = Codec()
    back = codec.decode(codec.encode(batch))
    assert batch.chunk() is not None and back.chunk() is None
    assert back == batch
    assert np.array_equal(back.numpy("score"), batch.numpy("score"))


def test_binding_a_batch_to_a_timestamp_of_another_size_is_an_error() -> None:
    frame = market_frame(3, seed=4)
    chunk = ChunkColumns(frame, [0, 12, 24], [12, 12, 12])
    batch = MarketBatch(ts_event=T0, frame=frame.slice(0, 5))
    with pytest.raises(Exception, match="batch of 5 rows bound to chunk timestamp 1 of 12"):
        batch.bind_chunk(chunk, 1)


def test_the_batch_strategy_gets_a_frame_with_numpy_views() -> None:
    seen = []

    class Reads(BatchStrategy):
        def on_timestamp(self, timestamp, batch, context) -> None:
            assert isinstance(batch, pl.DataFrame) and isinstance(batch, BatchFrame)
            top = batch.filter(pl.col("score") > 0)
            seen.append((batch.numpy("score").copy(), top.height, top["score"].to_numpy()))

    frame = market_frame(4, seed=6)
    orders_sent(Reads("s"), batches(frame, bound=True))
    assert len(seen) == 4
    for i, (scores, n_positive, positive) in enumerate(seen):
        expected = frame["score"].to_numpy()[12 * i : 12 * (i + 1)]
        assert np.array_equal(scores, expected)
        assert n_positive == int((expected > 0).sum())
        assert np.array_equal(positive, expected[expected > 0])


def test_on_bar_reads_columns_context_and_shadowed_names() -> None:
    frame = market_frame(2, seed=7).with_columns(pl.lit(1.5).alias("context_x"))
    rows = []

    class Reads(Strategy):
        def on_bar(self, bar) -> None:
            rows.append((bar.symbol, bar.close, bar.score, bar["score"], bar.vix, bar.context_x))

    orders_sent(Reads("s"), batches(frame, bound=True))
    assert len(rows) == 24
    assert [r[0] for r in rows[:12]] == SYMBOLS
    first = frame.row(13, named=True)
    assert rows[13] == ("S01", first["close"], first["score"], first["score"], 11.0, 1.5)
