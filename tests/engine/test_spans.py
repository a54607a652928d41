"""Quiet spans (``ml4t.backtest._span``) change nothing but the speed.

Every world is run twice through the whole engine, once with the feed's
``fast_forward`` (quiet runs of timestamps published as one span) and once without it
(every batch on its own), and every table, metric and count must come out equal to the
bit. The random worlds have ragged rows, signals changing at random times, market,
limit, stop, bracket and DAY orders, shorts, costs, every fill timing and every
portfolio frequency; fixed worlds add corporate actions, a point-in-time universe and
the subscribers that must turn spans off (a journal, a kill switch, a market handler of
the strategy's own, a role subclass overriding a handler).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestEngine, BatchStrategy, ExprStrategy, on
from ml4t.backtest._span import MarketSpan
from ml4t.backtest.bus import Phase
from ml4t.backtest.config import load_config
from ml4t.backtest.errors import ComponentError
from ml4t.backtest.events import ChunkColumns
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.record.config import TABLES as RECORDED
from ml4t.backtest.strategy import StrategyBase
from ml4t.backtest.topics import MARKET

START = datetime(2024, 1, 2, 14, 31, tzinfo=UTC)
TABLES = tuple(t for t in RECORDED if t != "benchmark_returns")  # no benchmark here


class OnSignal(BatchStrategy):
    """Enters on ``sig == 1`` (and, with ``shorts``, short on ``-1``) and exits on the
    opposite signal, with the order kind of the world; asleep in between."""

    wake = "signal"

    def __init__(self, kind: str, shorts: bool, name: str = "strategy") -> None:
        super().__init__(name)
        self.kind = kind
        self.shorts = shorts

    def on_timestamp(self, timestamp, batch, context) -> None:
        held = self.batch_positions(batch)
        sig = batch.numpy("sig")
        close = batch.numpy("close")
        symbols = batch.get_column("symbol").to_list()
        for row in np.flatnonzero(held != 0).tolist():
            if sig[row] == -np.sign(held[row]):
                self.close_position(symbols[row])
        for row in np.flatnonzero((held == 0) & (sig != 0)).tolist():
            if sig[row] < 0 and not self.shorts:
                continue
            self._enter(symbols[row], float(sig[row]), float(close[row]))

    def _enter(self, symbol: str, sign: float, close: float) -> None:
        order = self.buy if sign > 0 else self.sell
        kind = self.kind
        if kind == "market":
            order(symbol, 10)
        elif kind == "limit":
            order(symbol, 10, limit=close * (1 - 0.002 * sign))
        elif kind == "day_limit":
            order(symbol, 10, limit=close * (1 - 0.001 * sign), tif="DAY")
        elif kind == "stop":
            order(symbol, 10, stop=close * (1 + 0.001 * sign))
        else:  # bracket
            order(
                symbol,
                10,
                stop_loss=close * (1 - 0.01 * sign),
                take_profit=close * (1 + 0.01 * sign),
            )


class Listening(OnSignal):
    """The same strategy with a market handler of its own: spans must stay off."""

    def __init__(self, kind: str, shorts: bool) -> None:
        super().__init__(kind, shorts)
        self.heard = 0

    @on(MARKET, phase=Phase.RECORD)
    def count_bars(self, batch) -> None:
        self.heard += 1


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    n_symbols = draw(st.integers(1, 4))
    steps = draw(st.integers(8, 90))
    day_break = draw(st.integers(1, steps))  # the second day starts here
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    present = rng.random((steps, n_symbols)) < draw(st.sampled_from([1.0, 0.9, 0.6]))
    changes = draw(st.sampled_from([0.02, 0.08, 0.3]))
    rows: list[dict[str, Any]] = []
    for s in range(n_symbols):
        price = 50.0 + 10 * s
        sig = 0.0
        for t in range(steps):
            move = rng.normal(0, 0.004)
            open_ = price
            price = max(1.0, price * (1 + move))
            if rng.random() < changes:
                sig = float(rng.choice([-1.0, 0.0, 1.0]))
            if not present[t, s]:
                continue
            ts = START + timedelta(minutes=t, days=int(t >= day_break))
            rows.append(
                {
                    "timestamp": ts,
                    "symbol": f"S{s}",
                    "open": open_,
                    "high": max(open_, price) * (1 + abs(rng.normal(0, 0.002))),
                    "low": min(open_, price) * (1 - abs(rng.normal(0, 0.002))),
                    "close": price,
                    "volume": float(rng.integers(1_000, 50_000)),
                    "sig": sig,
                }
            )
    return {
        "rows": rows,
        "kind": draw(st.sampled_from(["market", "limit", "day_limit", "stop", "bracket"])),
        "shorts": draw(st.booleans()),
        "fill_timing": draw(st.sampled_from(["next_open", "same_close", "next_close"])),
        "frequency": draw(st.sampled_from(["bar", "5m", "daily"])),
        "costs": draw(st.booleans()),
        # pre-trade loss limits tight enough to refuse entries: they read every equity
        "limits": draw(st.booleans()),
    }


def asset_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    return frame.sort("timestamp", "symbol")


def world_config(world: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    execution: dict[str, Any] = {"fill_timing": world["fill_timing"]}
    if world["costs"]:
        execution["commission"] = {
            "model": "PerShareCommission",
            "params": {"cost_per_share": 0.01},
        }
        execution["slippage"] = {
            "model": "VolumeShareSlippage",
            "params": {"volume_limit": 0.5, "price_impact": 0.05},
        }
    risk: dict[str, Any] = {"account": "margin" if world["shorts"] else "cash"}
    if world.get("limits"):
        risk.update(max_drawdown=0.00002, max_daily_loss=0.00001)
    return {
        "backtest": {"initial_capital": 100_000.0},
        "data": {"asset": {"signals": ["sig"]}, **(data or {})},
        "execution": execution,
        "risk": risk,
        "reporting": {"output_dir": None, "portfolio_frequency": world["frequency"]},
    }


def run(
    world: dict[str, Any],
    *,
    fast_forward: bool,
    strategy: OnSignal | None = None,
    config: dict[str, Any] | None = None,
    asset: pl.DataFrame | None = None,
) -> tuple[Any, BacktestEngine]:
    strategy = strategy or OnSignal(world["kind"], world["shorts"])
    engine = BacktestEngine(
        load_config(config or world_config(world)),
        strategy=strategy,
        asset=asset if asset is not None else asset_frame(world["rows"]),
    )
    engine.feed.fast_forward = fast_forward
    return engine.run(), engine


def assert_same_run(a: tuple[Any, BacktestEngine], b: tuple[Any, BacktestEngine]) -> None:
    (ra, ea), (rb, eb) = a, b
    assert ra.outcome == rb.outcome
    for name in TABLES:
        left, right = getattr(ra, name), getattr(rb, name)
        assert left.schema == right.schema, name
        assert left.equals(right, null_equal=True), f"{name} differs:\n{left}\n{right}"
    assert msgspec.json.encode(_nan_safe(ra.metrics)) == msgspec.json.encode(_nan_safe(rb.metrics))
    assert ra.bar_events == rb.bar_events
    assert ea.feed.batches_published == eb.feed.batches_published
    assert ea.recorder.events == eb.recorder.events
    assert ea.portfolio.cash == eb.portfolio.cash


def _nan_safe(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_safe(v) for v in value]
    return value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_spans_give_the_results_of_every_batch_on_its_own(world: dict[str, Any]) -> None:
    slow = run(world, fast_forward=False)
    fast = run(world, fast_forward=True)
    assert slow[1].feed.spans_published == 0
    assert_same_run(slow, fast)


class ExprOnSignal(ExprStrategy):
    """Expression rules: enter on ``sig == 1`` best close first, exit on ``-1``."""

    def __init__(self, top: int | None, size_expr: bool) -> None:
        super().__init__(
            "strategy",
            entry=pl.col("sig") == 1,
            exit=pl.col("sig") == -1,
            rank=pl.col("close"),
            top=top,
            size=pl.col("equity") * 0.3 / pl.col("close") if size_expr else 10.0,
        )


class ExprAsleep(ExprOnSignal):
    wake = "signal"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=worlds(),
    top=st.sampled_from([None, 1, 2]),
    size_expr=st.booleans(),
    asleep=st.booleans(),
)
def test_expression_strategies_in_spans_act_as_batch_by_batch(
    world: dict[str, Any], top: int | None, size_expr: bool, asleep: bool
) -> None:
    def strategy() -> ExprOnSignal:
        return (ExprAsleep if asleep else ExprOnSignal)(top, size_expr)

    slow = run(world, fast_forward=False, strategy=strategy())
    fast = run(world, fast_forward=True, strategy=strategy())
    assert_same_run(slow, fast)


def test_an_expression_strategy_sleeps_where_no_row_can_act() -> None:
    world = quiet_world()
    slow = run(world, fast_forward=False, strategy=ExprOnSignal(2, True))
    fast = run(world, fast_forward=True, strategy=ExprOnSignal(2, True))
    assert_same_run(slow, fast)
    assert fast[1].feed.spans_published > 0  # wake = "bar", yet quiet between signals
    assert fast[0].trades.height > 0


def quiet_world(**overrides: Any) -> dict[str, Any]:
    """Three symbols, two days of 60 minutes, signals changing every 20 minutes."""
    rows = []
    for day in range(2):
        for minute in range(60):
            for s in range(3):
                ts = START + timedelta(days=day, minutes=minute)
                price = 20.0 + s + 0.01 * minute + day
                sig = [1.0, 0.0, -1.0][(minute // 20 + s) % 3]
                rows.append(
                    {
                        "timestamp": ts,
                        "symbol": f"S{s}",
                        "open": price,
                        "high": price + 0.05,
                        "low": price - 0.05,
                        "close": price,
                        "volume": 10_000.0,
                        "sig": sig,
                    }
                )
    world = {
        "rows": rows,
        "kind": "market",
        "shorts": False,
        "fill_timing": "next_open",
        "frequency": "bar",
        "costs": True,
    }
    world.update(overrides)
    return world


def test_a_quiet_world_runs_in_spans_and_trades() -> None:
    world = quiet_world()
    slow, fast = run(world, fast_forward=False), run(world, fast_forward=True)
    assert_same_run(slow, fast)
    feed = fast[1].feed
    assert feed.spans_published >= 6  # between the wakes and the fills after them
    assert feed.batches_published == 120  # timestamps
    assert fast[0].trades.height >= 4
    assert fast[0].portfolio.height == 120  # one state per timestamp, spans or not


def test_spans_stop_at_corporate_actions_and_universe_changes(tmp_path: Path) -> None:
    actions = tmp_path / "actions.csv"
    actions.write_text(
        "symbol,ex_date,action,ratio,amount,pay_date,price,new_symbol\n"
        "S0,2024-01-03,split,2,,,,\n"
        "S1,2024-01-03,dividend,,0.5,2024-01-03,,\n"
    )
    universe = tmp_path / "universe.csv"
    universe.write_text("symbol,start,end\nS0,2024-01-01,\nS1,2024-01-01,\nS2,2024-01-03,\n")
    world = quiet_world(shorts=True)
    # the split halves S0's prices from the second day on, as split-adjusted data would not
    asset = asset_frame(world["rows"]).with_columns(
        pl.when((pl.col("symbol") == "S0") & (pl.col("timestamp").dt.day() == 3))
        .then(pl.col(c) / 2)
        .otherwise(pl.col(c))
        .alias(c)
        for c in ("open", "high", "low", "close")
    )
    data = {
        "corporate_actions": {"path": str(actions)},
        "universe": {"path": str(universe), "on_exit": "hold"},
    }
    config = world_config(world, data)
    slow = run(world, fast_forward=False, config=config, asset=asset)
    fast = run(world, fast_forward=True, config=config, asset=asset)
    assert_same_run(slow, fast)
    assert fast[1].feed.spans_published > 0
    assert fast[0].cash_flows.height > 0  # the dividend was paid


@pytest.mark.parametrize("kind", ["market", "bracket", "day_limit"])
def test_every_fill_timing_on_a_quiet_world(kind: str) -> None:
    for timing in ("next_open", "same_close", "next_close"):
        world = quiet_world(kind=kind, fill_timing=timing, shorts=True, frequency="5m")
        assert_same_run(run(world, fast_forward=False), run(world, fast_forward=True))


class EveryBar(OnSignal):
    """The same rule called at every timestamp."""

    wake = "bar"


class EveryBarAsking(EveryBar):
    """... with a ``quiet_until`` of its own, which says no and counts the questions."""

    def __init__(self, kind: str, shorts: bool) -> None:
        super().__init__(kind, shorts)
        self.asked = 0

    def quiet_until(self, chunk, first: int, last: int) -> int:
        self.asked += 1
        return first - 1


def test_a_strategy_woken_at_every_bar_is_never_asked_about_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = quiet_world()
    asked: list[int] = []
    base_quiet_until = StrategyBase.quiet_until

    def counting(self, chunk, first: int, last: int) -> int:
        asked.append(first)
        return base_quiet_until(self, chunk, first, last)

    monkeypatch.setattr(StrategyBase, "quiet_until", counting)
    woken = OnSignal("market", False)
    assert woken.never_quiet is False
    assert run(world, fast_forward=True, strategy=woken)[1].feed.spans_published > 0
    assert asked  # a wake = "signal" strategy is asked
    asked.clear()
    every = EveryBar("market", False)
    assert every.never_quiet is True
    results, engine = run(world, fast_forward=True, strategy=every)
    assert asked == [] and engine.feed.spans_published == 0  # spans off, no question
    assert engine.feed.batches_published == 120
    assert_same_run(
        run(world, fast_forward=False, strategy=EveryBar("market", False)), (results, engine)
    )
    # a class with a quiet_until of its own vouches for itself: it is asked
    asking = EveryBarAsking("market", False)
    assert asking.never_quiet is False
    run(world, fast_forward=True, strategy=asking)
    assert asking.asked > 0


def test_a_market_handler_that_knows_no_spans_turns_them_off() -> None:
    world = quiet_world()
    listening = Listening("market", False)
    results, engine = run(world, fast_forward=True, strategy=listening)
    assert engine.feed.spans_published == 0
    assert listening.heard == 120  # it heard every batch
    assert_same_run(run(world, fast_forward=False), (results, engine))


def test_a_kill_switch_or_a_journal_turns_spans_off(tmp_path: Path) -> None:
    world = quiet_world()
    config = world_config(world)
    config["risk"]["kill_switch"] = {"max_drawdown": 0.5}
    _, engine = run(world, fast_forward=True, config=config)
    assert engine.feed.spans_published == 0
    config = world_config(world)
    config["reporting"] = {"output_dir": str(tmp_path / "out"), "journal": True}
    _, engine = run(world, fast_forward=True, config=config)
    assert engine.feed.spans_published == 0
    assert (tmp_path / "out" / "journal.ml4tj").exists()


# ------------------------------------------------------------------ the span itself


def _chunk(lengths: list[int], codes: list[int], close: list[float]) -> ChunkColumns:
    frame = pl.DataFrame(
        {
            "symbol": pl.Series([f"S{c}" for c in codes]).cast(
                pl.Enum([f"S{i}" for i in range(max(codes, default=0) + 1)])
            ),
            "close": close,
        }
    )
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(int).tolist()
    chunk = ChunkColumns(frame, offsets, lengths)
    return chunk


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_span_gives_each_timestamp_the_last_values_bar_by_bar(data: st.DataObject) -> None:
    n_codes = data.draw(st.integers(1, 6))
    steps = data.draw(st.integers(1, 8))
    lengths, codes = [], []
    for _ in range(steps):
        present = data.draw(
            st.lists(st.sampled_from(range(n_codes)), unique=True, max_size=n_codes)
        )
        present.sort()
        lengths.append(len(present))
        codes.extend(present)
    close = [data.draw(st.floats(1, 100) | st.just(math.nan)) for _ in codes]
    chunk = _chunk(lengths, codes, close)
    first = data.draw(st.integers(0, steps - 1))
    last = data.draw(st.integers(first, steps - 1))
    batch = _bound_batch(chunk, last)
    span = MarketSpan(
        ts_event=last, ts_init=last, first=first, times=list(range(first, last + 1)), batch=batch
    )
    held = np.array(
        sorted(data.draw(st.sets(st.sampled_from(range(n_codes)), min_size=1))), dtype=np.intp
    )
    before = np.array([data.draw(st.floats(1, 100)) for _ in held])
    table = np.full(n_codes, -1.0)
    table[held] = before
    expected = []
    for index in range(first, last + 1):  # bar by bar, as the roles did before spans
        lo, n = chunk.offsets[index], chunk.lengths[index]
        table[np.asarray(codes[lo : lo + n], dtype=np.intp)] = close[lo : lo + n]
        expected.append(table[held].copy())
    got = span.filled("close", held, before)
    np.testing.assert_array_equal(got, np.array(expected).reshape(got.shape))
    scattered = np.full(n_codes, -1.0)
    scattered[held] = before
    span.scatter_last(scattered, "close")
    np.testing.assert_array_equal(scattered, table)


def _bound_batch(chunk: ChunkColumns, index: int):
    from ml4t.backtest.events import MarketBatch

    lo, n = chunk.offsets[index], chunk.lengths[index]
    batch = MarketBatch(ts_event=index, ts_init=index, frame=chunk.frame.slice(lo, n))
    batch.bind_chunk(chunk, index)
    return batch


class FeePortfolio(Portfolio):
    """Overrides a span-handled method without vouching for spans: they must stay off."""

    bars = 0

    def _on_market(self, batch) -> None:
        self.bars += 1
        self.cash -= 0.01  # a fee per bar, which a span would skip
        super()._on_market(batch)


def test_a_role_subclass_overriding_a_market_handler_turns_spans_off() -> None:
    world = quiet_world()
    runs = []
    for fast_forward in (False, True):
        config = load_config(world_config(world))
        portfolio = FeePortfolio(
            PortfolioConfig(initial_cash=config.backtest.initial_capital),
            borrow=config.execution.borrow,
        )
        engine = BacktestEngine(
            config,
            strategy=OnSignal("market", False),
            asset=asset_frame(world["rows"]),
            portfolio=portfolio,
        )
        engine.feed.fast_forward = fast_forward
        runs.append((engine.run(), engine))
        assert engine.feed.spans_published == 0
        assert portfolio.bars == 120
    assert_same_run(*runs)


class BadExpr(ExprStrategy):
    def __init__(self) -> None:
        super().__init__("strategy", entry=pl.col("no_such_column") > 0)


def test_a_failing_expression_is_the_strategy_s_failure_with_spans_too() -> None:
    messages = []
    for fast_forward in (False, True):
        with pytest.raises(ComponentError) as failure:
            run(quiet_world(), fast_forward=fast_forward, strategy=BadExpr())
        messages.append(str(failure.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("component 'strategy' failed handling MarketBatch")
    assert "no_such_column" in messages[0]
