"""The recorder across corporate actions: splits, cash in lieu, symbol changes,
delistings, dividends and borrow fees. Every number is computed by hand beforehand.

The feed publishes an instant's actions just before its batch; the other roles react
(order updates, cash in lieu, delisting fills) while the graph handles them, so the
recorder may see those reactions before or after the batch: the scenarios that have
reactions run both ways and must give the same records.
"""

from __future__ import annotations

import doctest
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ml4t.backtest import (
    ActionKind,
    CashFlowKind,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderSide,
    OrderStatus,
    OrderUpdated,
    SessionStarted,
    SubmitOrder,
)
from ml4t.backtest.errors import DataValidationError
from ml4t.backtest.journal import JOURNAL_FILE, JournalRecorder, replay
from ml4t.backtest.record import Recorder, RecorderResults, ReportingConfig, TradeBuilder
from ml4t.backtest.record import _actions as actions
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import (
    CORPORATE_ACTIONS,
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    SESSION,
)

from ._world import Tape, day

BUY, SELL = OrderSide.BUY, OrderSide.SELL
SPLIT, DIVIDEND = ActionKind.SPLIT, ActionKind.DIVIDEND
DELISTING, SYMBOL_CHANGE = ActionKind.DELISTING, ActionKind.SYMBOL_CHANGE
TABLES = (
    "trades",
    "fills",
    "orders",
    "order_history",
    "portfolio",
    "cash_flows",
    "daily_returns",
    "daily_positions",
)


def via_builder(tape: Tape, **options: Any) -> pl.DataFrame:
    builder = TradeBuilder(**options)
    for _, topic, event in tape.steps:
        if topic is MARKET:
            builder.on_market(event)  # type: ignore[arg-type]
        elif topic in (ORDER_REQUESTS, ORDERS_APPROVED) and isinstance(event, SubmitOrder):
            builder.on_order(event)
        elif topic is ORDER_EVENTS:
            builder.on_order_event(event)
        elif topic is FILLS:
            builder.on_fill(event)  # type: ignore[arg-type]
        elif topic is CORPORATE_ACTIONS:
            builder.on_action(event)  # type: ignore[arg-type]
    return builder.finish().frame()


def via_graph(tape: Tape, **options: Any) -> RecorderResults:
    recorder = Recorder(ReportingConfig(output_dir=None), **options)
    run_components(Script(tape.steps), recorder)
    assert recorder.results is not None
    return recorder.results


@pytest.fixture(params=["builder", "graph"])
def trades_of(request: pytest.FixtureRequest):
    if request.param == "builder":
        return via_builder
    return lambda tape, **options: via_graph(tape, **options).trades


@pytest.fixture(params=["reactions_first", "batch_first"])
def batch_first(request: pytest.FixtureRequest) -> bool:
    return request.param == "batch_first"


def batch_right_after_actions(tape: Tape, ts: int) -> None:
    """Move the batch at ``ts`` to just after the actions at ``ts``: the feed published
    both in one go, and the roles' reactions reach the recorder after the batch."""
    steps = tape.steps
    at = next(i for i, (t, topic, _) in enumerate(steps) if t == ts and topic is MARKET)
    batch = steps.pop(at)
    last = max(i for i, (t, topic, _) in enumerate(steps) if t == ts and topic is CORPORATE_ACTIONS)
    steps.insert(last + 1, batch)


