"""Limit orders: intrabar at the limit, or at the open when the open is already better."""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderFilled
from ml4t.backtest.execution import BrokerConfig
from tests.execution._market import fills_of, flat, order, simulate, table

TOUCH = [
    # id, side, limit, bars after the order's bar, expected fills (bar, qty, price)
    ("buy_open_below_limit_fills_at_open", "buy", 100, [(98, 99, 97, 98.5, 1e6)], [(1, 10, 98.0)]),
    ("buy_open_at_limit_fills_at_open", "buy", 100, [(100, 101, 99, 100, 1e6)], [(1, 10, 100.0)]),
    ("buy_low_reaches_limit", "buy", 100, [(102, 103, 99, 101, 1e6)], [(1, 10, 100.0)]),
    ("buy_low_touches_limit_exactly", "buy", 100, [(102, 103, 100, 101, 1e6)], [(1, 10, 100.0)]),
    ("buy_low_just_above_limit", "buy", 100, [(102, 103, 100.01, 101, 1e6)], []),
    ("buy_gap_down_through_limit", "buy", 100, [(95, 96, 94, 95, 1e6)], [(1, 10, 95.0)]),
    ("buy_gap_up_away", "buy", 100, [(105, 106, 104, 105, 1e6)], []),
    (
        "buy_fills_on_a_later_bar",
        "buy",
        100,
        [(102, 103, 101, 102, 1e6), (101, 102, 99.5, 100, 1e6)],
        [(2, 10, 100.0)],
    ),
    (
        "sell_open_above_limit_fills_at_open",
        "sell",
        100,
        [(101, 102, 100.5, 101, 1e6)],
        [(1, 10, 101.0)],
    ),
    ("sell_high_touches_limit_exactly", "sell", 100, [(98, 100, 97, 99, 1e6)], [(1, 10, 100.0)]),
    ("sell_high_reaches_limit", "sell", 100, [(98, 101, 97, 99, 1e6)], [(1, 10, 100.0)]),
    ("sell_gap_up_through_limit", "sell", 100, [(105, 106, 104, 105, 1e6)], [(1, 10, 105.0)]),
    ("sell_high_just_below_limit", "sell", 100, [(98, 99.99, 97, 99, 1e6)], []),
]


@pytest.mark.parametrize(("side", "limit", "bars", "expected"), table(TOUCH))
def test_limit_order(side, limit, bars, expected) -> None:
    capture, _ = simulate(
        [flat(100.5), *bars], [order("o1", side, 10, kind="limit", limit_price=limit)]
    )
    assert fills_of(capture) == expected


THROUGH = [
    # with limit_fill: through, a touch is not enough
    ("buy_touch_does_not_fill", "buy", [(102, 103, 100, 101, 1e6)], []),
    ("buy_open_at_limit_does_not_fill", "buy", [(100, 101, 100, 100, 1e6)], []),
    ("buy_trading_through_fills_at_limit", "buy", [(102, 103, 99.99, 101, 1e6)], [(1, 10, 100.0)]),
    ("buy_open_below_fills_at_open", "buy", [(99, 100, 98, 99, 1e6)], [(1, 10, 99.0)]),
    ("sell_touch_does_not_fill", "sell", [(98, 100, 97, 99, 1e6)], []),
    ("sell_trading_through_fills_at_limit", "sell", [(98, 100.5, 97, 99, 1e6)], [(1, 10, 100.0)]),
]


@pytest.mark.parametrize(("side", "bars", "expected"), table(THROUGH))
def test_limit_order_with_through_semantics(side, bars, expected) -> None:
    capture, _ = simulate(
        [flat(100.5), *bars],
        [order("o1", side, 10, kind="limit", limit_price=100)],
        BrokerConfig(limit_fill="through"),
    )
    assert fills_of(capture) == expected


def test_limit_order_partial_fills_carry_over_and_keep_the_limit() -> None:
    # 10 % of volume per bar; bar 2 never reaches 100; bar 3 opens below the limit
    bars = [
        flat(101),
        (101, 102, 99, 100, 1000),  # 100 @ 100
        (103, 104, 102, 103, 1000),  # out of reach
        (99, 100, 98, 99, 2000),  # 200 @ 99, the open
    ]
    capture, broker = simulate(
        bars,
        [order("o1", "buy", 300, kind="limit", limit_price=100)],
        BrokerConfig(volume_limit=0.1),
    )
    assert fills_of(capture) == [(1, 100, 100.0), (3, 200, 99.0)]
    assert [f.remaining_quantity for f in capture.of_type(OrderFilled)] == [200.0, 0.0]
    assert not broker.book.get("o1").is_open
