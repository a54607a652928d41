"""Brackets: an entry whose fills place a stop-loss and a take-profit, one-cancels-other.

The children (``<id>.sl``, a stop; ``<id>.tp``, a limit) are placed when the entry first
fills, sized to the filled quantity, and may trade from the next bar. When both could
fill inside one bar, the stop-loss wins unless the open already satisfied the
take-profit.
"""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderAccepted, OrderCancelled, OrderFilled, OrderUpdated
from ml4t.backtest.execution import BrokerConfig
from tests.execution._market import flat, order, simulate, table


def _fills(capture):
    return [(f.order_id, round(f.price, 10), f.quantity) for f in capture.of_type(OrderFilled)]


def _cancelled(capture):
    return [(c.order_id, c.reason) for c in capture.of_type(OrderCancelled)]


ENTRY = (100, 101, 99.5, 100.5, 1e6)  # bar 1: a long market entry fills at 100

CASES = [
    # id, bar 2, expected fills after the entry, expected cancellations
    (
        "take_profit_fills_and_cancels_the_stop",
        (101, 111, 99, 110, 1e6),
        [("o1.tp", 110.0, 10)],
        [("o1.sl", "one-cancels-other: o1.tp filled")],
    ),
    (
        "stop_loss_fills_and_cancels_the_take_profit",
        (99, 100, 94, 95, 1e6),
        [("o1.sl", 95.0, 10)],
        [("o1.tp", "one-cancels-other: o1.sl filled")],
    ),
    (
        "both_inside_one_bar_the_stop_wins",
        (100, 111, 94, 100, 1e6),
        [("o1.sl", 95.0, 10)],
        [("o1.tp", "one-cancels-other: o1.sl filled")],
    ),
    (
        "gap_up_through_take_profit_fills_it_at_the_open",
        (112, 113, 94, 100, 1e6),
        [("o1.tp", 112.0, 10)],
        [("o1.sl", "one-cancels-other: o1.tp filled")],
    ),
    (
        "gap_down_through_stop_fills_it_at_the_open",
        (93, 111, 92, 100, 1e6),
        [("o1.sl", 93.0, 10)],
        [("o1.tp", "one-cancels-other: o1.sl filled")],
    ),
    (
        "touch_take_profit_exactly",
        (101, 110, 99, 109, 1e6),
        [("o1.tp", 110.0, 10)],
        [("o1.sl", "one-cancels-other: o1.tp filled")],
    ),
    ("neither", (101, 109, 96, 100, 1e6), [], []),
]


@pytest.mark.parametrize(("bar2", "exits", "cancels"), table(CASES))
def test_long_bracket(bar2, exits, cancels) -> None:
    entry = order("o1", "buy", 10, stop_loss=95.0, take_profit=110.0)
    capture, broker = simulate([flat(100), ENTRY, bar2], [entry])
    assert _fills(capture) == [("o1", 100.0, 10), *exits]
    assert _cancelled(capture) == cancels
    accepted = [e.order_id for e in capture.of_type(OrderAccepted)]
    assert accepted == ["o1", "o1.sl", "o1.tp"]
    assert broker.book.get("o1.sl").reason == "stop_loss"
    if exits:
        assert capture.of_type(OrderFilled)[-1].reason == exits[0][0].split(".")[1].replace(
            "sl", "stop_loss"
        ).replace("tp", "take_profit")


def test_children_cannot_fill_on_the_entrys_bar() -> None:
    # the entry bar reaches both levels, but the children only exist from its end
    entry = order("o1", "buy", 10, stop_loss=95.0, take_profit=110.0)
    capture, broker = simulate([flat(100), (100, 111, 94, 100, 1e6)], [entry])
    assert _fills(capture) == [("o1", 100.0, 10)]
    assert broker.book.get("o1.sl").is_open and broker.book.get("o1.tp").is_open


