"""The execution knobs presets are made of, each on its own (docs/execution.md, §2, §3 and §6)."""

from __future__ import annotations

from typing import Any

import pytest

from ml4t.backtest import OrderCancelled, OrderFilled, OrderRejected
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker, slippage_model
from ml4t.backtest.execution._cash import affordable, within_cash
from ml4t.backtest.execution.costs import PercentCommission
from ml4t.backtest.execution.fills import group_winner
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED
from tests.execution._market import batch, day, fills_of, flat, order, run, simulate

BARS = [(99, 101, 98, 100, 1e6), (102, 104, 101, 103, 1e6), (103, 106, 100, 105, 1e6)]


def test_next_close_fills_a_market_order_at_the_next_bars_close() -> None:
    capture, _ = simulate(BARS, [order("o1", "buy", 10)], BrokerConfig(fill_timing="next_close"))
    assert fills_of(capture) == [(1, 10, 103.0)]


def test_intrabar_close_judges_a_stop_on_the_close_alone() -> None:
    stop = order("o1", "sell", 10, kind="stop", stop_price=101.5)
    # bar 1 trades down to 101 but closes at 103: no fill on the close alone
    bars = [*BARS[:2], (103, 104, 100, 101, 1e6)]
    capture, _ = simulate(bars, [stop], BrokerConfig(intrabar="close"))
    assert fills_of(capture) == [(2, 10, 101.0)]
    default, _ = simulate(bars, [stop])
    assert fills_of(default) == [(1, 10, 101.5)]


@pytest.mark.parametrize(
    ("rule", "price"), [("open_or_level", 97.0), ("level", 99.0), ("extreme", 95.0)]
)
def test_stop_fill_rule_prices_a_gapped_sell_stop(rule: str, price: float) -> None:
    stop = order("o1", "sell", 10, kind="stop", stop_price=99.0)
    bars = [flat(100), (97, 98, 95, 96, 1e6)]
    capture, _ = simulate(bars, [stop], BrokerConfig(stop_fill=rule))  # type: ignore[arg-type]
    assert fills_of(capture) == [(1, 10, price)]


GAP_BOTH = (112, 113, 94, 100, 1e6)  # opens above the take-profit, then trades through the stop


@pytest.mark.parametrize(
    ("rule", "winner", "price"),
    [("open_then_pessimistic", "o1.tp", 112.0), ("stops_first", "o1.sl", 95.0)],
)
def test_exit_conflict_decides_a_bar_that_could_fill_both_children(
    rule: str, winner: str, price: float
) -> None:
    entry = order("o1", "buy", 10, stop_loss=95.0, take_profit=110.0)
    capture, _ = simulate(
        [flat(100), flat(100), GAP_BOTH],
        [entry],
        BrokerConfig(exit_conflict=rule),  # type: ignore[arg-type]
    )
    exits = [(f.order_id, f.price) for f in capture.of_type(OrderFilled)][1:]
    assert exits == [(winner, price)]


def test_orders_sharing_a_parent_id_cancel_each_other() -> None:
    stop = order("x1", "sell", 10, kind="stop", stop_price=99.0, parent_id="grp")
    trail = order(
        "x2",
        "sell",
        10,
        kind="trailing_stop",
        trail_percent=0.05,
        stop_price=90.0,
        parent_id="grp",
    )
    capture, broker = simulate([flat(100), (100, 101, 98, 99, 1e6), flat(80)], [stop, trail])
    assert fills_of(capture) == [(1, 10, 99.0)]
    cancelled = capture.of_type(OrderCancelled)
    assert [(c.order_id, c.reason) for c in cancelled] == [("x2", "one-cancels-other: x1 filled")]
    assert not broker.book.open_by_code


def test_trailing_stop_with_a_close_watermark_follows_closes_not_highs() -> None:
    trail = order("t1", "sell", 10, kind="trailing_stop", trail_amount=5.0, stop_price=95.0)
    bars = [flat(100), (100, 120, 99, 104, 1e6), (104, 105, 98.5, 100, 1e6)]
    by_close, _ = simulate(bars, [trail], BrokerConfig(trail_watermark="close"))
    assert fills_of(by_close) == [(2, 10, 99.0)]  # the stop moved to 104 - 5 = 99
    by_high, _ = simulate(bars, [trail])
    assert fills_of(by_high) == [(2, 10, 104.0)]  # moved to 120 - 5 = 115: gapped, the open


