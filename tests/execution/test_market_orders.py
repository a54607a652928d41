"""Market orders: filled at the open of the symbol's next bar, gaps and all."""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderFilled
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.topics import MARKET, ORDERS_APPROVED
from tests.execution._market import batch, day, fills_of, flat, order, run, simulate, table

CASES = [
    # id, side, bars after the order's bar (o, h, l, c, v), expected (bar, qty, price)
    ("next_open", "buy", [(101, 103, 99, 102, 1e6)], [(1, 100, 101.0)]),
    ("gap_up", "buy", [(110, 112, 109, 111, 1e6)], [(1, 100, 110.0)]),
    ("gap_down", "buy", [(90, 91, 88, 89, 1e6)], [(1, 100, 90.0)]),
    ("sell_next_open", "sell", [(99, 100, 97, 98, 1e6)], [(1, 100, 99.0)]),
    ("sell_gap_down", "sell", [(80, 82, 79, 81, 1e6)], [(1, 100, 80.0)]),
]


@pytest.mark.parametrize(("side", "bars", "expected"), table(CASES))
def test_market_order_fills_at_the_next_bars_open(side, bars, expected) -> None:
    capture, _ = simulate([flat(100), *bars], [order("o1", side, 100)])
    assert fills_of(capture) == expected


def test_market_order_never_fills_on_the_bar_it_was_submitted_after() -> None:
    capture, broker = simulate([flat(100)], [order("o1", "buy", 100)])
    assert capture.of_type(OrderFilled) == []
    assert broker.book.get("o1").is_open


PARTIAL = [
    # volume_limit, quantity, volumes of bars 1.., expected fills
    (0.1, 250, [1000, 1000, 1000], [(1, 100, 101.0), (2, 100, 102.0), (3, 50, 103.0)]),
    (0.5, 250, [100, 0, 1000], [(1, 50, 101.0), (3, 200, 103.0)]),
    (0.1, 100, [1000], [(1, 100, 101.0)]),
]


@pytest.mark.parametrize(("limit", "qty", "volumes", "expected"), PARTIAL)
def test_volume_limit_gives_partial_fills_that_carry_over(limit, qty, volumes, expected) -> None:
    bars = [(101 + i, 110 + i, 90 + i, 105 + i, v) for i, v in enumerate(volumes)]
    capture, broker = simulate(
        [flat(100), *bars], [order("o1", "buy", qty)], BrokerConfig(volume_limit=limit)
    )
    assert fills_of(capture) == expected
    fills = capture.of_type(OrderFilled)
    assert [f.remaining_quantity for f in fills][-1] == 0.0
    assert sum(f.quantity for f in fills) == qty
    assert not broker.book.get("o1").is_open


def test_volume_limit_is_shared_by_the_orders_of_one_symbol_on_a_bar() -> None:
    capture, _ = simulate(
        [flat(100), (101, 102, 100, 101, 1000), (102, 103, 101, 102, 1000)],
        [order("o1", "buy", 80), order("o2", "buy", 80)],
        BrokerConfig(volume_limit=0.1),
    )
    fills = [(f.order_id, f.ts_event, f.quantity) for f in capture.of_type(OrderFilled)]
    assert fills == [("o1", day(1), 80.0), ("o2", day(1), 20.0), ("o2", day(2), 60.0)]


def test_market_order_waits_for_a_bar_of_its_own_symbol() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDERS_APPROVED, order("o1", "buy", 10, symbol="AAA")),
        (day(1), MARKET, batch(day(1), {"BBB": flat(51)})),  # no AAA bar
        (day(2), MARKET, batch(day(2), {"AAA": (103, 104, 102, 103, 1e6), "BBB": flat(52)})),
    ]
    capture = run(steps, SimulatedBroker())
    assert fills_of(capture) == [(2, 10, 103.0)]


def test_fills_carry_ids_strategy_and_remaining_quantity() -> None:
    capture, _ = simulate(
        [flat(100), (101, 102, 100, 101, 1000), (102, 103, 101, 102, 1000)],
        [order("o1", "buy", 150, strategy_id="alpha", reason="signal")],
        BrokerConfig(volume_limit=0.1),
    )
    first, second = capture.of_type(OrderFilled)
    assert (first.fill_id, first.remaining_quantity) == ("o1.1", 50.0)
    assert (second.fill_id, second.remaining_quantity) == ("o1.2", 0.0)
    assert {f.strategy_id for f in (first, second)} == {"alpha"}
    assert {f.reason for f in (first, second)} == {"signal"}