def check(row: dict[str, Any], **expected: Any) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert row[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert row[key] == value, key


def bar(o: float, h: float, lo: float, c: float, symbol: str = "X") -> dict[str, tuple]:
    return {symbol: (o, h, lo, c)}


def updated(ts: int, order_id: str, symbol: str, quantity: float, **fields: Any) -> OrderUpdated:
    return OrderUpdated(
        ts_event=ts,
        order_id=order_id,
        strategy_id="s",
        symbol=symbol,
        status=fields.pop("status", OrderStatus.ACCEPTED),
        quantity=quantity,
        filled_quantity=fields.pop("filled_quantity", 0.0),
        **fields,
    )


# ---------------------------------------------------------------- splits


def four_for_one_tape() -> Tape:
    """The docs' example: buy 10 at 400, a 4:1 split, sell 40 at 110."""
    tape = Tape(["X"])
    tape.bar(day(0), bar(400, 400, 400, 400))
    tape.order(day(0), "A", "X", BUY, 10, stop_loss=360.0, take_profit=480.0)
    tape.bar(day(1), bar(400, 460, 380, 410))  # the high 460 is 115 a post-split share
    tape.fill(day(1), "A", "X", BUY, 10, 400.0, commission=1.0)
    # a dividend and the split at one instant: the day-1 bar is applied once, pre-split
    tape.action(day(2), "X", DIVIDEND, amount=1.0, pay_ns=day(9))
    tape.action(day(2), "X", SPLIT, ratio=4.0)
    tape.bar(day(2), bar(103, 108, 101, 105))  # post-split prices
    tape.order(day(2), "B", "X", SELL, 40, reason="signal")
    tape.bar(day(3), bar(110, 112, 109, 111))
    tape.fill(day(3), "B", "X", SELL, 40, 110.0, commission=1.0)
    return tape


def test_a_4_for_1_split_keeps_one_trade_in_post_split_shares(trades_of) -> None:
    (trade,) = trades_of(four_for_one_tape()).to_dicts()
    check(
        trade,
        symbol="X",
        entry_symbol="X",
        quantity=40.0,
        lot_quantity=40.0,
        split_ratio=4.0,
        entry_price=100.0,  # 400 / 4
        exit_price=110.0,
        entry_commission=1.0,
        exit_commission=1.0,
        pnl_gross=400.0,  # 40 x (110 - 100)
        pnl_net=398.0,
        pnl_percent=9.95,  # 398 / (100 x 40)
        holding_period_bars=2,  # d1 (pre-split), d2 (post-split): one trade, d1 once
        holding_period_days=2.0,
        max_favorable_excursion=15.0,  # d1's high 460 / 4 = 115
        max_adverse_excursion=5.0,  # d1's low 380 / 4 = 95
        max_favorable_pct=15.0,
        max_adverse_pct=5.0,
        stop_loss_level=90.0,  # the bracket's 360 and 480, per post-split share
        take_profit_level=120.0,
        exit_reason="signal",
    )
    # per original share: price x split_ratio, quantity / split_ratio
    ratio = trade["split_ratio"]
    assert (trade["quantity"] / ratio, trade["entry_price"] * ratio) == (10.0, 400.0)
    assert trade["exit_price"] * ratio == 440.0


def test_an_exit_order_filling_across_a_split_is_one_trade_at_its_vwap(batch_first) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(400, 400, 400, 400))
    tape.fill(day(0), "A", "X", BUY, 10, 400.0)
    tape.order(day(0), "B", "X", SELL, 10)
    tape.bar(day(1), bar(400, 410, 390, 400))
    tape.fill(day(1), "B", "X", SELL, 4, 400.0, remaining=6)
    tape.action(day(2), "X", SPLIT, ratio=4.0)
    tape.steps.append(
        (
            day(2),
            ORDER_EVENTS,
            updated(
                day(2),
                "B",
                "X",
                40.0,
                status=OrderStatus.PARTIALLY_FILLED,
                filled_quantity=16.0,
            ),
        )
    )
    tape.bar(day(2), bar(100, 105, 95, 100))
    tape.fill(day(2), "B", "X", SELL, 24, 102.0)
    if batch_first:
        batch_right_after_actions(tape, day(2))

    for trades in (via_builder(tape), via_graph(tape).trades):
        (trade,) = trades.to_dicts()
        check(
            trade,
            quantity=40.0,  # 4 pre-split shares are 16 post-split, and 24 more
            lot_quantity=40.0,
            split_ratio=4.0,
            entry_price=100.0,
            exit_price=101.2,  # (4 x 400 + 24 x 102) / 40: the money is unchanged
            pnl_gross=48.0,  # 16 x (100 - 100) + 24 x (102 - 100)
            holding_period_bars=2,  # d0, d1
            max_favorable_excursion=2.5,  # d1's 410 / 4
            max_adverse_excursion=2.5,  # d1's 390 / 4
        )
    (order,) = via_graph(tape).orders.filter(pl.col("order_id") == "B").to_dicts()
    check(order, status="filled", quantity=40.0, filled_quantity=40.0, avg_fill_price=101.2)


def reverse_split_tape(batch_first: bool) -> Tape:
    """Buy 25 at 10; a 1:10 split leaves 2.5 shares: 0.5 paid in cash at 102."""
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 25)
    tape.bar(day(1), bar(10, 10.4, 9.6, 10), signal={"X": 0.3})
    tape.fill(day(1), "A", "X", BUY, 25, 10.0, commission=2.5)
    tape.action(day(2), "X", SPLIT, ratio=0.1)
    tape.fill(day(2), "in-lieu:s:X", "X", SELL, 0.5, 102.0, reason="cash_in_lieu")
    tape.bar(day(2), bar(101, 104, 99, 103), signal={"X": 0.9})
    tape.order(day(2), "B", "X", SELL, 2)
    tape.bar(day(3), bar(105, 106, 104, 105))
    tape.fill(day(3), "B", "X", SELL, 2, 105.0, commission=1.0)
    if batch_first:
        batch_right_after_actions(tape, day(2))
    return tape


