"""Each risk rule, accepting and rejecting, with the reason text (pure, no bus)."""

from __future__ import annotations

import pytest

from ml4t.backtest.risk import RiskConfig, evaluate
from ml4t.backtest.risk import rules as r
from tests.execution._market import order, table
from tests.risk._views import make_view

CASES = [
    # id, rule, config, view kwargs, order, expected None or (rule, reason fragment)
    ("valid_accept", r.check_valid, {}, {}, order("o", "buy", 1), None),
    (
        "valid_reject_zero",
        r.check_valid,
        {},
        {},
        order("o", "buy", 0),
        ("invalid_order", "quantity must be positive, got 0 (o: buy 0 AAA)"),
    ),
    ("known_symbol_accept", r.check_known_symbol, {}, {}, order("o", "buy", 1), None),
    (
        "known_symbol_reject",
        r.check_known_symbol,
        {},
        {},
        order("o", "buy", 1, symbol="ZZZ"),
        ("unknown_symbol", "unknown symbol 'ZZZ': not in the universe of 3 symbols"),
    ),
    (
        "restricted_accept",
        r.check_restricted,
        {"restricted_symbols": frozenset({"GME"})},
        {},
        order("o", "buy", 1),
        None,
    ),
    (
        "restricted_reject",
        r.check_restricted,
        {"restricted_symbols": frozenset({"AAA"})},
        {},
        order("o", "buy", 1),
        ("restricted_symbol", "AAA is on the restricted list; order o: buy 1 AAA refused"),
    ),
    # ---------------------------------------------------------------- halts
    (
        "drawdown_within_limit_accepts",
        r.check_drawdown,
        {"max_drawdown": 0.2},
        {"equity": 85_000.0, "peak": 100_000.0},
        order("o", "buy", 1),
        None,
    ),
    (
        "drawdown_breached_rejects_entries",
        r.check_drawdown,
        {"max_drawdown": 0.2},
        {"equity": 79_000.0, "peak": 100_000.0},
        order("o", "buy", 1),
        (
            "max_drawdown",
            "trading halted: drawdown reached 21.00% of peak equity 100,000.00 (limit 20.00%)",
        ),
    ),
    (
        "drawdown_breached_allows_exits",
        r.check_drawdown,
        {"max_drawdown": 0.2},
        {"equity": 79_000.0, "peak": 100_000.0, "positions": {"AAA": 50.0}},
        order("o", "sell", 50),
        None,
    ),
    (
        "drawdown_halt_is_latched_after_recovery",
        r.check_drawdown,
        {"max_drawdown": 0.2},
        {"equity": 95_000.0, "peak": 100_000.0, "worst": 0.21},
        order("o", "buy", 1),
        ("max_drawdown", "drawdown reached 21.00%"),
    ),
    (
        "daily_loss_within_limit_accepts",
        r.check_daily_loss,
        {"max_daily_loss": 0.03},
        {"equity": 98_000.0, "day_start": 100_000.0},
        order("o", "buy", 1),
        None,
    ),
    (
        "daily_loss_breached_rejects_entries",
        r.check_daily_loss,
        {"max_daily_loss": 0.03},
        {"equity": 96_000.0, "day_start": 100_000.0},
        order("o", "buy", 1),
        (
            "daily_loss_limit",
            "trading halted for the day: equity fell 4.00% from the day's start 100,000.00 "
            "(limit 3.00%)",
        ),
    ),
    (
        "daily_loss_breached_allows_covering_a_short",
        r.check_daily_loss,
        {"max_daily_loss": 0.03},
        {"equity": 96_000.0, "day_start": 100_000.0, "positions": {"AAA": -30.0}},
        order("o", "buy", 30),
        None,
    ),
    # ---------------------------------------------------------------- size
    (
        "order_notional_accept",
        r.check_max_order_notional,
        {"max_order_notional": 10_000.0},
        {"prices": {"AAA": 99.0}},
        order("o", "buy", 101),
        None,
    ),
    (
        "order_notional_reject",
        r.check_max_order_notional,
        {"max_order_notional": 10_000.0},
        {"prices": {"AAA": 99.0}},
        order("o", "buy", 102),
        (
            "max_order_notional",
            "order notional 10,098.00 (102 x 99.0000) exceeds max_order_notional 10,000.00",
        ),
    ),
    (
        "order_notional_uses_the_limit_price",
        r.check_max_order_notional,
        {"max_order_notional": 10_000.0},
        {"prices": {"AAA": 99.0}},
        order("o", "buy", 100, kind="limit", limit_price=101.0),
        ("max_order_notional", "order notional 10,100.00 (100 x 101.0000)"),
    ),
    (
        "order_notional_without_a_price",
        r.check_max_order_notional,
        {"max_order_notional": 10_000.0},
        {"prices": {"AAA": float("nan")}},
        order("o", "buy", 1),
        ("max_order_notional", "no price known for AAA yet"),
    ),
    (
        "position_shares_accept",
        r.check_max_position,
        {"max_position_shares": 1000.0},
        {"positions": {"AAA": 900.0}},
        order("o", "buy", 100),
        None,
    ),
    (
        "position_shares_reject",
        r.check_max_position,
        {"max_position_shares": 1000.0},
        {"positions": {"AAA": 900.0}},
        order("o", "buy", 101),
        (
            "max_position",
            "position in AAA would be 1001 shares (held 900, open orders +0/-0, this order +101), "
            "above max_position_shares 1000",
        ),
    ),
    (
        "position_shares_counts_open_orders",
        r.check_max_position,
        {"max_position_shares": 1000.0},
        {"positions": {"AAA": 500.0}, "open_orders": [("AAA", "buy", 400.0, 100.0)]},
        order("o", "buy", 101),
        ("max_position", "would be 1001 shares (held 500, open orders +400/-0, this order +101)"),
    ),
    (
        "position_shares_flip_beyond_limit_rejects",
        r.check_max_position,
        {"max_position_shares": 1000.0},
        {"positions": {"AAA": 900.0}},
        order("o", "sell", 2000),
        ("max_position", "would be -1100 shares"),
    ),
    (
        "position_reduction_above_limit_accepts",
        r.check_max_position,
        {"max_position_shares": 1000.0},
        {"positions": {"AAA": 1500.0}},
        order("o", "sell", 100),
        None,
    ),
    (
        "position_notional_accept",
        r.check_max_position,
        {"max_position_notional": 50_000.0},
        {"positions": {"AAA": 400.0}},
        order("o", "buy", 100),
        None,
    ),
    (
        "position_notional_reject",
        r.check_max_position,
        {"max_position_notional": 50_000.0},
        {"positions": {"AAA": 400.0}},
        order("o", "buy", 101),
        ("max_position", "would be worth 50,100.00 (501 x 100.0000"),
    ),
    (
        "position_pct_accept",
        r.check_max_position,
        {"max_position_pct": 0.1},
        {},
        order("o", "buy", 100),
        None,
    ),
    (
        "position_pct_reject",
        r.check_max_position,
        {"max_position_pct": 0.1},
        {},
        order("o", "buy", 101),
        (
            "max_position",
            "would be worth 10,100.00, 10.10% of equity 100,000.00, above max_position_pct 10.00%",
        ),
    ),
    (
        "open_positions_adding_to_a_held_symbol_accepts",
        r.check_max_open_positions,
        {"max_open_positions": 2},
        {"positions": {"AAA": 1.0, "BBB": 1.0}},
        order("o", "buy", 1),
        None,
    ),
    (
        "open_positions_new_symbol_within_limit_accepts",
        r.check_max_open_positions,
        {"max_open_positions": 2},
        {"positions": {"AAA": 1.0}},
        order("o", "buy", 1, symbol="CCC"),
        None,
    ),
    (
        "open_positions_reject",
        r.check_max_open_positions,
        {"max_open_positions": 2},
        {"positions": {"AAA": 1.0, "BBB": 1.0}},
        order("o", "buy", 1, symbol="CCC"),
        (
            "max_open_positions",
            "CCC would be open position number 3 (held or with open orders: 2), above "
            "max_open_positions 2",
        ),
    ),
    (
        "open_positions_counts_pending_entries",
        r.check_max_open_positions,
        {"max_open_positions": 2},
        {"positions": {"AAA": 1.0}, "open_orders": [("BBB", "buy", 1.0, 50.0)]},
        order("o", "buy", 1, symbol="CCC"),
        ("max_open_positions", "open position number 3"),
    ),
    # ---------------------------------------------------------------- leverage
    (
        "gross_leverage_at_the_limit_accepts",
        r.check_gross_leverage,
        {"max_gross_leverage": 1.0},
        {"gross": 90_000.0},
        order("o", "buy", 100),
        None,
    ),
    (
        "gross_leverage_reject",
        r.check_gross_leverage,
        {"max_gross_leverage": 1.0},
        {"gross": 90_000.0},
        order("o", "buy", 101),
        (
            "max_gross_leverage",
            "gross leverage would be 1.0010 (gross exposure 100,100.00 on equity 100,000.00, "
            "this order adds 10,100.00), above max_gross_leverage 1",
        ),
    ),
    (
        "gross_leverage_reduction_accepts_above_the_limit",
        r.check_gross_leverage,
        {"max_gross_leverage": 1.0},
        {"positions": {"AAA": 1500.0}},
        order("o", "sell", 100),
        None,
    ),
    (
        "net_leverage_accept",
        r.check_net_leverage,
        {"max_net_leverage": 0.5},
        {"net": 45_000.0},
        order("o", "buy", 50),
        None,
    ),
    (
        "net_leverage_reject",
        r.check_net_leverage,
        {"max_net_leverage": 0.5},
        {"net": 45_000.0},
        order("o", "buy", 51),
        (
            "max_net_leverage",
            "net leverage would be +0.5010 (net exposure 50,100.00 on equity 100,000.00), "
            "beyond max_net_leverage 0.5",
        ),
    ),
    (
        "net_leverage_short_reject",
        r.check_net_leverage,
        {"max_net_leverage": 0.5},
        {"net": -45_000.0},
        order("o", "sell", 51),
        ("max_net_leverage", "net leverage would be -0.5010"),
    ),
    (
        "net_leverage_toward_zero_accepts",
        r.check_net_leverage,
        {"max_net_leverage": 0.5},
        {"net": 80_000.0},
        order("o", "sell", 100),
        None,
    ),
    # ---------------------------------------------------------------- buying power
    (
        "cash_buy_within_cash_accepts",
        r.check_buying_power,
        {"account": "cash"},
        {"cash": 10_000.0, "prices": {"AAA": 99.0}},
        order("o", "buy", 101),
        None,
    ),
    (
        "cash_buy_beyond_cash_rejects",
        r.check_buying_power,
        {"account": "cash"},
        {"cash": 10_000.0, "prices": {"AAA": 99.0}},
        order("o", "buy", 102),
        (
            "buying_power",
            "insufficient cash: order costs 10,098.00 (102 x 99.0000) but only 10,000.00 is free "
            "(cash 10,000.00, reserved by open buys 0.00, credited from market sells 0.00)",
        ),
    ),
    (
        "cash_open_buys_reserve_cash",
        r.check_buying_power,
        {"account": "cash"},
        {"cash": 10_000.0, "open_orders": [("BBB", "buy", 100.0, 50.0)]},
        order("o", "buy", 51),
        (
            "buying_power",
            "only 5,000.00 is free (cash 10,000.00, reserved by open buys 5,000.00, "
            "credited from market sells 0.00)",
        ),
    ),
    (
        "cash_sell_held_shares_accepts",
        r.check_buying_power,
        {"account": "cash"},
        {"positions": {"AAA": 10.0}},
        order("o", "sell", 10),
        None,
    ),
    (
        "cash_short_sale_rejects",
        r.check_buying_power,
        {"account": "cash"},
        {"positions": {"AAA": 10.0}, "open_orders": [("AAA", "sell", 5.0, 100.0)]},
        order("o", "sell", 6),
        (
            "buying_power",
            "a cash account cannot sell short: selling 6 AAA with 10 held and 5 already being sold",
        ),
    ),
    (
        "margin_within_buying_power_accepts",
        r.check_buying_power,
        {"account": "margin", "margin_leverage": 2.0},
        {"gross": 150_000.0},
        order("o", "buy", 500),
        None,
    ),
    (
        "margin_beyond_buying_power_rejects",
        r.check_buying_power,
        {"account": "margin", "margin_leverage": 2.0},
        {"gross": 150_000.0},
        order("o", "buy", 501),
        (
            "buying_power",
            "insufficient margin: order adds 50,100.00 of exposure but buying power is 50,000.00 "
            "(2 x equity 100,000.00 - gross 150,000.00 - reserved 0.00)",
        ),
    ),
    (
        "margin_short_sale_accepts",
        r.check_buying_power,
        {"account": "margin"},
        {},
        order("o", "sell", 100),
        None,
    ),
]


