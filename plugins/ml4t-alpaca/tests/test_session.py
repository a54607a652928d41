"""A strategy against the stand-in makes the orders and fills a backtest of the same bars
makes; the batches it sees are the backtest's (known at the bar's end, signals and
context joined as of that time); the account it starts from is the venue's."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from alpaca_fakes import FIRST, SYMBOLS
from live_session import live_graph, run
from strategies import BuyOnce, Momentum

from ml4t.backtest import (
    AccountReconciled,
    BacktestEngine,
    Component,
    MarketBatch,
    OrderFilled,
    OrderRejected,
    Phase,
    PositionChanged,
    SessionStarted,
    SubmitOrder,
    load_config,
    on,
)
from ml4t.backtest.live import SimulatedExecution
from ml4t.backtest.topics import MARKET

ZERO_COSTS = {
    "commission": {"model": "none"},
    "slippage": {"model": "none"},
}


class Batches(Component):
    """Keeps every batch it is shown (what a strategy would see)."""

    def __init__(self) -> None:
        super().__init__("batches")
        self.seen: list[MarketBatch] = []

    @on(MARKET, phase=Phase.STRATEGY)
    def _keep(self, batch: MarketBatch) -> None:
        self.seen.append(batch)


def backtest(bars: pl.DataFrame, strategy, *, data: dict | None = None, **frames):
    config = load_config(
        {
            "backtest": {"initial_capital": 100_000},
            "data": data or {},
            "execution": ZERO_COSTS,
        }
    )
    engine = BacktestEngine(config, strategy=strategy, asset=bars, **frames)
    batches = engine.add(Batches())
    return engine.run(), batches.seen


def _fills(fills) -> list[tuple]:
    return [(f.order_id, f.symbol, str(f.side), f.quantity, round(f.price, 6)) for f in fills]


def test_a_strategy_against_the_standin_makes_the_backtests_orders_and_fills(
    standin, credentials, bars
):
    reference, _ = backtest(bars, Momentum("m"))
    graph = live_graph(standin, [Momentum("m")], credentials)
    run(graph, standin)
    live = graph.capture.of_type(OrderFilled)
    expected = (
        reference.fills.sort("ts_event", "order_id")
        if "ts_event" in reference.fills.columns
        else reference.fills
    )
    assert reference.fills.height >= 10
    backtest_fills = [
        (r["order_id"], r["symbol"], r["side"], r["quantity"], round(r["price"], 6))
        for r in expected.iter_rows(named=True)
    ]
    assert sorted(_fills(live)) == sorted(backtest_fills)
    orders = [
        (o.order_id, o.symbol, str(o.side), o.quantity) for o in graph.capture.of_type(SubmitOrder)
    ]
    placed = reference.orders.select("order_id", "symbol", "side", "quantity").rows()
    assert orders == [(i, s, side, float(q)) for i, s, side, q in placed]
    # the venue agrees with the graph: one venue order per order, positions equal
    assert len(standin.orders) == len(orders)
    for symbol in SYMBOLS:
        assert graph.portfolio.quantity[graph.portfolio._table.code[symbol]] == standin.position(
            symbol
        )


def test_forward_testing_the_live_data_with_the_simulated_broker_fills_as_the_backtest(
    standin, credentials, bars
):
    """No account needed: the stand-in's bars through the live feed, orders filled by
    our own fill rules (the simulated broker behind the adapter), fill for fill."""
    reference, _ = backtest(bars, Momentum("m"))
    config = load_config({"execution": ZERO_COSTS}).execution
    graph = live_graph(
        standin, [Momentum("m")], credentials, on_mismatch="fail", venue=SimulatedExecution(config)
    )
    run(graph, standin)
    live = graph.capture.of_type(OrderFilled)
    assert not standin.orders  # nothing went to the venue
    expected = [
        (r["order_id"], r["symbol"], r["side"], r["quantity"], round(r["price"], 6))
        for r in reference.fills.iter_rows(named=True)
    ]
    assert _fills(live) == expected  # same order, same prices
    stamps = [int(t.timestamp()) * 10**9 for t in reference.fills["timestamp"]]
    assert [f.ts_event for f in live] == stamps  # and the backtest's fill times


def test_live_batches_are_the_backtests_known_at_the_bar_end_with_signals_and_context(
    standin, credentials, bars
):
    days = pl.DataFrame(
        {
            "timestamp": [FIRST - timedelta(hours=1), FIRST + timedelta(minutes=9, seconds=30)] * 3,
            "symbol": [s for s in SYMBOLS for _ in range(2)],
            "score": [0.1, 0.7, -0.2, 0.4, 0.5, -0.9],
        }
    ).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    vix = pl.DataFrame(
        {
            "timestamp": [FIRST - timedelta(days=1), FIRST + timedelta(minutes=4)],
            "vix": [18.5, 21.25],
        }
    ).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    data = {
        "signal_data": {"columns": ["score"]},
        "context": {"fields": ["vix"]},
    }
    _, reference = backtest(bars, BuyOnce("b"), data=data, signal_data=days, context=vix)
    feed_config = load_config({"data": data}).data
    graph = live_graph(standin, [BuyOnce("b")], credentials)
    from ml4t_alpaca import AlpacaMarketData

    graph.feed.client = graph.market = AlpacaMarketData(
        standin.config(session="test"),
        symbols=SYMBOLS,
        data=feed_config,
        signal_data=days,
        context=vix,
        credentials=credentials,
    )
    seen = graph.runtime.add(Batches())
    run(graph, standin, 15)
    assert len(seen.seen) == 15
    for live, ref in zip(seen.seen, reference[:15], strict=True):
        assert live.ts_event == ref.ts_event  # 14:30 at Alpaca is the row known at 14:31
        assert live.context == ref.context
        assert live.frame.columns == ref.frame.columns
        assert live.frame.with_columns(pl.col("symbol").cast(pl.String)).equals(
            ref.frame.with_columns(pl.col("symbol").cast(pl.String))
        )
    assert seen.seen[0].ts_event == int(FIRST.timestamp()) * 10**9
    assert seen.seen[0].context == {"vix": 18.5} and seen.seen[5].context == {"vix": 21.25}


def test_the_account_at_the_venue_becomes_the_starting_state_and_is_reported(bars, credentials):
    from alpaca_fakes import KEY_ID, SECRET
    from alpaca_standin import start_standin

    server = start_standin(
        bars, key_id=KEY_ID, secret_key=SECRET, cash=50_000.0, positions={"BBB": (20.0, 74.5)}
    )
    try:
        graph = live_graph(server, [BuyOnce("b")], credentials)
        run(graph, server, 5)
    finally:
        server.stop()
    start = graph.capture.of_type(AccountReconciled)[0]
    assert start.reason == "start" and start.adopted
    assert start.cash == 50_000.0 and start.positions == {"BBB": 20.0}
    assert [d.detail for d in start.differences] == ["BBB: expected 0, venue has 20"]
    portfolio = graph.portfolio
    assert portfolio.quantity[portfolio._table.code["BBB"]] == 20.0
    assert portfolio.initial_cash == pytest.approx(50_000.0 + 20 * 74.5)
    portfolio.check()  # equity = cash + positions = initial + P&L, with the adopted state
    changes = [e for e in graph.capture.of_type(PositionChanged) if e.symbol == "BBB"]
    assert changes[0].quantity == 20.0 and changes[0].avg_price == 74.5


def test_the_handshake_names_the_universe_and_orders_on_warmup_bars_are_refused(
    standin, credentials
):
    standin.step(8)  # eight minutes of history before the session starts
    graph = live_graph(standin, [BuyOnce("b")], credentials, warmup=5)
    run(graph, standin, 3)
    session = graph.capture.of_type(SessionStarted)[0]
    assert session.symbols == list(SYMBOLS) and session.columns["close"] == "ohlcv"
    refused = graph.capture.of_type(OrderRejected)
    assert [r.rule for r in refused] == ["warmup"]  # BuyOnce bought on the first warm-up bar
    assert graph.feed.batches == 5 + 3
    assert not standin.orders  # nothing reached the venue