def test_a_1_for_10_split_closes_the_fraction_as_cash_in_lieu(trades_of, batch_first) -> None:
    fraction, rest = trades_of(reverse_split_tape(batch_first)).to_dicts()
    check(
        fraction,
        exit_reason="cash_in_lieu",
        exit_order_id="in-lieu:s:X",
        quantity=0.5,  # 5 original shares
        lot_quantity=2.5,
        split_ratio=0.1,
        entry_price=100.0,  # 10 / 0.1
        exit_price=102.0,
        entry_commission=0.5,  # 2.5 x 0.5 / 2.5
        exit_commission=0.0,
        pnl_gross=1.0,  # 0.5 x (102 - 100)
        pnl_net=0.5,
        holding_period_bars=1,  # d1 only: the payment is before d2's bar
        holding_period_days=1.0,
        max_favorable_excursion=4.0,  # d1's 10.4 / 0.1 = 104
        max_adverse_excursion=4.0,  # d1's 9.6 / 0.1 = 96
        exit_signal=0.3,  # the bar before the split, whenever d2's bar arrived
    )
    assert fraction["exit_timestamp"] - fraction["entry_timestamp"] == timedelta(days=1)
    check(
        rest,
        exit_reason="signal",
        quantity=2.0,
        lot_quantity=2.5,
        split_ratio=0.1,
        entry_commission=2.0,
        exit_commission=1.0,
        pnl_gross=10.0,  # 2 x (105 - 100)
        pnl_net=7.0,
        holding_period_bars=2,  # d1, d2
        max_favorable_excursion=5.0,  # the exit fill at 105
        max_adverse_excursion=4.0,
        exit_signal=0.9,  # the bar the exit was decided on
    )
    assert fraction["entry_price"] * fraction["split_ratio"] == pytest.approx(10.0)
    assert fraction["exit_price"] * fraction["split_ratio"] == pytest.approx(10.2)


def test_cash_in_lieu_is_before_the_bar_of_its_instant_even_when_fills_are_at_the_close(
    trades_of,
) -> None:
    # intrabar: close puts a fill the recorder never saw requested at its bar's close;
    # cash in lieu is paid before the instant's bar, which arrived first here
    tape = reverse_split_tape(batch_first=True)
    fraction, rest = trades_of(tape, fill_timing="next_close", intrabar="close").to_dicts()
    check(
        fraction,
        holding_period_bars=0,  # entry at d1's close; d2 came after the payment
        max_favorable_excursion=2.0,  # the payment at 102 (d2's high 104 is after it)
        max_adverse_excursion=0.0,  # (d2's low 99 too)
    )
    check(
        rest,
        holding_period_bars=2,  # d2, and d3: the exit filled at its close
        max_favorable_excursion=6.0,  # d3's high 106
        max_adverse_excursion=1.0,  # d2's low 99
    )


def test_cash_in_lieu_is_a_fill_and_a_metric_not_a_cash_flow() -> None:
    results = via_graph(reverse_split_tape(False))
    (fill,) = results.fills.filter(pl.col("reason") == "cash_in_lieu").to_dicts()
    assert (fill["order_id"], fill["quantity"], fill["price"]) == ("in-lieu:s:X", 0.5, 102.0)
    assert results.cash_flows.height == 0
    assert results.metrics["cash_in_lieu"] == 51.0
    assert results.metrics["dividend_income"] == results.metrics["borrow_fees"] == 0.0


def test_a_split_ratio_that_is_not_positive_is_an_error_naming_the_symbol() -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.action(day(1), "X", SPLIT, ratio=0.0)
    with pytest.raises(DataValidationError, match=r"a split of 'X' .* has ratio 0\.0"):
        via_builder(tape)


def test_the_corporate_action_rules_hold_their_examples() -> None:
    failed, tried = doctest.testmod(actions)
    assert tried >= 5 and failed == 0


# ---------------------------------------------------------------- symbol changes