@pytest.mark.parametrize(("rule", "config", "state", "request_", "expected"), table(CASES))
def test_rule(rule, config, state, request_, expected) -> None:
    state = dict(state)
    peak = state.pop("peak", None)
    worst = state.pop("worst", None)
    day_start = state.pop("day_start", None)
    view = make_view(**state)
    if peak is not None:
        view.peak_equity = peak
    if worst is not None:
        view.max_drawdown_seen = worst
    if day_start is not None:
        view.day_start_equity = day_start
    result = rule(request_, view, RiskConfig(**config))
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result.rule == expected[0]
        assert expected[1] in result.reason, result.reason


def test_rules_never_change_the_view() -> None:
    view = make_view(positions={"AAA": 10.0}, open_orders=[("BBB", "buy", 10.0, 50.0)])
    before = (view.position.copy(), view.reserved_cash, dict(view.orders), view.equity)
    config = RiskConfig(max_position_shares=1.0, max_gross_leverage=0.01, max_open_positions=0)
    assert evaluate(order("o", "buy", 100), view, config) is not None
    assert (view.position == before[0]).all()
    assert (view.reserved_cash, dict(view.orders), view.equity) == before[1:]


def test_evaluate_returns_the_first_rejection_in_rule_order() -> None:
    config = RiskConfig(restricted_symbols=frozenset({"AAA"}), max_order_notional=1.0)
    rejection = evaluate(order("o", "buy", 100), make_view(), config)
    assert rejection is not None and rejection.rule == "restricted_symbol"
    assert evaluate(order("o", "buy", 1, symbol="CCC"), make_view(), RiskConfig()) is None


def test_cash_account_counts_market_sell_proceeds_as_buying_power() -> None:
    """A rebalance sells AAA and buys BBB on the same bar: the sale funds the buy."""
    from ml4t.backtest.risk.rules import check_buying_power

    view = make_view(
        positions={"AAA": 100.0},
        cash=0.0,
        equity=10_000.0,
        open_orders=[("AAA", "sell", 100.0, 100.0)],
    )
    buy = order("b", "buy", 90, symbol="BBB")  # 90 x 50 = 4,500 <= 10,000 of proceeds
    assert check_buying_power(buy, view, RiskConfig()) is None
    refused = check_buying_power(buy, view, RiskConfig(credit_pending_sales=False))
    assert refused is not None and refused.rule == "buying_power"
    assert "credited from market sells 0.00" in refused.reason
    too_big = order("c", "buy", 201, symbol="BBB")  # 10,050 > 10,000
    assert check_buying_power(too_big, view, RiskConfig()) is not None
