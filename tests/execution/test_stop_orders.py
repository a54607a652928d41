"""Stop orders: triggered by a touch, filled at the stop, or at the open after a gap."""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderFilled
from ml4t.backtest.execution import BrokerConfig
from tests.execution._market import fills_of, flat, order, simulate, table

CASES = [
    # id, side, stop, bars after the order's bar, expected fills (bar, qty, price)
    (
        "buy_gap_up_through_stop_fills_at_open",
        "buy",
        105,
        [(107, 108, 106, 107, 1e6)],
        [(1, 10, 107.0)],
    ),
    ("buy_open_exactly_at_stop", "buy", 105, [(105, 106, 104, 105, 1e6)], [(1, 10, 105.0)]),
    ("buy_intrabar_fills_at_stop", "buy", 105, [(103, 106, 102, 105.5, 1e6)], [(1, 10, 105.0)]),
    ("buy_high_touches_stop_exactly", "buy", 105, [(103, 105, 102, 104, 1e6)], [(1, 10, 105.0)]),
    ("buy_high_just_below_stop", "buy", 105, [(103, 104.99, 102, 104, 1e6)], []),
    ("buy_gap_down_away", "buy", 105, [(95, 97, 94, 96, 1e6)], []),
    (
        "sell_gap_down_through_stop_fills_at_open",
        "sell",
        95,
        [(92, 93, 91, 92, 1e6)],
        [(1, 10, 92.0)],
    ),
    ("sell_intrabar_fills_at_stop", "sell", 95, [(97, 98, 94, 96, 1e6)], [(1, 10, 95.0)]),
    ("sell_low_touches_stop_exactly", "sell", 95, [(97, 98, 95, 96, 1e6)], [(1, 10, 95.0)]),
    ("sell_low_just_above_stop", "sell", 95, [(97, 98, 95.01, 96, 1e6)], []),
    (
        "sell_triggers_on_a_later_bar",
        "sell",
        95,
        [(99, 101, 96, 97, 1e6), (96, 96, 90, 91, 1e6)],
        [(2, 10, 95.0)],
    ),
]


@pytest.mark.parametrize(("side", "stop", "bars", "expected"), table(CASES))
def test_stop_order(side, stop, bars, expected) -> None:
    capture, _ = simulate([flat(100), *bars], [order("o1", side, 10, kind="stop", stop_price=stop)])
    assert fills_of(capture) == expected


def test_triggered_stop_fills_its_remainder_at_later_opens() -> None:
    # 10 % of volume per bar: the triggering bar fills 100 at the stop, the rest goes
    # out at the next opens like a market order, even though price came back
    bars = [
        flat(100),
        (103, 106, 102, 105, 1000),
        (104, 104, 101, 102, 1000),
        (99, 100, 98, 99, 1e6),
    ]
    capture, _ = simulate(
        bars, [order("o1", "buy", 250, kind="stop", stop_price=105)], BrokerConfig(volume_limit=0.1)
    )
    assert fills_of(capture) == [(1, 100, 105.0), (2, 100, 104.0), (3, 50, 99.0)]
    assert capture.of_type(OrderFilled)[-1].remaining_quantity == 0.0
