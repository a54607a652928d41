"""Cancel and replace: every answer is an event; a bad request is a rejection."""

from __future__ import annotations

import pytest

from ml4t.backtest import CancelOrder, ModifyOrder, OrderCancelled, OrderRejected, OrderUpdated
from ml4t.backtest.execution import BrokerConfig
from tests.execution._market import fills_of, flat, order, simulate, table

LIMIT = order("o1", "buy", 10, kind="limit", limit_price=95.0)
BARS = [flat(100), flat(99), (97, 98, 94, 96, 1e6), (96, 97, 93, 95, 1e6)]


def cancel(order_id: str = "o1", strategy_id: str = "s1") -> CancelOrder:
    return CancelOrder(ts_event=0, order_id=order_id, strategy_id=strategy_id)


def modify(order_id: str = "o1", strategy_id: str = "s1", **changes: float) -> ModifyOrder:
    return ModifyOrder(ts_event=0, order_id=order_id, strategy_id=strategy_id, **changes)


def test_cancel_removes_an_open_order_before_it_fills() -> None:
    capture, broker = simulate(BARS, [LIMIT], later=[(1, cancel())])
    assert fills_of(capture) == []
    (cancelled,) = capture.of_type(OrderCancelled)
    assert (cancelled.order_id, cancelled.reason) == ("o1", "cancelled by request")
    assert [status for _, status in broker.book.get("o1").history] == ["accepted", "cancelled"]


def test_modify_moves_the_limit_and_the_order_fills_at_the_new_price() -> None:
    capture, _ = simulate(BARS, [LIMIT], later=[(1, modify(limit_price=97.5))])
    (update,) = capture.of_type(OrderUpdated)
    assert (update.limit_price, update.quantity) == (97.5, 10.0)
    assert fills_of(capture) == [(2, 10, 97.0)]  # opened at 97, better than 97.5


def test_modify_quantity_of_a_partially_filled_order() -> None:

    bars = [flat(100), (100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000)]
    capture, broker = simulate(
        bars,
        [order("o1", "buy", 300)],
        BrokerConfig(volume_limit=0.1),
        later=[(1, modify(quantity=150.0))],
    )
    assert capture.of_type(OrderCancelled) == []
    assert fills_of(capture) == [(1, 100, 100.0), (2, 50, 100.0)]
    assert broker.book.get("o1").status == "filled"


REJECTED = [
    # id, request routed after bar 1, rule, words in the reason
    ("cancel_unknown_order", cancel("nope"), "unknown_order", "has no such order"),
    (
        "cancel_other_strategys_order",
        cancel(strategy_id="s2"),
        "wrong_strategy",
        "belongs to strategy 's1'",
    ),
    ("modify_unknown_order", modify("nope", limit_price=1.0), "unknown_order", "'nope'"),
    (
        "modify_nan_price",
        modify(limit_price=float("nan")),
        "invalid_order",
        "limit_price must be finite",
    ),
    (
        "modify_negative_quantity",
        modify(quantity=-1.0),
        "invalid_order",
        "quantity must be positive",
    ),
    ("modify_nothing", modify(), "invalid_order", "changes nothing"),
    ("modify_stop_of_a_limit_order", modify(stop_price=90.0), "invalid_order", "has no stop price"),
]


@pytest.mark.parametrize(("request_", "rule", "words"), table(REJECTED))
def test_bad_cancel_or_modify_is_rejected_and_the_order_is_untouched(request_, rule, words) -> None:
    # in-process (a strict bus refuses non-finite numbers at the publish call)
    capture, _ = simulate(BARS, [LIMIT], later=[(1, request_)], strict=False)
    (rejected,) = capture.of_type(OrderRejected)
    assert rejected.rule == rule
    assert rejected.request in ("cancel", "modify")
    assert words in rejected.reason
    assert fills_of(capture) == [(2, 10, 95.0)]  # the original order still fills


def test_cancel_of_a_filled_order_is_rejected() -> None:
    capture, _ = simulate(
        [flat(100), flat(100), flat(100)], [order("o1", "buy", 1)], later=[(2, cancel())]
    )
    (rejected,) = capture.of_type(OrderRejected)
    assert (rejected.rule, rejected.symbol) == ("order_closed", "AAA")
    assert "already filled" in rejected.reason


def test_modify_quantity_below_filled_is_rejected() -> None:

    bars = [flat(100), (100, 100, 100, 100, 1000), (100, 100, 100, 100, 1000)]
    capture, _ = simulate(
        bars,
        [order("o1", "buy", 300)],
        BrokerConfig(volume_limit=0.1),
        later=[(1, modify(quantity=80.0))],
    )
    (rejected,) = capture.of_type(OrderRejected)
    assert "must exceed the 100 already filled" in rejected.reason


def test_modify_trailing_stop_resets_its_level() -> None:
    trail = order("o1", "sell", 10, kind="trailing_stop", trail_amount=5.0)
    bars = [flat(100), (100, 104, 99, 103, 1e6), (103, 104, 101.5, 102, 1e6)]
    capture, _ = simulate(bars, [trail], later=[(1, modify(stop_price=102.0))])
    assert fills_of(capture) == [(2, 10, 102.0)]