def test_trail_update_before_check_lets_the_bars_own_high_move_the_stop_first() -> None:
    trail = order("t1", "sell", 10, kind="trailing_stop", trail_amount=5.0, stop_price=95.0)
    bars = [flat(100), (100, 110, 104, 106, 1e6)]
    before, _ = simulate(bars, [trail], BrokerConfig(trail_update="before_check"))
    assert fills_of(before) == [(1, 10, 105.0)]
    after, _ = simulate(bars, [trail])
    assert fills_of(after) == []


def test_slippage_fills_market_leaves_stop_and_limit_fills_at_their_rule_price() -> None:
    slip = {"slippage": {"model": "percent", "params": {"rate": 0.01}}}
    config = BrokerConfig(slippage_fills="market", **_costs(slip))
    stop = order("s1", "sell", 10, kind="stop", stop_price=99.0)
    market = order("m1", "buy", 10)
    capture, _ = simulate([flat(100), (100, 101, 98, 99, 1e6)], [market, stop], config)
    assert sorted(fills_of(capture)) == [(1, 10, 99.0), (1, 10, 101.0)]


def test_except_limit_price_slips_a_gapped_limit_no_further_than_its_limit() -> None:
    config = BrokerConfig(
        slippage_fills="except_limit_price",
        **_costs({"slippage": {"model": "percent", "params": {"rate": 0.05}}}),
    )
    at_limit = order("l1", "sell", 10, kind="limit", limit_price=101.0)
    gapped = order("l2", "sell", 10, kind="limit", limit_price=101.0)
    one, _ = simulate([flat(100), (100, 102, 99, 101, 1e6)], [at_limit], config)
    two, _ = simulate([flat(100), (104, 105, 103, 104, 1e6)], [gapped], config)
    assert fills_of(one) == [(1, 10, 101.0)]  # at its limit: no slippage
    assert fills_of(two) == [(1, 10, 101.0)]  # 104 slipped 5 % = 98.8, held at the limit


def test_slippage_cap_bar_keeps_a_slipped_price_inside_the_bar() -> None:
    config = BrokerConfig(
        slippage_cap="bar", **_costs({"slippage": {"model": "fixed", "params": {"amount": 3.0}}})
    )
    capture, _ = simulate([flat(100), (100, 101, 99, 100, 1e6)], [order("m1", "buy", 10)], config)
    assert fills_of(capture) == [(1, 10, 101.0)]


def _costs(spec: dict[str, Any]) -> dict[str, Any]:
    from ml4t.backtest.execution import SlippageConfig

    return {"slippage": SlippageConfig(**spec["slippage"])}


def _with_account(config: BrokerConfig, requests: list[Any], bars: list[Any], cash: float) -> Any:
    """Bars 0..n with ``requests`` routed after bar 0, a portfolio holding ``cash``."""
    steps: list[Any] = []
    for i, bar in enumerate(bars):
        steps.append((day(i), MARKET, batch(day(i), {"AAA": bar})))
        if i == 0:
            steps.extend((day(0), ORDERS_APPROVED, r) for r in requests)
    broker = SimulatedBroker(config)
    portfolio = Portfolio(PortfolioConfig(initial_cash=cash))
    return run(steps, broker, portfolio, topics=(FILLS, ORDER_EVENTS))


def test_insufficient_cash_reject_cancels_a_buy_the_cash_cannot_pay() -> None:
    capture = _with_account(
        BrokerConfig(insufficient_cash="reject"),
        [order("o1", "buy", 10), order("o2", "buy", 10)],
        [flat(100), flat(100)],
        cash=1_500.0,
    )
    assert [f.order_id for f in capture.of_type(OrderFilled)] == ["o1"]
    (cancel,) = capture.of_type(OrderCancelled)
    assert cancel.order_id == "o2"
    assert cancel.reason.startswith("insufficient cash")


@pytest.mark.parametrize(("rounding", "qty"), [("fractional", 5.0), ("integer", 4.0)])
def test_insufficient_cash_resize_fills_what_the_cash_affords(rounding: str, qty: float) -> None:
    capture = _with_account(
        BrokerConfig(insufficient_cash="resize", share_rounding=rounding),  # type: ignore[arg-type]
        [order("o1", "buy", 10), order("o2", "buy", 10)],
        [flat(100), flat(100)],
        cash=1_500.0 if rounding == "fractional" else 1_450.0,
    )
    fills = capture.of_type(OrderFilled)
    assert [(f.order_id, f.quantity) for f in fills] == [("o1", 10.0), ("o2", qty)]
    assert fills[-1].remaining_quantity == 0.0


