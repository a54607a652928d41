"""Bad input never kills a run: a clear rejection event, no fill, no portfolio change."""

from __future__ import annotations

import math

import msgspec
import pytest

from ml4t.backtest import (
    OrderFilled,
    OrderRejected,
    PortfolioSnapshot,
    PositionChanged,
    RunOutcome,
    SubmitOrder,
)
from ml4t.backtest.execution import SimulatedBroker
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.risk import RiskConfig, RiskManager
from ml4t.backtest.testing import Capture, Script, run_components
from ml4t.backtest.topics import (
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    POSITIONS,
)
from tests.execution._market import batch, day, flat, order, table

NAN, INF = math.nan, math.inf


def raw(**fields: object) -> SubmitOrder:
    """A market buy of 1 AAA with fields replaced unchecked, as a plugin could build it."""
    return msgspec.structs.replace(order("b", "buy", 1), **fields)


BAD = [
    # id, order, rule, words in the reason
    ("zero_quantity", order("b", "buy", 0), "invalid_order", "quantity must be positive, got 0"),
    (
        "negative_quantity",
        order("b", "buy", -5),
        "invalid_order",
        "quantity must be positive, got -5",
    ),
    ("nan_quantity", order("b", "buy", NAN), "invalid_order", "quantity must be finite, got nan"),
    ("inf_quantity", order("b", "buy", INF), "invalid_order", "quantity must be finite, got inf"),
    ("minus_inf_quantity", order("b", "sell", -INF), "invalid_order", "must be finite, got -inf"),
    (
        "nan_limit_price",
        order("b", "buy", 1, kind="limit", limit_price=NAN),
        "invalid_order",
        "limit_price must be finite, got nan",
    ),
    (
        "zero_limit_price",
        order("b", "buy", 1, kind="limit", limit_price=0.0),
        "invalid_order",
        "limit_price must be positive, got 0.0",
    ),
    (
        "negative_stop_price",
        order("b", "sell", 1, kind="stop", stop_price=-3.0),
        "invalid_order",
        "stop_price must be positive, got -3.0",
    ),
    (
        "inf_stop_price",
        order("b", "sell", 1, kind="stop", stop_price=INF),
        "invalid_order",
        "stop_price must be finite",
    ),
    (
        "limit_without_price",
        order("b", "buy", 1, kind="limit"),
        "invalid_order",
        "needs limit_price",
    ),
    (
        "stop_limit_without_stop",
        order("b", "buy", 1, kind="stop_limit", limit_price=1.0),
        "invalid_order",
        "needs stop_price",
    ),
    (
        "market_with_limit_price",
        order("b", "buy", 1, limit_price=10.0),
        "invalid_order",
        "takes no limit_price",
    ),
    (
        "trailing_without_trail",
        order("b", "sell", 1, kind="trailing_stop"),
        "invalid_order",
        "exactly one of trail_amount and trail_percent",
    ),
    (
        "trail_percent_not_a_fraction",
        order("b", "sell", 1, kind="trailing_stop", trail_percent=5.0),
        "invalid_order",
        "fraction below 1",
    ),
    (
        "nan_stop_loss",
        order("b", "buy", 1, stop_loss=NAN),
        "invalid_order",
        "stop_loss must be finite",
    ),
    (
        "bracket_upside_down",
        order("b", "buy", 1, stop_loss=110.0, take_profit=90.0),
        "invalid_order",
        "stop_loss below take_profit",
    ),
    (
        "bracket_stop_above_limit",
        order("b", "buy", 1, kind="limit", limit_price=100.0, stop_loss=101.0),
        "invalid_order",
        "stop_loss below the limit price",
    ),
    ("unknown_symbol", order("b", "buy", 1, symbol="ZZZ"), "unknown_symbol", "'ZZZ'"),
    ("empty_symbol", order("b", "buy", 1, symbol=""), "invalid_order", "symbol is empty"),
    # fields of the wrong type: a request built in Python is not type-checked by msgspec
    ("symbol_not_text", raw(symbol=123), "invalid_order", "symbol must be a string, got 123"),
    ("quantity_text", raw(quantity="ten"), "invalid_order", "quantity must be a number"),
    ("quantity_bool", raw(quantity=True), "invalid_order", "quantity must be a number"),
    ("side_hold", raw(side="hold"), "invalid_order", "side must be one of ['buy', 'sell']"),
    ("tif_text", raw(time_in_force="week"), "invalid_order", "time_in_force must be one of"),
    ("order_type_text", raw(order_type="iceberg"), "invalid_order", "order_type must be one of"),
    ("reduce_only_text", raw(reduce_only="yes"), "invalid_order", "reduce_only must be True"),
    ("reason_number", raw(reason=7), "invalid_order", "reason must be a string"),
    ("dust_quantity", order("b", "buy", 1e-12), "invalid_order", "below the minimum order"),
]


