"""Trailing stops: the stop follows the best price since placement, by amount or percent.

The level is placed at the first bar it can trade on (reference = that bar's open, or the
given stop_price), checked against each bar like a stop (gaps fill at the open), and
ratcheted with the bar's high (sell) or low (buy) only after the bar is checked.
"""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderUpdated
from tests.execution._market import fills_of, flat, order, simulate, table

CASES = [
    # id, side, trail fields, bars after the order's bar, expected fills, stop levels published
    (
        "sell_by_amount_follows_highs_then_fills_at_stop",
        "sell",
        {"trail_amount": 5.0},
        [(100, 104, 99, 103, 1e6), (103, 108, 102, 107, 1e6), (106, 106, 102, 103, 1e6)],
        [(3, 10, 103.0)],
        [95.0, 99.0, 103.0],
    ),
    (
        "sell_gap_below_stop_fills_at_open",
        "sell",
        {"trail_amount": 5.0},
        [(100, 104, 99, 103, 1e6), (103, 108, 102, 107, 1e6), (100, 101, 99, 100, 1e6)],
        [(3, 10, 100.0)],
        [95.0, 99.0, 103.0],
    ),
    (
        "sell_by_percent",
        "sell",
        {"trail_percent": 0.1},
        [(100, 110, 99, 108, 1e6), (105, 106, 98, 100, 1e6)],
        [(2, 10, 99.0)],
        [90.0, 99.0],
    ),
    (
        "sell_touch_exactly_fills",
        "sell",
        {"trail_amount": 5.0},
        [(100, 104, 95, 100, 1e6)],
        [(1, 10, 95.0)],
        [95.0],
    ),
    (
        "sell_with_initial_stop_price",
        "sell",
        {"trail_amount": 5.0, "stop_price": 97.0},
        [(100, 101, 96, 98, 1e6)],
        [(1, 10, 97.0)],
        [],
    ),
    (
        "sell_stop_never_moves_down",
        "sell",
        {"trail_amount": 5.0},
        [(100, 104, 99, 103, 1e6), (101, 102, 100, 101, 1e6)],
        [],
        [95.0, 99.0],
    ),
    (
        "sell_bar_high_moves_the_stop_only_after_the_bar",
        "sell",
        {"trail_amount": 5.0},
        [(100, 120, 99, 101, 1e6), (101, 102, 100, 101, 1e6)],
        [(2, 10, 101.0)],
        [95.0, 115.0],
    ),
    (
        "buy_by_amount_follows_lows",
        "buy",
        {"trail_amount": 2.0},
        [(100, 101, 97, 98, 1e6), (98, 99.5, 96, 99, 1e6)],
        [(2, 10, 99.0)],
        [102.0, 99.0],
    ),
    (
        "buy_gap_up_fills_at_open",
        "buy",
        {"trail_percent": 0.05},
        [(100, 101, 99, 100, 1e6), (106, 107, 105, 106, 1e6)],
        [(2, 10, 106.0)],
        [105.0, 103.95],
    ),
]


@pytest.mark.parametrize(("side", "trail", "bars", "expected", "levels"), table(CASES))
def test_trailing_stop(side, trail, bars, expected, levels) -> None:
    request = order("o1", side, 10, kind="trailing_stop", **trail)
    capture, _ = simulate([flat(100), *bars], [request])
    assert fills_of(capture) == expected
    published = [round(u.stop_price, 10) for u in capture.of_type(OrderUpdated)]
    assert published == levels