def rename_tape(batch_first: bool) -> Tape:
    tape = Tape(["X", "Y"])
    tape.bar(day(0), bar(50, 50, 50, 50))
    tape.order(day(0), "A", "X", BUY, 10, stop_loss=45.0)
    tape.bar(day(1), bar(50, 52, 48, 51))
    tape.fill(day(1), "A", "X", BUY, 10, 50.0)
    child = OrderAccepted(ts_event=day(1), order_id="A.sl", strategy_id="s", symbol="X")
    tape.steps.append((day(1), ORDER_EVENTS, child))
    tape.action(day(2), "X", SYMBOL_CHANGE, new_symbol="Y")
    # the broker moves the working stop to Y (and raises it, as a trailing stop would)
    moved = updated(day(2), "A.sl", "Y", 10.0, stop_price=46.0)
    tape.steps.append((day(2), ORDER_EVENTS, moved))
    tape.bar(day(2), bar(51, 56, 49, 55, symbol="Y"))
    tape.order(day(2), "B", "Y", SELL, 10, reason="signal")
    tape.bar(day(3), bar(57, 58, 56, 57, symbol="Y"))
    tape.fill(day(3), "B", "Y", SELL, 10, 57.0)
    if batch_first:
        batch_right_after_actions(tape, day(2))
    return tape


def test_a_symbol_change_mid_trade_keeps_one_trade_under_the_new_symbol(
    trades_of, batch_first
) -> None:
    (trade,) = trades_of(rename_tape(batch_first)).to_dicts()
    check(
        trade,
        symbol="Y",  # at exit
        entry_symbol="X",
        split_ratio=1.0,
        quantity=10.0,
        entry_price=50.0,
        exit_price=57.0,
        pnl_gross=70.0,
        holding_period_bars=2,  # d1 as X, d2 as Y
        max_favorable_excursion=7.0,  # the exit at 57 (Y's d2 high is 56)
        max_adverse_excursion=2.0,  # X's d1 low 48
        stop_loss_level=46.0,  # moved by the broker after the rename
        exit_reason="signal",
    )


def test_a_renamed_working_order_carries_the_new_symbol() -> None:
    orders = via_graph(rename_tape(False)).orders
    (stop,) = orders.filter(pl.col("order_id") == "A.sl").to_dicts()
    check(stop, symbol="Y", status="accepted", stop_price=46.0)