def test_short_bracket_stop_above_take_profit_below() -> None:
    entry = order("o1", "sell", 10, stop_loss=105.0, take_profit=90.0)
    capture, _ = simulate([flat(100), ENTRY, (100, 106, 89, 95, 1e6)], [entry])
    assert _fills(capture) == [("o1", 100.0, 10), ("o1.sl", 105.0, 10)]
    assert _cancelled(capture) == [("o1.tp", "one-cancels-other: o1.sl filled")]


def test_limit_entry_bracket_waits_for_the_entry() -> None:
    entry = order(
        "o1", "buy", 10, kind="limit", limit_price=98.0, stop_loss=95.0, take_profit=110.0
    )
    bars = [flat(100), (100, 101, 99, 100, 1e6), (99, 99, 97, 98, 1e6), (100, 111, 99, 110, 1e6)]
    capture, _ = simulate(bars, [entry])
    assert _fills(capture) == [("o1", 98.0, 10), ("o1.tp", 110.0, 10)]


def test_children_are_sized_to_the_entrys_fills_and_grow_with_them() -> None:
    # 10 % of 1000 per bar: the entry fills 100 on bar 1 and 100 on bar 2
    entry = order("o1", "buy", 200, stop_loss=90.0, take_profit=120.0)
    bars = [flat(100), (100, 101, 99, 100, 1000), (101, 102, 100, 101, 1000)]
    capture, broker = simulate(bars, [entry], BrokerConfig(volume_limit=0.1))
    assert _fills(capture) == [("o1", 100.0, 100), ("o1", 101.0, 100)]
    grown = [(u.order_id, u.quantity) for u in capture.of_type(OrderUpdated)]
    assert grown == [("o1.sl", 200.0), ("o1.tp", 200.0)]
    assert broker.book.get("o1.sl").quantity == 200.0


def test_partial_exit_shrinks_the_sibling() -> None:
    entry = order("o1", "buy", 100, stop_loss=90.0, take_profit=110.0)
    bars = [
        flat(100),
        (100, 101, 99, 100, 1e6),  # entry 100 @ 100 (volume is plenty)
        (105, 111, 104, 110, 400),  # tp fills 40 of 100 (10 % of 400)
        (100, 101, 89, 90, 1e6),  # sl fills the remaining 60
    ]
    capture, broker = simulate(bars, [entry], BrokerConfig(volume_limit=0.1))
    assert _fills(capture) == [("o1", 100.0, 100), ("o1.tp", 110.0, 40), ("o1.sl", 90.0, 60)]
    resized = [(u.order_id, u.quantity) for u in capture.of_type(OrderUpdated)]
    assert resized == [("o1.sl", 60.0)]  # the filled stop then cancels the rest of the tp
    assert not broker.book.get("o1.tp").is_open
    assert [c.order_id for c in capture.of_type(OrderCancelled)] == ["o1.tp"]


def test_unfilled_entry_places_no_children() -> None:
    entry = order("o1", "buy", 10, kind="limit", limit_price=90.0, stop_loss=85.0, take_profit=95.0)
    capture, broker = simulate([flat(100), (100, 101, 95, 96, 1e6)], [entry])
    assert _fills(capture) == []
    assert broker.book.get("o1.sl") is None


def test_a_take_profit_win_does_not_trigger_the_stop_it_beat() -> None:
    # bar 2 gaps through the take-profit while its low also reaches the stop; the tp
    # fills only 40 (volume), so the stop stays open and must not turn into a market order
    entry = order("o1", "buy", 100, stop_loss=90.0, take_profit=110.0)
    bars = [
        flat(100),
        (100, 101, 99, 100, 1e6),
        (112, 113, 89, 100, 400),
        (100, 101, 99, 100, 1e6),
    ]
    capture, broker = simulate(bars, [entry], BrokerConfig(volume_limit=0.1))
    assert _fills(capture) == [("o1", 100.0, 100), ("o1.tp", 112.0, 40)]
    assert broker.book.get("o1.sl").is_open and not broker.book.get("o1.sl").triggered
