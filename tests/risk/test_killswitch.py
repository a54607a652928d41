"""The kill switch: daily loss, drawdown and error-rate limits stop trading altogether;
flatten closes every position within one bar and the run stops; halt keeps them."""

from __future__ import annotations

import msgspec
import pytest

from ml4t.backtest import ConfigError, OrderFilled, OrderRejected, load_config
from ml4t.backtest.events import OrderSide, StopAction, SubmitOrder
from ml4t.backtest.risk import KillSwitchConfig, RiskView, check_kill_switch
from ml4t.backtest.risk.killswitch import ErrorWindow, StopBook
from tests.engine._bars import flat, run_script

# AAA falls 10 % at bar 3's close; BBB is flat
FALL = {
    "AAA": [flat(100.0)] * 3 + [(100.0, 100.0, 90.0, 90.0, 1e6)] + [flat(90.0)] * 4,
    "BBB": [flat(50.0)] * 8,
}


def _buy_both(s) -> None:
    s.buy("AAA", 50)
    s.buy("BBB", 20)


def test_daily_loss_breach_flattens_at_the_next_bar_and_stops_the_run():
    results, strategy, engine = run_script(
        FALL,
        {0: _buy_both, 4: lambda s: s.buy("BBB", 1), 5: lambda s: s.buy("BBB", 1)},
        risk={"account": "margin", "kill_switch": {"max_daily_loss": 0.04}},
    )
    # bought at bar 1's open: 50 x 100 + 20 x 50 = 6,000 of 10,000; AAA's 10 % fall at
    # bar 3 is a 500 loss: 5 % of the day's start equity, over the 4 % limit
    fills = results.fills
    assert fills.height == 4
    closing = fills.filter(fills["order_id"].str.contains("flatten"))
    assert sorted(closing["symbol"].to_list()) == ["AAA", "BBB"]
    # closed at the open of bar 4, the bar after the breach; the run stopped there
    bar4 = results.portfolio["timestamp"][4]
    assert closing["timestamp"].to_list() == [bar4, bar4]
    assert closing["side"].to_list() == ["sell", "sell"]
    assert results.portfolio.height == 5  # bars 0..4: nothing after the bar of the closing fills
    assert not results.complete
    assert "daily_loss" in results.manifest["incomplete_reason"]
    assert set(results.trades["exit_reason"].to_list()) == {"flatten"}
    # the strategy's own order at bar 4 was refused: trading is stopped
    assert [r.rule for r in strategy.rejections] == ["trading_stopped"]
    risk = engine.risk
    stopped = risk.stopped
    assert stopped is not None and stopped.rule == "daily_loss"
    assert stopped.action is StopAction.FLATTEN and len(stopped.closing) == 2
    assert "5.00% below the day's start" in stopped.reason


def test_drawdown_breach_with_halt_cancels_open_orders_keeps_positions_and_stops():
    def rest_a_limit(s) -> None:
        s.buy("BBB", 10, limit=40.0)  # never reached: open when the switch trips

    results, _, engine = run_script(
        FALL,
        {0: _buy_both, 1: rest_a_limit},
        risk={"account": "margin", "kill_switch": {"max_drawdown": 0.03, "action": "halt"}},
    )
    stopped = engine.risk.stopped
    assert stopped is not None and stopped.rule == "drawdown"
    assert stopped.action is StopAction.HALT
    assert stopped.closing == [] and len(stopped.cancelled) == 1
    orders = results.orders
    cancelled = orders.filter(orders["status"] == "cancelled")
    assert cancelled["order_id"].to_list() == stopped.cancelled
    # halted at bar 3: no closing orders, the positions are still held at the stop
    assert results.portfolio.height == 4
    assert results.fills.height == 2
    assert set(results.trades["exit_reason"].to_list()) == {"open_at_stop"}  # marked, not sold
    assert not results.complete


def test_error_rate_breach_counts_rejections_within_the_window():
    def refused(s) -> None:
        for _ in range(3):
            s.buy("AAA", 1, limit=1e9)  # over max_order_notional

    results, strategy, engine = run_script(
        FALL,
        {0: lambda s: s.buy("AAA", 5), 2: refused},
        risk={
            "account": "margin",
            "max_order_notional": 1000.0,
            "kill_switch": {"max_errors": 3, "error_window": 3600},
        },
    )
    stopped = engine.risk.stopped
    assert stopped is not None and stopped.rule == "error_rate"
    assert "3 errors" in stopped.reason
    rules = [r.rule for r in strategy.rejections]
    assert rules == ["max_order_notional"] * 3
    closing = results.fills.filter(results.fills["reason"] == "flatten")
    assert closing["quantity"].to_list() == [5.0]
    assert results.portfolio.height == 4  # stopped at bar 3, where the closing order filled


def test_errors_outside_the_window_do_not_count():
    window = ErrorWindow(60.0)
    second = 1_000_000_000
    assert window.add(0) == 1
    assert window.add(30 * second) == 2
    assert window.add(61 * second) == 2  # the first is older than 60 s
    assert window.count(200 * second) == 0


def test_check_kill_switch_is_a_pure_function_of_the_view():
    view = RiskView()
    view.observe_equity(0, 100_000.0)
    view.observe_equity(1, 120_000.0)
    view.observe_equity(2, 100_000.0)
    config = KillSwitchConfig(max_drawdown=0.2, max_daily_loss=0.5, max_errors=2)
    assert check_kill_switch(view, config, 1) is None
    breach = check_kill_switch(view, msgspec.structs.replace(config, max_drawdown=0.15), 0)
    assert breach is not None and breach.rule == "drawdown"
    assert "16.67% below its peak 120,000.00" in breach.reason
    errors = check_kill_switch(view, config, 2)
    assert errors is not None and errors.rule == "error_rate"


def test_the_stop_book_closes_each_strategy_position_in_its_own_name():
    book = StopBook()
    for strategy, side, qty in (("a", OrderSide.BUY, 10), ("b", OrderSide.SELL, 4)):
        book.on_fill(
            OrderFilled(
                ts_event=1, fill_id=f"{strategy}.1", order_id=f"{strategy}-1",
                strategy_id=strategy, symbol="XYZ", side=side, quantity=qty, price=10.0,
            )
        )  # fmt: skip
    orders = book.closing_orders(5)
    assert [(o.strategy_id, o.side.value, o.quantity) for o in orders] == [
        ("a", "sell", 10.0),
        ("b", "buy", 4.0),
    ]
    assert all(isinstance(o, SubmitOrder) and o.reduce_only for o in orders)
    assert len({o.order_id for o in orders}) == 2


def test_kill_switch_config_is_typed_with_the_key_path():
    base = {"reporting": {"output_dir": None}}
    with pytest.raises(ConfigError, match=r"\$\.risk\.kill_switch\.max_drawdown"):
        load_config({**base, "risk": {"kill_switch": {"max_drawdown": 1.5}}})
    with pytest.raises(ConfigError, match=r"\$\.risk\.kill_switch\.action"):
        load_config({**base, "risk": {"kill_switch": {"action": "panic"}}})
    with pytest.raises(ConfigError, match=r"unknown field `max_loss` - at `\$\.risk\.kill_switch`"):
        load_config({**base, "risk": {"kill_switch": {"max_loss": 0.1}}})


def test_without_a_kill_switch_nothing_stops():
    results, strategy, _ = run_script(FALL, {0: _buy_both}, risk={"account": "margin"})
    assert results.complete and results.portfolio.height == 8
    assert not [r for r in strategy.rejections if isinstance(r, OrderRejected)]