@pytest.mark.parametrize(("bad", "rule", "words"), table(BAD))
def test_broker_rejects_bad_orders_with_a_reason(bad, rule, words) -> None:
    capture = Capture(FILLS, ORDER_EVENTS)
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDERS_APPROVED, bad),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100)})),
    ]
    # in-process delivery, as a plugin component's request travels (a strict bus, which
    # round-trips through the codec, refuses non-finite numbers at the publish call)
    runtime = run_components(SimulatedBroker(), Script(steps), capture, strict=False)
    assert runtime.outcome is RunOutcome.COMPLETED
    (rejected,) = capture.events
    assert isinstance(rejected, OrderRejected)
    assert (rejected.order_id, rejected.rule) == ("b", rule)
    assert words in rejected.reason


@pytest.mark.parametrize(("bad", "rule", "words"), table(BAD))
def test_risk_rejects_bad_orders_first_and_the_portfolio_never_changes(bad, rule, words) -> None:
    capture = Capture(FILLS, ORDER_EVENTS, POSITIONS, PORTFOLIO, ORDERS_APPROVED)
    good = order("g", "buy", 5, symbol="BBB")
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDER_REQUESTS, bad),
        (day(0), ORDER_REQUESTS, good),
        (day(1), MARKET, batch(day(1), {"AAA": flat(101), "BBB": flat(50)})),
        (day(2), MARKET, batch(day(2), {"AAA": flat(102), "BBB": flat(50)})),
    ]
    portfolio = Portfolio(PortfolioConfig(initial_cash=10_000.0, check_invariants=True))
    runtime = run_components(
        RiskManager(RiskConfig()),
        SimulatedBroker(),
        portfolio,
        Script(steps),
        capture,
        strict=False,
    )
    assert runtime.outcome is RunOutcome.COMPLETED
    rejected = capture.of_type(OrderRejected)
    assert [(r.order_id, r.rule) for r in rejected] == [("b", rule)]
    assert words in rejected[0].reason
    approved = [e.order_id for e in capture.on_topic(ORDERS_APPROVED)]
    assert approved == ["g"]  # the bad order never reached the broker
    assert {f.order_id for f in capture.of_type(OrderFilled)} == {"g"}
    assert {p.symbol for p in capture.of_type(PositionChanged)} == {"BBB"}
    assert portfolio.position("AAA") == 0.0
    assert portfolio.cash == 10_000.0 - 5 * 50.0
    assert all(s.equity == 10_000.0 for s in capture.of_type(PortfolioSnapshot))


def test_orders_before_any_market_data_are_rejected_not_raised() -> None:
    capture = Capture(ORDER_EVENTS)
    steps = [(day(0), ORDERS_APPROVED, order("early", "buy", 1))]
    runtime = run_components(SimulatedBroker(), Script(steps), capture)
    assert runtime.outcome is RunOutcome.COMPLETED
    (rejected,) = capture.events
    assert rejected.rule == "unknown_symbol"
    assert "no market data has been seen yet" in rejected.reason


def test_duplicate_order_id_is_rejected() -> None:
    capture = Capture(ORDER_EVENTS, FILLS)
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDERS_APPROVED, order("o1", "buy", 1)),
        (day(0), ORDERS_APPROVED, order("o1", "buy", 2)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100)})),
    ]
    run_components(SimulatedBroker(), Script(steps), capture)
    (rejected,) = capture.of_type(OrderRejected)
    assert rejected.rule == "duplicate_order_id"
    assert [f.quantity for f in capture.of_type(OrderFilled)] == [1.0]


def test_bracket_child_ids_are_reserved() -> None:
    capture = Capture(ORDER_EVENTS)
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDERS_APPROVED, order("x.sl", "buy", 1)),
    ]
    run_components(SimulatedBroker(), Script(steps), capture)
    (rejected,) = capture.events
    assert rejected.rule == "invalid_order"
    assert "reserved for the children of bracket orders" in rejected.reason
