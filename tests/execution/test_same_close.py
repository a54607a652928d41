"""``fill_timing: same_close``: market orders fill at the close of the bar just seen."""

from __future__ import annotations

from ml4t.backtest import OrderCancelled, OrderFilled
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.topics import MARKET, ORDERS_APPROVED
from tests.execution._market import batch, day, fills_of, flat, order, run, simulate

SAME_CLOSE = BrokerConfig(fill_timing="same_close")
BARS = [(99, 101, 98, 100, 1000), (102, 103, 101, 102.5, 1000)]


def test_market_order_fills_at_the_current_close_when_routed() -> None:
    capture, _ = simulate(BARS, [order("o1", "buy", 10)], SAME_CLOSE)
    assert fills_of(capture) == [(0, 10, 100.0)]


def test_default_timing_fills_the_same_order_at_the_next_open() -> None:
    capture, _ = simulate(BARS, [order("o1", "buy", 10)])
    assert fills_of(capture) == [(1, 10, 102.0)]


def test_limit_orders_keep_next_bar_rules() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=101.5)
    capture, _ = simulate(BARS, [request], SAME_CLOSE)
    assert fills_of(capture) == [(1, 10, 101.5)]


def test_volume_left_over_at_the_close_fills_at_the_next_open() -> None:
    config = BrokerConfig(fill_timing="same_close", volume_limit=0.1)
    capture, _ = simulate(BARS, [order("o1", "buy", 150)], config)
    assert fills_of(capture) == [(0, 100, 100.0), (1, 50, 102.0)]


def test_ioc_at_the_close_cancels_what_the_close_cannot_fill() -> None:
    config = BrokerConfig(fill_timing="same_close", volume_limit=0.1)
    capture, _ = simulate(BARS, [order("o1", "buy", 150, time_in_force="ioc")], config)
    assert fills_of(capture) == [(0, 100, 100.0)]
    assert [c.reason for c in capture.of_type(OrderCancelled)] == [
        "immediate or cancel: 50 unfilled after one bar"
    ]


def test_symbol_without_a_bar_now_fills_at_its_next_open() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"BBB": flat(50)})),
        (day(0), ORDERS_APPROVED, order("o1", "buy", 10)),
        (day(1), MARKET, batch(day(1), {"AAA": (101, 102, 100, 101, 1e6)})),
    ]
    capture = run(steps, SimulatedBroker(SAME_CLOSE))
    assert fills_of(capture) == [(1, 10, 101.0)]


def test_bracket_children_of_a_close_fill_trade_from_the_next_bar() -> None:
    request = order("o1", "buy", 10, stop_loss=99.0, take_profit=110.0)
    capture, _ = simulate([*BARS, (100, 101, 98, 99, 1e6)], [request], SAME_CLOSE)
    fills = [(f.order_id, f.ts_event, f.price) for f in capture.of_type(OrderFilled)]
    assert fills == [("o1", day(0), 100.0), ("o1.sl", day(2), 99.0)]
