"""The account guarantees and the order life cycle, through the whole graph on bars written
by hand: each test is one rule, with the numbers worked out in its comments.

Daily bars are known at 21:00 UTC unless a test says otherwise; market orders fill at the
next bar's open (DESIGN §2).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import polars as pl
import pytest

from ml4t.backtest import OrderError
from ml4t.backtest.errors import ConfigError

from ._bars import flat, run_script

CASH = {"risk": {"account": "cash"}}
MARGIN_1X = {"risk": {"account": "margin", "margin_leverage": 1.0}}


def order_row(results, order_id: str) -> dict:
    (row,) = results.orders.filter(pl.col("order_id") == order_id).to_dicts()
    return row


# ---------------------------------------------------------------- 1. cancel and replace


def test_cancel_then_market_sell_on_one_bar_replaces_the_stop() -> None:
    # long 10 @ 100 (bar 1); a resting stop sell 10 @ 90 (bar 1); at bar 2 cancel the stop
    # and sell 10 at market: the sell fills at bar 3's open, nothing is refused
    steps = {
        0: lambda s: s.buy("AAA", 10),
        1: lambda s: s.ids.update(stop=s.sell("AAA", 10, stop=90.0)),
        2: lambda s: (s.cancel(s.ids["stop"]), s.sell("AAA", 10)),
    }
    results, strategy, _ = run_script({"AAA": [flat(100)] * 5}, steps, **CASH)
    assert strategy.rejections == []
    assert strategy.position("AAA") == 0.0
    assert order_row(results, "strategy-2")["status"] == "cancelled"
    sell = order_row(results, "strategy-3")
    assert (sell["status"], sell["filled_quantity"]) == ("filled", 10.0)


def test_cancel_then_close_position_sizes_the_close_without_the_cancelled_order() -> None:
    # close_position nets out working orders; a cancelled stop no longer counts, so the
    # close is a sell of 10, not nothing
    steps = {
        0: lambda s: s.buy("AAA", 10),
        1: lambda s: s.ids.update(stop=s.sell("AAA", 10, stop=90.0)),
        2: lambda s: (s.cancel(s.ids["stop"]), s.ids.update(close=s.close_position("AAA"))),
    }
    _, strategy, _ = run_script({"AAA": [flat(100)] * 5}, steps, **CASH)
    assert strategy.ids["close"] == "strategy-3"
    assert strategy.rejections == []
    assert strategy.position("AAA") == 0.0


@pytest.mark.parametrize("account", [CASH, MARGIN_1X], ids=["cash", "margin_1x"])
def test_cancel_then_market_buy_on_one_bar_uses_the_released_cash(account) -> None:
    # cash 10,000: a buy limit 100 @ 95 reserves 9,500; at bar 1 cancel it and buy 99 at
    # market (99 x 100 = 9,900): approved, filled at bar 2's open
    steps = {
        0: lambda s: s.ids.update(limit=s.buy("AAA", 100, limit=95.0)),
        1: lambda s: (s.cancel(s.ids["limit"]), s.buy("AAA", 99)),
    }
    results, strategy, _ = run_script({"AAA": [flat(100)] * 4}, steps, **account)
    assert strategy.rejections == []
    assert strategy.position("AAA") == 99.0
    assert results.portfolio["cash"][-1] == pytest.approx(10_000 - 9_900)


# ---------------------------------------------------------------- 2. reduce-only


def test_bracket_children_are_cancelled_when_the_position_is_closed() -> None:
    # buy 10 with SL 95 / TP 110, filled at bar 1 @ 100; close_position at bar 2 sells 10
    # at bar 3's open; bar 5 falls to 90, where the stop-loss would have fired and opened
    # a short of 10: it was cancelled once the position was gone
    bars = [flat(100)] * 5 + [(92, 93, 90, 91, 1e6), flat(91)]
    steps = {
        0: lambda s: s.buy("AAA", 10, stop_loss=95.0, take_profit=110.0),
        2: lambda s: s.close_position("AAA"),
    }
    for account in (CASH, MARGIN_1X):
        results, strategy, _ = run_script({"AAA": bars}, steps, **account)
        assert strategy.position("AAA") == 0.0
        assert min(min(seen.values(), default=0.0) for seen in strategy.seen) >= 0.0
        for child in ("strategy-1.sl", "strategy-1.tp"):
            row = order_row(results, child)
            assert (row["status"], row["filled_quantity"]) == ("cancelled", 0.0)
        history = results.order_history.filter(pl.col("order_id") == "strategy-1.sl")
        assert "reduce-only" in history["detail"][-1]
        assert results.fills.height == 2  # the entry and the close, nothing else


def test_bracket_children_shrink_with_the_position() -> None:
    # long 10 with SL 95 / TP 110; sell 4 at bar 2 (filled at bar 3): both children now
    # protect 6, and the stop-loss at bar 4 (low 90, open 96) sells 6 @ 95
    bars = [flat(100)] * 4 + [(96, 96, 90, 91, 1e6), flat(91)]
    steps = {
        0: lambda s: s.buy("AAA", 10, stop_loss=95.0, take_profit=110.0),
        2: lambda s: s.sell("AAA", 4),
    }
    results, strategy, _ = run_script({"AAA": bars}, steps, **CASH)
    stop = order_row(results, "strategy-1.sl")
    assert (stop["status"], stop["quantity"], stop["filled_quantity"]) == ("filled", 6.0, 6.0)
    assert stop["avg_fill_price"] == 95.0
    assert order_row(results, "strategy-1.tp")["status"] == "cancelled"
    assert strategy.position("AAA") == 0.0


def test_reduce_only_order_with_nothing_to_reduce_is_rejected() -> None:
    steps = {0: lambda s: s.sell("AAA", 5, reduce_only=True)}
    results, strategy, _ = run_script({"AAA": [flat(100)] * 3}, steps, risk={"account": "margin"})
    (rejected,) = strategy.rejections
    assert rejected.rule == "reduce_only"
    assert "has no position to reduce: +0 held" in rejected.reason
    assert results.fills.height == 0


def test_reduce_only_fill_is_capped_at_the_position() -> None:
    # long 10; at bar 2 a market sell 6, then a reduce-only stop sell 10 @ 95: the market
    # sell fills first (bar 3 open 96, orders of a symbol match in acceptance order), the
    # stop shrinks to 4 and sells 4 as bar 3 trades down through 95: flat, never short
    bars = [flat(100), flat(100), flat(100), (96, 96, 94, 94, 1e6), flat(94)]
    steps = {
        0: lambda s: s.buy("AAA", 10),
        2: lambda s: (s.sell("AAA", 6), s.sell("AAA", 10, stop=95.0, reduce_only=True)),
    }
    results, strategy, _ = run_script({"AAA": bars}, steps, risk={"account": "margin"})
    assert strategy.position("AAA") == 0.0
    stop = order_row(results, "strategy-3")
    assert (stop["quantity"], stop["filled_quantity"], stop["status"]) == (4.0, 4.0, "filled")
    assert sorted(results.fills["quantity"].to_list()) == [4.0, 6.0, 10.0]


# ---------------------------------------------------------------- 3. DAY orders by trading day

MIDNIGHT = datetime(2024, 1, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "sections",
    [
        {},  # daily bars known at 00:00 UTC: the bar known at Jan 3 00:00 is Jan 2's
        {"data": {"asset": {"bar_label": "start", "bar_interval": "1d"}}},  # crypto style
        {"backtest": {"initial_capital": 10_000.0, "calendar": "NYSE"}},
    ],
    ids=["midnight_end_labels", "start_labels_1d", "nyse_calendar"],
)
def test_day_order_never_fills_on_a_later_trading_day(sections) -> None:
    # a DAY buy limit 95 sent at bar 0: bar 1 stays above it (low 96), bar 2 would fill it
    # (low 90). It may trade on bar 1 only: it expires unfilled
    bars = [flat(100), (99, 100, 96, 97, 1e6), (94, 95, 90, 92, 1e6), flat(92)]
    steps = {0: lambda s: s.buy("AAA", 10, limit=95.0, tif="day")}
    results, _, _ = run_script({"AAA": bars}, steps, start=MIDNIGHT, **sections)
    assert results.fills.height == 0
    assert order_row(results, "strategy-1")["status"] == "expired"


def test_day_order_fills_on_its_own_trading_day_with_midnight_bars() -> None:
    bars = [flat(100), (99, 100, 94, 97, 1e6), flat(97)]
    steps = {0: lambda s: s.buy("AAA", 10, limit=95.0, tif="DAY")}
    results, _, _ = run_script({"AAA": bars}, steps, start=MIDNIGHT)
    assert results.fills["price"].to_list() == [95.0]


# ---------------------------------------------------------------- 4. a cash account's cash

PER_SHARE = {"commission": {"model": "per_share", "params": {"cost_per_share": 0.01}}}


def test_cash_account_buying_power_includes_commission() -> None:
    # cash 10,000; buy 100 @ 100 with 0.01/share: 10,000 + 1.00 > 10,000, refused
    steps = {0: lambda s: s.buy("AAA", 100)}
    results, strategy, _ = run_script({"AAA": [flat(100)] * 3}, steps, execution=PER_SHARE, **CASH)
    (rejected,) = strategy.rejections
    assert rejected.rule == "buying_power"
    assert "order costs 10,001.00" in rejected.reason
    assert results.portfolio["cash"].min() == 10_000.0


def test_cash_account_fill_after_a_gap_is_resized_so_cash_stays_non_negative() -> None:
    # approved at the close 99 (99 x 100 + 0.99 commission = 9,900.99 <= 10,000); the
    # next bar gaps to 105: 100 shares would cost 10,501; the broker fills what the cash
    # affords, q = 10,000 / (105 + 0.01) = 95.2290..., and cash ends at >= 0
    bars = [flat(99), flat(105), flat(105)]
    steps = {0: lambda s: s.buy("AAA", 99.99)}
    results, _, _ = run_script({"AAA": bars}, steps, execution=PER_SHARE, **CASH)
    (qty,) = results.fills["quantity"].to_list()
    assert qty == pytest.approx(10_000 / 105.01, rel=1e-9)
    assert results.portfolio["cash"].min() >= 0.0


def test_cash_account_refuses_insufficient_cash_allow() -> None:
    with pytest.raises(ConfigError, match=r"insufficient_cash is 'allow' but risk\.account"):
        run_script(
            {"AAA": [flat(100)] * 2},
            {},
            execution={"insufficient_cash": "allow"},
            **CASH,
        )


# ---------------------------------------------------------------- 7 and 11. bad arguments


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda s: s.buy("AAA", -5), "quantity must be positive, got -5.0"),
        (lambda s: s.buy("AAA", math.nan), "quantity must be finite, got nan"),
        (lambda s: s.buy("AAA", math.inf), "quantity must be finite, got inf"),
        (lambda s: s.buy("AAA", "10"), "quantity must be a number, got '10'"),
        (lambda s: s.buy("AAA", True), "quantity must be a number, got True"),
        (lambda s: s.buy("AAA", 1, limit=-1.0), "limit must be positive, got -1.0"),
        (lambda s: s.buy("AAA", 1, limit="95"), "limit must be a number, got '95'"),
        (lambda s: s.buy("AAA", 1, stop=math.nan), "stop must be finite, got nan"),
        (lambda s: s.buy("AAA", 1, trail_percent=0.0), "trail_percent must be positive"),
        (lambda s: s.buy("AAA", 1, stop_loss=-1.0), "stop_loss must be positive"),
        (lambda s: s.buy("AAA", 1, take_profit="x"), "take_profit must be a number"),
        (lambda s: s.buy("AAA", 1, tif="week"), "tif must be one of ['day', 'gtc', 'ioc'"),
        (lambda s: s.buy("AAA", 1, tif=3), "tif must be one of"),
        (lambda s: s.buy("AAA", 1, order_type="iceberg"), "order_type must be one of"),
        (lambda s: s.buy("", 1), "symbol must be a non-empty string, got ''"),
        (lambda s: s.buy(7, 1), "symbol must be a non-empty string, got 7"),
        (lambda s: s.buy("AAA", 1, reduce_only="yes"), "reduce_only must be True or False"),
        (lambda s: s.buy("AAA", 1, reason=5), "reason must be a string, got 5"),
        (lambda s: s.submit_order("AAA", "hold", 1), "side must be one of ['buy', 'sell']"),
        (lambda s: s.cancel(None), "order_id must be a non-empty string, got None"),
        (lambda s: s.modify(3, quantity=1), "order_id must be a non-empty string, got 3"),
        (lambda s: s.modify("x"), "changes nothing"),
        (lambda s: s.modify("x", limit=-1.0), "limit must be positive, got -1.0"),
        (lambda s: s.modify("x", quantity=math.nan), "quantity must be finite"),
        (lambda s: s.order_target_quantity("AAA", math.nan), "target must be finite"),
        (lambda s: s.order_target_percent("AAA", math.inf), "percent must be finite"),
        (lambda s: s.order_target_percent("AAA", 0.1, price=0.0), "price must be positive"),
        (lambda s: s.rebalance({"AAA": math.nan}), "weights['AAA'] must be finite"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_order_helper_argument_raises_at_the_call_and_changes_nothing(call, words) -> None:
    caught: list[BaseException] = []

    def step(s):
        with pytest.raises(OrderError) as info:
            call(s)
        caught.append(info.value)
        assert s.pending_quantity("AAA") == 0.0
        assert s.open_orders == {}
        s.buy("AAA", 2)  # the strategy goes on, and its next order works

    results, strategy, _ = run_script({"AAA": [flat(100)] * 3}, {0: step})
    (error,) = caught
    assert words in str(error)
    assert isinstance(error, ValueError)
    assert results.complete
    assert strategy.position("AAA") == 2.0
    assert results.orders.height == 1


@pytest.mark.parametrize("tif", ["day", "Day", "DAY", "gtc", "IOC", "fok"])
def test_time_in_force_by_name_in_any_case(tif) -> None:
    steps = {0: lambda s: s.buy("AAA", 1, tif=tif)}
    results, strategy, _ = run_script({"AAA": [flat(100)] * 3}, steps)
    assert strategy.rejections == []
    assert order_row(results, "strategy-1")["time_in_force"] == tif.lower()
    assert results.fills.height == 1


# ---------------------------------------------------------------- 9. one accounting


def test_fractional_round_trip_leaves_the_strategy_and_the_portfolio_flat() -> None:
    # 0.1 + 0.2 + 0.3 bought, then the same sold: float sums leave ~1e-17, which both the
    # strategy and the portfolio read as zero under the one tolerance
    buys = {0: lambda s: s.buy("AAA", 0.1), 1: lambda s: s.buy("AAA", 0.2)}
    rest = {
        2: lambda s: s.buy("AAA", 0.3),
        3: lambda s: s.sell("AAA", 0.1),
        4: lambda s: s.sell("AAA", 0.2),
        5: lambda s: s.sell("AAA", 0.3),
    }
    results, strategy, engine = run_script({"AAA": [flat(100)] * 8}, {**buys, **rest})
    assert strategy.position("AAA") == 0.0
    assert strategy.holdings() == {}
    assert strategy.positions().height == 0
    assert engine.portfolio.position("AAA") == 0.0
    assert results.portfolio["num_positions"][-1] == 0


# ---------------------------------------------------------------- 10. refused modify / cancel


def test_refused_modify_leaves_the_working_order_and_its_reservation() -> None:
    # cash 100,000: a buy limit 900 @ 96 reserves 86,400. modify(quantity=2000) would need
    # 192,000: refused. The limit keeps working (and reserved), so a market buy of 900 at
    # ~100 (90,000) is refused too; the limit fills at bar 3 (low 95) and cash stays >= 0
    bars = [flat(100), flat(100), flat(100), (97, 98, 95, 96, 1e6), flat(96)]
    steps = {
        0: lambda s: s.ids.update(limit=s.buy("AAA", 900, limit=96.0)),
        1: lambda s: s.modify(s.ids["limit"], quantity=2000),
        2: lambda s: s.buy("AAA", 900),
    }
    results, strategy, _ = run_script(
        {"AAA": bars}, steps, backtest={"initial_capital": 100_000.0}, **CASH
    )
    modify, buy = strategy.rejections
    assert (modify.request, modify.rule, modify.order_id) == (
        "modify",
        "buying_power",
        "strategy-1",
    )
    assert (buy.request, buy.rule) == ("submit", "buying_power")
    row = order_row(results, "strategy-1")
    assert (row["status"], row["quantity"], row["filled_quantity"]) == ("filled", 900.0, 900.0)
    history = results.order_history.filter(pl.col("order_id") == "strategy-1")
    assert "modify_rejected" in history["event"].to_list()
    assert "rejected" not in history["status"].to_list()
    assert results.portfolio["cash"].min() == pytest.approx(100_000 - 900 * 96)


def test_cancel_of_a_filled_order_records_order_closed_and_keeps_filled() -> None:
    steps = {0: lambda s: s.buy("AAA", 1), 2: lambda s: s.cancel("strategy-1")}
    results, strategy, _ = run_script({"AAA": [flat(100)] * 4}, steps)
    (rejected,) = strategy.rejections
    assert (rejected.request, rejected.rule) == ("cancel", "order_closed")
    history = results.order_history.filter(pl.col("order_id") == "strategy-1")
    last = history.row(-1, named=True)
    assert (last["event"], last["status"]) == ("cancel_rejected", "filled")
    assert order_row(results, "strategy-1")["status"] == "filled"