def test_a_split_and_a_rename_at_one_instant_pay_the_fraction_of_the_new_symbol(
    trades_of, batch_first
) -> None:
    # a 1:10 split and X -> Y at one instant: the broker's cash-in-lieu fill (its
    # reaction to the split) still names X, and reaches the recorder after the rename
    tape = Tape(["X", "Y"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.fill(day(0), "A", "X", BUY, 25, 10.0)
    tape.action(day(1), "X", SPLIT, ratio=0.1)
    tape.action(day(1), "X", SYMBOL_CHANGE, new_symbol="Y")
    tape.fill(day(1), "in-lieu:s:X", "X", SELL, 0.5, 100.0, reason="cash_in_lieu")
    tape.bar(day(1), bar(100, 110, 90, 108, symbol="Y"))
    if batch_first:
        batch_right_after_actions(tape, day(1))

    fraction, rest = trades_of(tape).to_dicts()
    check(fraction, symbol="Y", entry_symbol="X", exit_reason="cash_in_lieu", quantity=0.5)
    check(fraction, exit_order_id="in-lieu:s:X", pnl_gross=0.0, holding_period_bars=1)
    check(
        rest,
        symbol="Y",
        entry_symbol="X",
        exit_reason="end_of_backtest",
        quantity=2.0,
        split_ratio=0.1,
        exit_price=108.0,
        pnl_gross=16.0,  # 2 x (108 - 100)
        holding_period_bars=2,  # d0 as X, d1 as Y
        max_favorable_excursion=10.0,
        max_adverse_excursion=10.0,
    )


# ---------------------------------------------------------------- delistings


def test_a_delisting_fill_closes_the_trade_as_delisted(trades_of, batch_first) -> None:
    tape = Tape(["X", "Z"])
    tape.bar(day(0), {"X": (20, 20, 20, 20), "Z": (5, 5, 5, 5)})
    tape.order(day(0), "A", "X", BUY, 10)
    tape.bar(day(1), {"X": (20, 21, 19, 20.5), "Z": (5, 5, 5, 5)})
    tape.fill(day(1), "A", "X", BUY, 10, 20.0, commission=1.0)
    tape.order(day(1), "B", "X", SELL, 10, reason="take_profit")  # working, never fills
    tape.bar(day(2), {"X": (18, 19, 16, 17), "Z": (5, 5, 5, 5)}, signal={"X": 0.7})
    tape.action(day(3), "X", DELISTING, price=5.0)
    cancelled = OrderCancelled(
        ts_event=day(3), order_id="B", strategy_id="s", symbol="X", reason="delisted"
    )
    tape.steps.append((day(3), ORDER_EVENTS, cancelled))
    closing = OrderFilled(
        ts_event=day(3),
        fill_id="delist-1",
        order_id="delist:s:X",
        strategy_id="s",
        symbol="X",
        side=SELL,
        quantity=10.0,
        price=5.0,
        reason="delisted",
    )
    tape.steps.append((day(3), FILLS, closing))
    tape.bar(day(3), {"Z": (5, 5, 5, 5)})  # X trades no more
    if batch_first:
        batch_right_after_actions(tape, day(3))

    (trade,) = trades_of(tape).to_dicts()
    check(
        trade,
        exit_reason="delisted",
        exit_order_id="delist:s:X",
        exit_price=5.0,
        exit_commission=0.0,
        pnl_gross=-150.0,
        pnl_net=-151.0,
        holding_period_bars=2,  # d1, d2: the delisting is before d3's bar
        holding_period_days=2.0,
        max_favorable_excursion=1.0,  # d1's high 21
        max_adverse_excursion=15.0,  # the delisting price 5 (d2's low is 16)
        exit_signal=0.7,  # X's last bar, before the delisting
    )


def test_a_delisting_fill_is_delisted_by_its_order_id_alone() -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(20, 20, 20, 20))
    tape.fill(day(0), "A", "X", BUY, 10, 20.0)
    tape.fill(day(1), "delist:s:X", "X", SELL, 10, 0.0)  # worthless, no reason given
    (trade,) = via_builder(tape).to_dicts()
    check(trade, exit_reason="delisted", exit_price=0.0, pnl_gross=-200.0)


# ---------------------------------------------------------------- dividends and borrow


def income_tape() -> Tape:
    """Long 100 X and short 50 Y; a dividend of 0.5 on each; two sessions of borrow."""
    tape = Tape(["X", "Y"])
    both = {"X": (10, 10, 10, 10), "Y": (20, 20, 20, 20)}
    tape.bar(day(0), both)
    tape.fill(day(0), "A", "X", BUY, 100, 10.0)
    tape.fill(day(0), "B", "Y", SELL, 50, 20.0)
    tape.snapshot(day(0), 100_000.0, 100_000.0, {"X": 100, "Y": -50}, {"X": 10, "Y": 20})
    tape.action(day(1), "X", DIVIDEND, amount=0.5, pay_ns=day(2))
    tape.action(day(1), "Y", DIVIDEND, amount=0.5, pay_ns=day(2))
    tape.bar(day(1), both)
    tape.cash_flow(day(1), "Y", CashFlowKind.BORROW_FEE, -1.25, quantity=-50.0, rate=0.03)
    tape.snapshot(
        day(1), 99_998.75, 99_998.75, {"X": 100, "Y": -50}, {"X": 10, "Y": 20}, borrow_fees=1.25
    )
    tape.bar(day(2), both)
    tape.cash_flow(day(2), "X", CashFlowKind.DIVIDEND, 50.0, quantity=100.0, rate=0.5)
    tape.cash_flow(day(2), "Y", CashFlowKind.DIVIDEND, -25.0, quantity=-50.0, rate=0.5)
    tape.cash_flow(day(2), "Y", CashFlowKind.BORROW_FEE, -1.25, quantity=-50.0, rate=0.03)
    tape.snapshot(
        day(2),
        100_022.5,
        100_022.5,
        {"X": 100, "Y": -50},
        {"X": 10, "Y": 20},
        income=25.0,
        borrow_fees=2.5,
    )
    return tape


def test_dividends_and_borrow_fees_go_to_cash_flows_portfolio_and_metrics(
    tmp_path: Path,
) -> None:
    recorder = Recorder(ReportingConfig(output_dir=str(tmp_path)))
    run_components(Script(income_tape().steps), recorder)
    flows = pl.read_parquet(tmp_path / "cash_flows.parquet")
    assert flows.select("symbol", "kind", "amount", "quantity", "rate").rows() == [
        ("Y", "borrow_fee", -1.25, -50.0, 0.03),
        ("X", "dividend", 50.0, 100.0, 0.5),
        ("Y", "dividend", -25.0, -50.0, 0.5),
        ("Y", "borrow_fee", -1.25, -50.0, 0.03),
    ]
    assert flows["timestamp"].dt.day().to_list() == [3, 4, 4, 4]
    portfolio = pl.read_parquet(tmp_path / "portfolio.parquet")
    rows = portfolio.select("income", "borrow_fees").rows()
    assert rows == [(0.0, 0.0), (0.0, 1.25), (25.0, 2.5)]
    metrics = RecorderResults.load(tmp_path).metrics
    assert metrics["dividend_income"] == 25.0  # 50 received less 25 paid on the short
    assert metrics["borrow_fees"] == 2.5  # positive: what the short cost
    assert metrics["cash_in_lieu"] == 0.0
    # trades are price P&L: the cash that came without a trade is not in them
    trades = pl.read_parquet(tmp_path / "trades.parquet")
    assert trades["pnl_gross"].to_list() == [0.0, 0.0]


def test_cash_flows_is_left_out_when_the_tables_do_not_list_it(tmp_path: Path) -> None:
    recorder = Recorder(ReportingConfig(output_dir=str(tmp_path), tables=("trades",)))
    run_components(Script(income_tape().steps), recorder)
    assert not (tmp_path / "cash_flows.parquet").exists()
    assert recorder.results is not None and recorder.results.metrics["borrow_fees"] == 2.5


# ---------------------------------------------------------------- the journal


def every_action_tape() -> Tape:
    """A split with cash in lieu, a rename, a delisting, dividends and borrow fees."""
    tape = Tape(["X", "Y"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 25)
    tape.bar(day(1), bar(10, 10.4, 9.6, 10))
    tape.fill(day(1), "A", "X", BUY, 25, 10.0, commission=2.5)
    tape.snapshot(day(1), 99_997.5, 99_747.5, {"X": 25}, {"X": 10})
    tape.action(day(2), "X", DIVIDEND, amount=0.2, pay_ns=day(3))
    tape.action(day(2), "X", SPLIT, ratio=0.1)
    tape.bar(day(2), bar(101, 104, 99, 103))
    tape.fill(day(2), "in-lieu:s:X", "X", SELL, 0.5, 102.0, reason="cash_in_lieu")
    tape.snapshot(day(2), 100_005.0, 99_798.5, {"X": 2}, {"X": 103}, income=51.0)
    tape.action(day(3), "X", SYMBOL_CHANGE, new_symbol="Y")
    tape.bar(day(3), bar(104, 106, 100, 105, symbol="Y"))
    tape.cash_flow(day(3), "Y", CashFlowKind.DIVIDEND, 5.0, quantity=25.0, rate=0.2)
    tape.snapshot(day(3), 100_014.0, 99_803.5, {"Y": 2}, {"Y": 105}, income=56.0)
    tape.action(day(4), "Y", DELISTING, price=90.0)
    tape.bar(day(4), {})
    tape.fill(day(4), "delist:s:Y", "Y", SELL, 2, 90.0, reason="delisted")
    tape.snapshot(day(4), 99_983.5, 99_983.5, {}, {}, income=56.0)
    return tape


def test_a_journaled_run_with_corporate_actions_replays_byte_identical(tmp_path: Path) -> None:
    tape = every_action_tape()
    first = tape.steps[0][0]
    session = SessionStarted(
        ts_event=first, ts_init=first, symbols=tape.symbols, initial_cash=100_000.0
    )
    run_config = {"strategy": "toy", "reporting": {}}
    recorder = Recorder(ReportingConfig(output_dir=str(tmp_path / "run")), run_config=run_config)
    journal = JournalRecorder(tmp_path / "run" / JOURNAL_FILE, header={"config": run_config})
    run_components(Script([(first, SESSION, session), *tape.steps]), recorder, journal)
    assert recorder.results is not None
    reasons = recorder.results.trades["exit_reason"].to_list()
    assert reasons == ["cash_in_lieu", "delisted"]
    assert recorder.results.trades["symbol"].to_list() == ["X", "Y"]
    assert recorder.results.trades["entry_symbol"].to_list() == ["X", "X"]
    assert recorder.results.metrics["dividend_income"] == 5.0

    replayed = replay(tmp_path / "run" / JOURNAL_FILE, tmp_path / "replay")
    assert replayed.complete
    for name in [f"{t}.parquet" for t in TABLES] + ["metrics.json", "config.yaml"]:
        a, b = tmp_path / "run" / name, tmp_path / "replay" / name
        assert a.read_bytes() == b.read_bytes(), name
