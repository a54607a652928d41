"""The quick check of a well-formed request never changes ``invalid_submit``'s answer:
on requests with fields of every kind (right, wrong, subclassed, empty), the answer with
it equals the answer of the per-field checks alone."""

from __future__ import annotations

import enum
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest import _validation
from ml4t.backtest.events import OrderSide, OrderType, SubmitOrder, TimeInForce


class Text(str):
    """A str subclass: well-formed to the per-field checks, not of the exact type."""


class Flag(enum.IntEnum):
    ON = 1


GOOD: dict[str, Any] = {
    "order_id": "o-1",
    "strategy_id": "s",
    "symbol": "AAA",
    "side": OrderSide.BUY,
    "order_type": OrderType.LIMIT,
    "time_in_force": TimeInForce.DAY,
    "quantity": 10.0,
    "reduce_only": False,
    "parent_id": None,
    "reason": "signal",
    "limit_price": 100.0,
    "stop_price": None,
}
TEXT_BAD = [
    "",
    Text("AAA"),
    Text(""),
    3,
    b"AAA",
    None,
]  # a subclass is well-formed to the per-field checks, not to the quick one
BAD: dict[str, list[Any]] = {
    "order_id": TEXT_BAD,
    "strategy_id": TEXT_BAD,
    "symbol": TEXT_BAD,
    "side": ["buy", 1, None],
    "order_type": ["limit", OrderType.MARKET, OrderType.STOP],
    "time_in_force": ["DAY", 0],
    "quantity": [1, 0.0, -5.0, float("nan"), True],
    "reduce_only": [0, 1, Flag.ON, None, "no"],
    "parent_id": ["", Text("p"), 7, b"p"],
    "reason": ["", Text("r"), 7],
    "limit_price": [None, -1.0, 0, float("inf")],
    "stop_price": [99.0, 0.0, -1.0],
}


@st.composite
def requests(draw: st.DrawFn) -> SubmitOrder:
    """A well-formed limit order with none, one or two of its fields broken."""
    broken = draw(st.lists(st.sampled_from(sorted(BAD)), max_size=2, unique=True))
    fields = dict(GOOD)
    for name in broken:
        fields[name] = draw(st.sampled_from(BAD[name]))
    return SubmitOrder(ts_event=1, ts_init=1, **fields)  # built without the codec


def per_field_answer(order: SubmitOrder, monkeypatch: pytest.MonkeyPatch) -> str | None:
    with monkeypatch.context() as patched:
        patched.setattr(_validation, "_well_typed", lambda order: False)
        return _validation.invalid_submit(order)


@settings(max_examples=500, deadline=None)
@given(order=requests())
def test_the_quick_check_never_changes_the_answer(order: SubmitOrder) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        slow = per_field_answer(order, monkeypatch)
    assert _validation.invalid_submit(order) == slow
    if _validation._well_typed(order):
        assert _validation._bad_fields(order) is None


def test_a_request_from_the_codec_is_quick_and_well_formed() -> None:
    order = SubmitOrder(
        ts_event=1,
        ts_init=1,
        order_id="o-1",
        strategy_id="s",
        symbol="AAA",
        side=OrderSide.BUY,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.DAY,
        quantity=10.0,
        limit_price=100.0,
    )
    decoded = msgspec.json.decode(msgspec.json.encode(order), type=SubmitOrder)
    assert _validation._well_typed(decoded)
    assert _validation.invalid_submit(decoded) is None
