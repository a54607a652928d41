"""The session handshake: the run's shared facts travel on the bus, first.

A feed publishes SessionStarted before any other event; every role builds its
per-symbol state from it (and from UniverseChanged when symbols list mid-run), never from
a side channel.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ml4t.backtest import (
    BacktestEngine,
    MarketBatch,
    SessionStarted,
    UniverseChanged,
)
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest.bus import Phase
from ml4t.backtest.clock import AlarmPriority
from ml4t.backtest.component import Component, on
from ml4t.backtest.config import load_config
from ml4t.backtest.events import CODE_DTYPE
from ml4t.backtest.testing import Capture
from ml4t.backtest.topics import MARKET, SESSION

from ._bars import Scripted, flat, frame

DAY = 86_400 * 10**9
T0 = 1_704_229_200 * 10**9  # 2024-01-02 21:00 UTC


class GrowingFeed(Component):
    """A feed plugin's shape: the handshake for AAA and BBB, two days of bars, then CCC
    lists (UniverseChanged) and trades from day 2 on."""

    def __init__(self) -> None:
        super().__init__("feed")

    def on_start(self) -> None:
        self.publish(
            SESSION,
            SessionStarted(ts_event=T0, start_ns=T0, symbols=["AAA", "BBB"], initial_cash=1e4),
        )
        for day in range(4):
            at, emit = T0 + day * DAY, lambda d=day: self._emit(d)
            self.clock.schedule(at, emit, priority=AlarmPriority.DATA)

    def _emit(self, day: int) -> None:
        symbols = ["AAA", "BBB"] + (["CCC"] if day >= 2 else [])
        if day == 2:
            self.publish(SESSION, UniverseChanged(ts_event=self.now_ns(), added=["CCC"]))
        prices = {"AAA": 10.0 + day, "BBB": 20.0 + day, "CCC": 30.0 + day}
        rows = frame({s: [flat(prices[s])] for s in symbols})
        bars = rows.with_columns(pl.col("symbol").cast(pl.Enum(symbols))).drop("timestamp")
        codes = np.arange(len(symbols), dtype=CODE_DTYPE).tobytes()
        self.publish(MARKET, MarketBatch(ts_event=self.now_ns(), frame=bars, codes=codes))


class LateJoiner(Component):
    """A custom component whose per-symbol state comes only from the session events: the
    last close of every symbol, by the run's codes."""

    def __init__(self) -> None:
        super().__init__("joiner")
        self.table = SymbolTable({"close": np.nan})
        self.seen: list[tuple[list[str], list[float]]] = []

    @on(SESSION, phase=Phase.SESSION)
    def _on_session(self, event: SessionStarted | UniverseChanged) -> None:
        self.table.apply(event)

    @on(MARKET, phase=Phase.RECORD)
    def _on_market(self, batch: MarketBatch) -> None:
        assert batch.symbol_codes().max() < self.table.size, "a code the session never gave"
        self.table["close"][batch.symbol_codes()] = batch.frame["close"].to_numpy()
        self.seen.append((list(self.table.symbols), self.table["close"].tolist()))


def test_the_feed_publishes_the_handshake_first_with_the_universe_and_column_roles() -> None:
    capture = Capture(SESSION, MARKET, name="witness", phase=Phase.SESSION)
    config = load_config(
        {"backtest": {"initial_capital": 25_000.0}, "reporting": {"output_dir": None}}
    )
    asset = frame({"AAA": [flat(10)] * 2, "BBB": [flat(20)] * 2})
    engine = BacktestEngine(config, strategy=Scripted({}), asset=asset)
    engine.add(capture)
    engine.run()
    first, *rest = capture.events
    assert isinstance(first, SessionStarted)
    assert first.symbols == ["AAA", "BBB"]  # the codes every role uses
    assert first.columns == {
        "symbol": "symbol",
        "open": "ohlcv",
        "high": "ohlcv",
        "low": "ohlcv",
        "close": "ohlcv",
        "volume": "ohlcv",
    }
    assert (first.initial_cash, first.start_ns, first.end_ns) == (25_000.0, T0, T0 + DAY)
    assert first.config_hash.startswith("sha256:")
    assert all(isinstance(e, MarketBatch) for e in rest) and len(rest) == 2


def test_a_symbol_listed_mid_run_reaches_every_role_through_the_session_events() -> None:
    joiner = LateJoiner()

    def buy_ccc(s: Scripted) -> None:
        s.buy("CCC", 10)

    strategy = Scripted({2: buy_ccc})  # CCC's first bar is day 2; the buy fills on day 3
    config = load_config(
        {"backtest": {"initial_capital": 10_000.0}, "reporting": {"output_dir": None}}
    )
    engine = BacktestEngine(config, strategy=strategy, feed=GrowingFeed())
    engine.add(joiner)
    results = engine.run()
    # the custom component knew CCC from its UniverseChanged, at code 2
    assert joiner.seen[1] == (["AAA", "BBB"], [11.0, 21.0])
    assert joiner.seen[2] == (["AAA", "BBB", "CCC"], [12.0, 22.0, 32.0])
    # the risk manager, broker, portfolio and strategy all took it the same way
    assert strategy.rejections == []
    assert results.fills["symbol"].to_list() == ["CCC"]
    assert results.fills["price"].to_list() == [33.0]
    assert engine.portfolio.position("CCC") == 10.0
    assert strategy.position("CCC") == 10.0
    assert strategy.last_price("CCC") == 33.0
    assert results.final_equity == 10_000.0


class Door(Component):
    """Lets ``late`` into the running graph at ``at`` (as a user would attach a monitor to
    a live session)."""

    def __init__(self, engine: BacktestEngine, late: Component, at: int) -> None:
        super().__init__("door")
        self.engine, self.late, self.at = engine, late, at

    def on_start(self) -> None:
        self.clock.schedule(self.at, self._open, priority=AlarmPriority.DATA)

    def _open(self) -> None:
        assert self.engine.runtime is not None
        self.engine.runtime.add(self.late)


def test_a_component_that_joins_mid_run_builds_its_state_from_the_session_events() -> None:
    early, late = LateJoiner(), LateJoiner()
    late.name = "late-joiner"
    config = load_config(
        {"backtest": {"initial_capital": 10_000.0}, "reporting": {"output_dir": None}}
    )
    engine = BacktestEngine(config, strategy=Scripted({}), feed=GrowingFeed())
    engine.add(early)
    # it joins after day 2's bars (CCC listed then), before day 3's
    engine.add(Door(engine, late, T0 + 2 * DAY + DAY // 2))
    engine.run()
    # handed SessionStarted (AAA, BBB) then UniverseChanged (CCC) on joining, it knows
    # the universe by the run's codes and reads day 3's batch as the others do
    assert late.table.symbols == ["AAA", "BBB", "CCC"]
    assert late.seen == [(["AAA", "BBB", "CCC"], [13.0, 23.0, 33.0])]
    assert early.seen[-1] == late.seen[0]
