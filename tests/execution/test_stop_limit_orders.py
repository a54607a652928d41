"""Stop-limit orders: a stop that, once triggered, becomes a limit order."""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderUpdated
from tests.execution._market import fills_of, flat, order, simulate, table

CASES = [
    # id, side, stop, limit, bars after the order's bar, expected fills (bar, qty, price)
    ("buy_not_triggered", "buy", 105, 106, [(103, 104, 102, 103, 1e6)], []),
    (
        "buy_intrabar_trigger_fills_at_stop",
        "buy",
        105,
        106,
        [(103, 107, 102, 106, 1e6)],
        [(1, 10, 105.0)],
    ),
    (
        "buy_touch_exactly_triggers_and_fills",
        "buy",
        105,
        106,
        [(103, 105, 102, 104, 1e6)],
        [(1, 10, 105.0)],
    ),
    (
        "buy_gap_trigger_within_limit_fills_at_open",
        "buy",
        105,
        106,
        [(105.5, 107, 105, 106, 1e6)],
        [(1, 10, 105.5)],
    ),
    (
        "buy_gap_above_limit_waits_then_fills_at_limit",
        "buy",
        105,
        106,
        [(108, 109, 107, 108, 1e6), (107, 108, 105.5, 106, 1e6)],
        [(2, 10, 106.0)],
    ),
    (
        "buy_gap_above_limit_fills_when_the_bar_comes_back",
        "buy",
        105,
        106,
        [(108, 109, 105, 106, 1e6)],
        [(1, 10, 106.0)],
    ),
    (
        # limit below the stop: the bar's low may predate the trigger, so no fill on the
        # trigger bar; from the next bar it is a plain limit order at 104
        "buy_limit_below_stop_waits_for_the_next_bar",
        "buy",
        105,
        104,
        [(103, 106, 102, 105, 1e6), (105, 105, 103.5, 104, 1e6)],
        [(2, 10, 104.0)],
    ),
    (
        "sell_intrabar_trigger_fills_at_stop",
        "sell",
        95,
        94,
        [(97, 98, 93, 94, 1e6)],
        [(1, 10, 95.0)],
    ),
    (
        "sell_gap_trigger_within_limit_fills_at_open",
        "sell",
        95,
        94,
        [(94.5, 95, 93, 94, 1e6)],
        [(1, 10, 94.5)],
    ),
    ("sell_gap_below_limit_no_fill", "sell", 95, 94, [(92, 93.5, 91, 92, 1e6)], []),
    ("sell_low_touches_stop_exactly", "sell", 95, 94, [(97, 98, 95, 96, 1e6)], [(1, 10, 95.0)]),
]


@pytest.mark.parametrize(("side", "stop", "limit", "bars", "expected"), table(CASES))
def test_stop_limit_order(side, stop, limit, bars, expected) -> None:
    request = order("o1", side, 10, kind="stop_limit", stop_price=stop, limit_price=limit)
    capture, _ = simulate([flat(100), *bars], [request])
    assert fills_of(capture) == expected


def test_trigger_is_published_as_an_update() -> None:
    request = order("o1", "buy", 10, kind="stop_limit", stop_price=105, limit_price=104)
    capture, broker = simulate([flat(100), (103, 106, 102, 105, 1e6)], [request])
    (update,) = capture.of_type(OrderUpdated)
    assert update.triggered and update.order_id == "o1" and update.stop_price == 105
    assert broker.book.get("o1").is_open
