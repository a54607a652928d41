"""Strategy and BatchStrategy on a real graph: what they see and what they send."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import msgspec
import polars as pl
import pytest

from ml4t.backtest import (
    BatchStrategy,
    ConfigError,
    MarketBatch,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    PortfolioSnapshot,
    Strategy,
    SubmitOrder,
)
from ml4t.backtest.testing import Capture, Script, run_components
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDER_REQUESTS, PORTFOLIO

UNIVERSE = pl.Enum(["AAA", "BBB", "CCC"])
T0 = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
MIN = 60_000_000_000


def batch(ts: int, rows: dict[str, tuple[float, float]], vix: float | None = 15.0) -> MarketBatch:
    """rows: symbol -> (close, signal)."""
    symbols = sorted(rows)
    closes = [rows[s][0] for s in symbols]
    return MarketBatch(
        ts_event=ts,
        frame=pl.DataFrame(
            {
                "symbol": pl.Series(symbols, dtype=UNIVERSE),
                "open": closes,
                "high": [c + 1 for c in closes],
                "low": [c - 1 for c in closes],
                "close": closes,
                "volume": [1000.0] * len(symbols),
                "signal": [rows[s][1] for s in symbols],
            }
        ),
        context={"vix": vix},
    )


def snapshot(ts: int, equity: float, cash: float) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        ts_event=ts,
        equity=equity,
        cash=cash,
        positions_value=equity - cash,
        gross_exposure=0.0,
        net_exposure=0.0,
        num_positions=0,
    )


def fill(
    ts: int, order_id: str, symbol: str, side: OrderSide, qty: float, px: float, strategy: str = "s"
) -> OrderFilled:
    return OrderFilled(
        ts_event=ts,
        fill_id=f"f-{order_id}-{qty}",
        order_id=order_id,
        strategy_id=strategy,
        symbol=symbol,
        side=side,
        quantity=qty,
        price=px,
    )


class SeeEverything(Strategy):
    def __init__(self) -> None:
        super().__init__("s")
        self.seen: list[tuple] = []

    def on_bar(self, bar) -> None:
        self.seen.append(
            (
                bar.timestamp,
                bar.symbol,
                bar.close,
                bar.signal,
                bar["signal"],
                bar.vix,
                bar.context["vix"],
                self.position(bar.symbol),
                self.equity,
            )
        )


def test_on_bar_sees_each_symbol_in_order_with_signals_and_context() -> None:
    strat = SeeEverything()
    run_components(
        Script(
            [
                (T0, PORTFOLIO, snapshot(T0, 1000.0, 1000.0)),
                (T0, MARKET, batch(T0, {"BBB": (20.0, 1.0), "AAA": (10.0, 0.0)})),
                (T0 + MIN, MARKET, batch(T0 + MIN, {"CCC": (30.0, -1.0)}, vix=None)),
            ]
        ),
        strat,
    )
    when = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert strat.seen[0] == (when, "AAA", 10.0, 0.0, 0.0, 15.0, 15.0, 0.0, 1000.0)
    assert strat.seen[1][1:4] == ("BBB", 20.0, 1.0)
    assert strat.seen[2][1:6] == ("CCC", 30.0, -1.0, -1.0, None)


def test_missing_field_names_what_exists() -> None:
    class Typo(Strategy):
        def on_bar(self, bar) -> None:
            bar.sginal  # noqa: B018

    with pytest.raises(Exception, match=r"bar has no column or context field 'sginal'"):
        run_components(Script([(T0, MARKET, batch(T0, {"AAA": (1.0, 0.0)}))]), Typo("s"))


class Trader(Strategy):
    """Buys 10 AAA on the first bar, then targets 4; sizes BBB at 10 % of equity."""

    def __init__(self) -> None:
        super().__init__("s")
        self.fills: list[OrderFilled] = []
        self.rejects: list[OrderRejected] = []

    def on_bar(self, bar) -> None:
        if bar.symbol == "AAA":
            if bar.ts_ns == T0:
                self.buy("AAA", 10, reason="entry")
            elif bar.ts_ns == T0 + 2 * MIN:
                self.order_target_quantity("AAA", 4)
        if bar.symbol == "BBB" and bar.ts_ns == T0:
            self.order_target_percent("BBB", 0.10)
            self.sell("BBB", 5, limit=21.0)

    def on_fill(self, f: OrderFilled) -> None:
        self.fills.append(f)

    def on_reject(self, r: OrderRejected) -> None:
        self.rejects.append(r)


def test_order_helpers_send_typed_requests_and_track_fills() -> None:
    strat = Trader()
    orders = Capture(ORDER_REQUESTS)
    run_components(
        Script(
            [
                (T0, PORTFOLIO, snapshot(T0, 1000.0, 1000.0)),
                (T0, MARKET, batch(T0, {"AAA": (10.0, 0), "BBB": (20.0, 0)})),
                (T0 + MIN, FILLS, fill(T0 + MIN, "s-1", "AAA", OrderSide.BUY, 6, 10.5)),
                (T0 + MIN, FILLS, fill(T0 + MIN, "s-1", "AAA", OrderSide.BUY, 4, 11.0)),
                (
                    T0 + MIN,
                    ORDER_EVENTS,
                    OrderRejected(
                        ts_event=T0 + MIN,
                        order_id="s-3",
                        strategy_id="s",
                        symbol="BBB",
                        rule="max_order_notional",
                        reason="too big",
                    ),
                ),
                (T0 + 2 * MIN, MARKET, batch(T0 + 2 * MIN, {"AAA": (12.0, 0)})),
            ]
        ),
        strat,
        orders,
    )
    sent = orders.of_type(SubmitOrder)
    assert [(o.order_id, o.symbol, o.side, o.quantity, o.order_type) for o in sent] == [
        ("s-1", "AAA", OrderSide.BUY, 10.0, OrderType.MARKET),
        ("s-2", "BBB", OrderSide.BUY, 5.0, OrderType.MARKET),  # 10 % of 1000 at 20
        ("s-3", "BBB", OrderSide.SELL, 5.0, OrderType.LIMIT),
        ("s-4", "AAA", OrderSide.SELL, 6.0, OrderType.MARKET),  # 10 held -> target 4
    ]
    assert sent[0].reason == "entry" and sent[2].limit_price == 21.0
    assert strat.position("AAA") == 10.0  # the sell has not filled yet
    assert strat.positions()["avg_price"].to_list() == [pytest.approx(10.7)]
    assert [r.order_id for r in strat.rejects] == ["s-3"]
    assert set(strat.open_orders) == {"s-2", "s-4"}
    assert strat.pending_quantity("AAA") == -6.0


def test_batch_strategy_sees_frame_and_context_once_per_timestamp() -> None:
    calls: list[tuple] = []

    class Top(BatchStrategy):
        def on_timestamp(self, timestamp, frame, context) -> None:
            calls.append((timestamp, frame["symbol"].to_list(), context))
            best = frame.sort("signal", descending=True).head(1)
            self.buy(best["symbol"][0], 1)

    orders = Capture(ORDER_REQUESTS)
    run_components(
        Script([(T0, MARKET, batch(T0, {"AAA": (1.0, 0.2), "BBB": (2.0, 0.9)}))]),
        Top("s"),
        orders,
    )
    assert calls == [(datetime(2024, 1, 2, 14, 30, tzinfo=UTC), ["AAA", "BBB"], {"vix": 15.0})]
    assert [o.symbol for o in orders.of_type(SubmitOrder)] == ["BBB"]


def test_rebalance_sells_before_buys_and_zeroes_unlisted_holdings() -> None:
    class Rebalancer(BatchStrategy):
        def on_timestamp(self, timestamp, frame, context) -> None:
            if self.now_ns() == T0 + MIN:
                self.rebalance({"BBB": 0.5, "CCC": 0.25})

    orders = Capture(ORDER_REQUESTS)
    run_components(
        Script(
            [
                (T0, PORTFOLIO, snapshot(T0, 1000.0, 900.0)),
                (T0, FILLS, fill(T0, "x", "AAA", OrderSide.BUY, 10, 10.0)),
                (
                    T0 + MIN,
                    MARKET,
                    batch(T0 + MIN, {"AAA": (10.0, 0), "BBB": (20.0, 0), "CCC": (40.0, 0)}),
                ),
            ]
        ),
        Rebalancer("s"),
        orders,
    )
    sent = [(o.symbol, o.side, o.quantity) for o in orders.of_type(SubmitOrder)]
    assert sent == [
        ("AAA", OrderSide.SELL, 10.0),
        ("BBB", OrderSide.BUY, 25.0),
        ("CCC", OrderSide.BUY, 6.0),
    ]


def test_fills_of_other_strategies_are_ignored() -> None:
    strat = Trader()
    run_components(
        Script([(T0, FILLS, fill(T0, "o-1", "AAA", OrderSide.BUY, 5, 10.0, strategy="other"))]),
        strat,
    )
    assert strat.position("AAA") == 0.0 and strat.fills == []


def test_flip_and_close_track_average_cost() -> None:
    strat = Trader()
    run_components(
        Script(
            [
                (T0, FILLS, fill(T0, "a", "AAA", OrderSide.BUY, 10, 10.0)),
                (T0, FILLS, fill(T0, "b", "AAA", OrderSide.BUY, 10, 12.0)),
                (T0, FILLS, fill(T0, "c", "AAA", OrderSide.SELL, 5, 13.0)),
                (T0 + MIN, FILLS, fill(T0 + MIN, "d", "AAA", OrderSide.SELL, 25, 9.0)),
            ]
        ),
        strat,
    )
    assert strat.position("AAA") == -10.0
    assert strat.positions()["avg_price"].to_list() == [9.0]


class WithParams(BatchStrategy):
    class Params(msgspec.Struct, forbid_unknown_fields=True):
        top_n: int = 25
        vix_threshold: float = 30.0


def test_params_are_typed_and_checked() -> None:
    assert WithParams(params={"top_n": 5}).params.top_n == 5
    assert WithParams().params.vix_threshold == 30.0
    with pytest.raises(ConfigError, match=r"Expected `int`, got `str` - at `\$.top_n`"):
        WithParams(params={"top_n": "five"})
    with pytest.raises(ConfigError, match="unknown field `topn`"):
        WithParams(params={"topn": 5})
    with pytest.raises(ConfigError, match="takes no parameters"):
        BatchStrategy(params={"x": 1})


def test_target_percent_waits_for_equity_and_price() -> None:
    class Early(Strategy):
        def on_bar(self, bar) -> None:
            assert math.isnan(self.equity)
            assert self.order_target_percent(bar.symbol, 0.5) is None

    run_components(Script([(T0, MARKET, batch(T0, {"AAA": (1.0, 0)}))]), Early("s"))


def test_batch_positions_align_holdings_and_working_orders_with_rows() -> None:
    seen: list[list[float]] = []

    class Vector(BatchStrategy):
        def on_timestamp(self, timestamp, frame, context) -> None:
            seen.append(self.batch_positions(frame).tolist())
            seen.append(self.batch_positions(frame, pending=False).tolist())
            if self.now_ns() == T0:
                self.buy("BBB", 7)
                self.sell("CCC", 2)

    run_components(
        Script(
            [
                (T0, FILLS, fill(T0, "x", "AAA", OrderSide.BUY, 10, 10.0)),
                (T0, MARKET, batch(T0, {"AAA": (10.0, 0), "BBB": (20.0, 0), "CCC": (5.0, 0)})),
                (
                    T0 + MIN,
                    FILLS,
                    OrderFilled(
                        ts_event=T0 + MIN,
                        fill_id="p1",
                        order_id="s-1",
                        strategy_id="s",
                        symbol="BBB",
                        side=OrderSide.BUY,
                        quantity=3,
                        price=20.0,
                        remaining_quantity=4,
                    ),
                ),
                (
                    T0 + MIN,
                    ORDER_EVENTS,
                    OrderRejected(
                        ts_event=T0 + MIN,
                        order_id="s-2",
                        strategy_id="s",
                        symbol="CCC",
                        rule="buying_power",
                        reason="no shorts",
                    ),
                ),
                (
                    T0 + MIN,
                    MARKET,
                    batch(T0 + MIN, {"BBB": (20.0, 0), "CCC": (5.0, 0), "AAA": (10.0, 0)}),
                ),
            ]
        ),
        Vector("s"),
    )
    assert seen == [
        [10.0, 0.0, 0.0],
        [10.0, 0.0, 0.0],  # AAA held before the first bar
        [10.0, 7.0, 0.0],
        [10.0, 3.0, 0.0],  # 3 of 7 BBB filled, CCC sell rejected
    ]