def test_default_lets_the_ledger_go_negative() -> None:
    capture = _with_account(
        BrokerConfig(), [order("o1", "buy", 10), order("o2", "buy", 10)], [flat(100)] * 2, 1_500.0
    )
    assert len(capture.of_type(OrderFilled)) == 2


def test_submit_cash_check_rejects_at_acceptance_with_a_running_balance() -> None:
    capture = _with_account(
        BrokerConfig(submit_cash_check=True),
        [order("o1", "buy", 10), order("o2", "buy", 10), order("o3", "sell", 1)],
        [flat(100), flat(100)],
        cash=1_500.0,
    )
    # o2's cost stays in the running balance (backtrader's checksubmit): the sell of 1
    # (+100) still leaves it negative and is refused too
    rejected = capture.of_type(OrderRejected)
    assert [(r.order_id, r.rule) for r in rejected] == [
        ("o2", "insufficient_cash"),
        ("o3", "insufficient_cash"),
    ]
    assert [f.order_id for f in capture.of_type(OrderFilled)] == ["o1"]


def test_fill_order_accepted_matches_across_symbols_in_acceptance_order() -> None:
    requests = [order("b1", "buy", 1, symbol="BBB"), order("a1", "buy", 1, symbol="AAA")]
    steps: list[Any] = []
    for i in range(2):
        rows = {"AAA": flat(100), "BBB": flat(50)}
        steps.append((day(i), MARKET, batch(day(i), rows)))
        if i == 0:
            steps.extend((day(0), ORDERS_APPROVED, r) for r in requests)
    by_symbol = run(steps, SimulatedBroker())
    accepted = run(steps, SimulatedBroker(BrokerConfig(fill_order="accepted")))
    assert [f.order_id for f in by_symbol.of_type(OrderFilled)] == ["a1", "b1"]
    assert [f.order_id for f in accepted.of_type(OrderFilled)] == ["b1", "a1"]


def test_percent_and_fixed_slippage_models() -> None:
    percent = slippage_model("percent", {"rate": 0.001})
    fixed = slippage_model("fixed", {"amount": 0.05})
    assert percent.price(+1, 100.0, 1, 1e6, float("nan")) == 100.0 * 1.001
    assert percent.price(-1, 100.0, 1, 1e6, float("nan")) == 100.0 * (1 - 0.001)
    assert fixed.price(-1, 100.0, 1, 1e6, float("nan")) == 99.95


def test_percent_commission_per_order_fee_is_charged_once() -> None:
    model = PercentCommission(rate=0.001, per_order=1.0)
    first = model.commission(10, 100.0, 0.0, 0.0, 0.0)
    later = model.commission(10, 100.0, 10, 1_000.0, first)
    assert (first, later) == (2.0, 1.0)


def test_cash_helpers() -> None:
    assert within_cash(10, 10.0, 0.0, 100.0 - 1e-10)  # float noise: fits
    assert not within_cash(10, 10.0, 0.0, 100.0 - 1e-10, tolerant=False)
    q = affordable(100, 1_000.0, lambda q: 10.0, lambda q, p: 0.001 * q * p, integer=False)
    assert within_cash(q, 10.0, 0.001 * q * 10.0, 1_000.0) and q > 99.8
    assert affordable(100, 1e-12, lambda q: 10.0, lambda q, p: 0.0, integer=False) == 0.0


@pytest.mark.parametrize(
    ("kinds", "prices", "rule", "winner"),
    [
        # two sell stops inside the bar: the higher one is reached first from the open
        (["stop", "stop"], [95.0, 97.0], "open_then_pessimistic", 1),
        (["stop", "stop"], [95.0, 97.0], "stops_first", 0),
        # a stop gapped (fills at the open) beats a stop further down
        (["stop", "stop"], [95.0, 98.0], "open_then_pessimistic", 1),
        # nothing fills
        (["stop", "limit"], [float("nan"), float("nan")], "stops_first", None),
        # only the limit fills
        (["stop", "limit"], [float("nan"), 104.0], "open_then_pessimistic", 1),
    ],
)
def test_group_winner(kinds: list[str], prices: list[float], rule: str, winner: int | None) -> None:
    assert group_winner(-1, kinds, prices, 98.0, rule) == winner
