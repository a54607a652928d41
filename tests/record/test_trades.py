"""Trade records for scripted scenarios, every number computed by hand beforehand.

Each scenario runs twice: through the pure :class:`TradeBuilder` and through a
:class:`Recorder` on a real strict-mode graph (``Script`` publishing the same events), and
both must give the same records.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from ml4t.backtest import (
    OrderAccepted,
    OrderCancelled,
    OrderSide,
    OrderUpdated,
    SubmitOrder,
)
from ml4t.backtest.errors import ConfigError, DataValidationError
from ml4t.backtest.events import OrderStatus, SessionStarted, UniverseChanged
from ml4t.backtest.record import Recorder, ReportingConfig, TradeBuilder
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDER_REQUESTS, ORDERS_APPROVED

from ._world import Tape, day

BUY, SELL = OrderSide.BUY, OrderSide.SELL


def via_builder(tape: Tape, **options: Any) -> pl.DataFrame:
    close_open = options.pop("close_open", True)
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
    return builder.finish(close_open=close_open).frame()


def via_graph(tape: Tape, **options: Any) -> pl.DataFrame:
    close_open = options.pop("close_open", True)
    config = ReportingConfig(
        output_dir=None,
        end_of_backtest="close" if close_open else "leave_open",
        signals=options.pop("signals", None),
        context=options.pop("context", None),
    )
    recorder = Recorder(config, **options)
    run_components(Script(tape.steps), recorder)
    assert recorder.results is not None
    return recorder.results.trades


@pytest.fixture(params=["builder", "graph"])
def trades_of(request: pytest.FixtureRequest):
    return via_builder if request.param == "builder" else via_graph


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def check(row: dict[str, Any], **expected: Any) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert row[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert row[key] == value, key


def bar(o: float, h: float, lo: float, c: float) -> dict[str, tuple[float, ...]]:
    return {"X": (o, h, lo, c)}


def test_scale_in_gives_one_trade_per_entry_lot_closed_fifo(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10.5, 9.5, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 11, 9.8, 10.8))
    tape.fill(day(1), "A", "X", BUY, 100, 10.0, commission=1.0, slippage=0.1)
    tape.order(day(1), "B", "X", BUY, 50)
    tape.bar(day(2), bar(12, 12.5, 11.5, 12))
    tape.fill(day(2), "B", "X", BUY, 50, 12.0, commission=0.5, slippage=0.05)
    tape.bar(day(3), bar(13, 14, 12.8, 13.5))
    tape.order(day(3), "C", "X", SELL, 150, reason="signal")
    tape.bar(day(4), bar(15, 15.5, 14.5, 15))
    tape.fill(day(4), "C", "X", SELL, 150, 15.0, commission=1.5, slippage=0.3)

    first, second = rows(trades_of(tape))
    check(
        first,
        lot_id="L1",
        side="long",
        quantity=100.0,
        lot_quantity=100.0,
        entry_order_id="A",
        exit_order_id="C",
        entry_price=10.0,
        exit_price=15.0,
        entry_commission=1.0,
        entry_slippage=0.1,
        exit_commission=1.0,  # 1.5 x 100/150
        exit_slippage=0.2,
        pnl_gross=500.0,
        pnl_net=498.0,
        pnl_percent=49.8,
        total_cost=2.3,
        holding_period_bars=3,  # bars d1, d2, d3
        holding_period_days=3.0,
        max_favorable_excursion=5.0,  # up to the exit price 15
        max_adverse_excursion=0.2,  # low of d1, 9.8
        max_favorable_pct=50.0,
        max_adverse_pct=2.0,
        exit_reason="signal",
    )
    check(
        second,
        lot_id="L2",
        quantity=50.0,
        entry_order_id="B",
        entry_price=12.0,
        exit_price=15.0,
        entry_commission=0.5,
        exit_commission=0.5,
        exit_slippage=0.1,
        pnl_gross=150.0,
        pnl_net=149.0,
        pnl_percent=149.0 / 600.0 * 100.0,
        total_cost=1.15,
        holding_period_bars=2,
        max_favorable_excursion=3.0,
        max_adverse_excursion=0.5,  # low of d2, 11.5
        max_adverse_pct=0.5 / 12.0 * 100.0,
    )
    assert first["entry_timestamp"] < second["entry_timestamp"] == second["entry_timestamp"]


def test_partial_exits_split_one_lot_into_one_trade_per_exit_order(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10.2, 9.9, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 10.5, 9.5, 10.2))
    tape.fill(day(1), "A", "X", BUY, 100, 10.0, commission=2.0)
    tape.order(day(1), "B", "X", SELL, 40, reason="signal")
    tape.bar(day(2), bar(11, 11.2, 10.8, 11))
    tape.fill(day(2), "B", "X", SELL, 40, 11.0, commission=0.4)
    tape.order(day(2), "C", "X", SELL, 60, reason="manual")
    tape.bar(day(3), bar(10, 10.1, 8.5, 9))
    tape.fill(day(3), "C", "X", SELL, 60, 10.0, commission=0.6)

    first, second = rows(trades_of(tape))
    check(
        first,
        lot_id="L1",
        quantity=40.0,
        lot_quantity=100.0,
        entry_commission=0.8,
        exit_commission=0.4,
        pnl_gross=40.0,
        pnl_net=38.8,
        pnl_percent=9.7,
        holding_period_bars=1,
        max_favorable_excursion=1.0,
        max_adverse_excursion=0.5,
        exit_reason="signal",
    )
    check(
        second,
        lot_id="L1",
        quantity=60.0,
        lot_quantity=100.0,
        entry_commission=1.2,
        exit_commission=0.6,
        pnl_gross=0.0,
        pnl_net=-1.8,
        pnl_percent=-0.3,
        holding_period_bars=2,
        holding_period_days=2.0,
        max_favorable_excursion=1.2,  # high of d2; d3 (the exit bar) is not counted
        max_adverse_excursion=0.5,
        exit_reason="manual",
    )


def test_a_flip_closes_the_long_and_opens_a_short_with_the_rest(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 10.4, 9.7, 10))
    tape.fill(day(1), "A", "X", BUY, 100, 10.0, commission=1.0)
    tape.order(day(1), "B", "X", SELL, 150, reason="signal")
    tape.bar(day(2), bar(12, 12.2, 11.6, 11.8))
    tape.fill(day(2), "B", "X", SELL, 150, 12.0, commission=1.5, slippage=0.3)
    tape.bar(day(3), bar(11.5, 12.4, 11, 11.2))
    tape.order(day(3), "C", "X", BUY, 50, reason="signal")
    tape.bar(day(4), bar(11, 11.5, 10.5, 11))
    tape.fill(day(4), "C", "X", BUY, 50, 11.0, commission=0.5)

    long, short = rows(trades_of(tape))
    check(
        long,
        side="long",
        quantity=100.0,
        exit_order_id="B",
        exit_commission=1.0,
        exit_slippage=0.2,
        pnl_gross=200.0,
        pnl_net=198.0,
        holding_period_bars=1,
        max_favorable_excursion=2.0,
        max_adverse_excursion=0.3,
    )
    check(
        short,
        side="short",
        lot_id="L2",
        quantity=50.0,
        lot_quantity=50.0,
        entry_order_id="B",
        entry_price=12.0,
        entry_commission=0.5,
        entry_slippage=0.1,
        exit_order_id="C",
        exit_price=11.0,
        exit_commission=0.5,
        pnl_gross=50.0,
        pnl_net=49.0,
        pnl_percent=49.0 / 600.0 * 100.0,
        holding_period_bars=2,
        max_favorable_excursion=1.0,  # 12 - low 11 (d3)
        max_adverse_excursion=0.4,  # high 12.4 (d3) - 12
        max_favorable_pct=1.0 / 12.0 * 100.0,
        max_adverse_pct=0.4 / 12.0 * 100.0,
    )


def stop_exit_tape() -> Tape:
    tape = Tape(["X"])
    tape.bar(day(0), bar(100, 101, 99, 100))
    tape.order(day(0), "A", "X", BUY, 10, reason="signal", stop_loss=95.0, take_profit=110.0)
    tape.bar(day(1), bar(100, 104, 99, 103))
    tape.fill(day(1), "A", "X", BUY, 10, 100.0, commission=1.0)
    for leg in ("sl", "tp"):
        accepted = OrderAccepted(ts_event=day(1), order_id=f"A.{leg}", strategy_id="s", symbol="X")
        tape.steps.append((day(1), ORDER_EVENTS, accepted))
    tape.bar(day(2), bar(103, 106, 101, 102))
    tape.bar(day(3), bar(101, 102, 94, 95))  # the stop at 95 triggers inside this bar
    tape.fill(day(3), "A.sl", "X", SELL, 10, 95.0, commission=1.0, reason="stop_loss")
    cancelled = OrderCancelled(ts_event=day(3), order_id="A.tp", strategy_id="s", symbol="X")
    tape.steps.append((day(3), ORDER_EVENTS, cancelled))
    tape.bar(day(4), bar(94, 96, 93, 94))
    return tape


def test_stop_exit_has_the_mfe_and_mae_known_in_advance(trades_of) -> None:
    (trade,) = rows(trades_of(stop_exit_tape()))
    check(
        trade,
        exit_reason="stop_loss",
        exit_order_id="A.sl",
        entry_price=100.0,
        exit_price=95.0,
        pnl_gross=-50.0,
        pnl_net=-52.0,
        pnl_percent=-5.2,
        stop_loss_level=95.0,
        take_profit_level=110.0,
        holding_period_bars=2,
        holding_period_days=2.0,
        max_favorable_excursion=6.0,  # high 106 on d2
        max_adverse_excursion=5.0,  # the stop fill at 95; the exit bar's low 94 is after it
        max_favorable_pct=6.0,
        max_adverse_pct=5.0,
    )


def test_a_moved_stop_is_the_level_on_the_trade(trades_of) -> None:
    tape = stop_exit_tape()
    moved = OrderUpdated(
        ts_event=day(2),
        order_id="A.sl",
        strategy_id="s",
        symbol="X",
        status=OrderStatus.ACCEPTED,
        quantity=10,
        filled_quantity=0,
        stop_price=98.0,
    )
    at = next(i for i, (ts, *_) in enumerate(tape.steps) if ts == day(3))
    tape.steps.insert(at, (day(2), ORDER_EVENTS, moved))
    (trade,) = rows(trades_of(tape))
    assert trade["stop_loss_level"] == 98.0


def test_partial_fills_merge_into_vwap_prices(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 10.3, 9.9, 10.1))
    tape.fill(day(1), "A", "X", BUY, 60, 10.0, commission=0.6, remaining=40)
    tape.bar(day(2), bar(10.5, 10.8, 10.4, 10.6))
    tape.fill(day(2), "A", "X", BUY, 40, 10.5, commission=0.4, remaining=0)
    tape.order(day(2), "B", "X", SELL, 100)
    tape.bar(day(3), bar(11, 11.4, 10.9, 11.2))
    tape.fill(day(3), "B", "X", SELL, 30, 11.0, commission=0.3, remaining=70)
    tape.bar(day(4), bar(12, 12.2, 11.8, 12))
    tape.fill(day(4), "B", "X", SELL, 70, 12.0, commission=0.7, remaining=0)

    (trade,) = rows(trades_of(tape))
    check(
        trade,
        quantity=100.0,
        entry_price=10.2,  # (60 x 10 + 40 x 10.5) / 100
        exit_price=11.7,  # (30 x 11 + 70 x 12) / 100
        entry_commission=1.0,
        exit_commission=1.0,
        pnl_gross=150.0,
        pnl_net=148.0,
        holding_period_bars=3,
        holding_period_days=3.0,
        max_favorable_excursion=1.8,  # the last exit fill at 12
        max_adverse_excursion=0.3,  # low 9.9 on d1
        exit_reason="signal",
    )
    assert trade["entry_timestamp"].day == 3 and trade["exit_timestamp"].day == 6


def test_open_trades_close_at_the_last_close_as_end_of_backtest(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 10.5, 9.5, 10.2))
    tape.fill(day(1), "A", "X", BUY, 100, 10.0, commission=1.0)
    tape.bar(day(2), bar(10.2, 11, 10, 10.8))
    tape.bar(day(3), bar(10.8, 12.5, 10.7, 12.0))

    (trade,) = rows(trades_of(tape))
    check(
        trade,
        exit_reason="end_of_backtest",
        exit_price=12.0,
        exit_commission=0.0,
        pnl_gross=200.0,
        pnl_net=199.0,
        holding_period_bars=3,  # held through the close of d3
        max_favorable_excursion=2.5,
        max_adverse_excursion=0.5,
    )
    assert trade["exit_timestamp"].day == 5 and trade["exit_order_id"] is None


def test_open_trades_can_be_left_open(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 100)
    tape.bar(day(1), bar(10, 10.5, 9.5, 10.2))
    tape.fill(day(1), "A", "X", BUY, 100, 10.0, commission=1.0)
    tape.bar(day(2), bar(10.2, 11, 10, 10.8))

    (trade,) = rows(trades_of(tape, close_open=False))
    assert trade["exit_reason"] is None and trade["exit_price"] is None
    assert trade["pnl_net"] is None and trade["total_cost"] == 1.0
    assert trade["holding_period_bars"] == 2 and trade["max_favorable_excursion"] == 1.0


def test_signals_and_context_come_from_the_bar_each_order_was_decided_on(trades_of) -> None:
    tape = Tape(["X", "Y"])
    both = {"X": (10, 10, 10, 10), "Y": (5, 5, 5, 5)}
    tape.bar(day(0), both, signal={"X": 0.9, "Y": 0.1}, context={"vix": 14.0, "rate": 0.05})
    tape.order(day(0), "A", "X", BUY, 10)
    tape.bar(day(1), both, signal={"X": 0.5, "Y": 0.2}, context={"vix": 15.0, "rate": 0.05})
    tape.fill(day(1), "A", "X", BUY, 10, 10.0)
    tape.bar(day(2), both, signal={"X": -0.7, "Y": 0.3}, context={"vix": 31.0, "rate": None})
    tape.order(day(2), "B", "X", SELL, 10, reason="signal")
    tape.bar(day(3), both, signal={"X": 0.0, "Y": 0.4}, context={"vix": 22.0, "rate": 0.06})
    tape.fill(day(3), "B", "X", SELL, 10, 10.0)

    frame = trades_of(tape, signals=("signal",), context=("vix", "rate"))
    (trade,) = rows(frame)
    check(trade, entry_signal=0.9, entry_vix=14.0, exit_signal=-0.7, exit_vix=31.0)
    assert trade["exit_rate"] is None
    assert trade["entry_context_json"] == '{"rate":0.05,"vix":14.0}'
    assert trade["exit_context_json"] == '{"rate":null,"vix":31.0}'
    assert frame.schema["entry_signal"] == pl.Float64


def test_by_default_every_non_ohlcv_column_and_context_field_is_captured(trades_of) -> None:
    (trade,) = rows(trades_of(stop_exit_tape()))
    assert "entry_signal" in trade and "exit_signal" in trade
    assert not any(key.startswith("entry_volume") for key in trade)


def test_two_strategies_on_one_symbol_keep_separate_lots(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.order(day(0), "A", "X", BUY, 10, strategy="trend")
    tape.order(day(0), "B", "X", SELL, 5, strategy="revert")
    tape.bar(day(1), bar(10, 11, 9, 10))
    tape.fill(day(1), "A", "X", BUY, 10, 10.0, strategy="trend")
    tape.fill(day(1), "B", "X", SELL, 5, 10.0, strategy="revert")
    tape.bar(day(2), bar(12, 12, 12, 12))
    tape.fill(day(2), "C", "X", SELL, 10, 12.0, strategy="trend")
    tape.fill(day(2), "D", "X", BUY, 5, 12.0, strategy="revert")

    trend, revert = rows(trades_of(tape))
    check(trend, strategy_id="trend", side="long", pnl_gross=20.0)
    check(revert, strategy_id="revert", side="short", pnl_gross=-10.0)


def test_every_exit_reason_source(trades_of) -> None:
    """Fill reason first, then the closing order's reason, then the bracket suffix."""
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    for i, (reason, fill_reason) in enumerate(
        [("time_exit", ""), ("", "trailing_stop"), ("risk_halt", ""), ("", "")]
    ):
        tape.fill(day(0), f"in{i}", "X", BUY, 1, 10.0)
        if reason:
            tape.order(day(0), f"out{i}", "X", SELL, 1, reason=reason)
        tape.fill(day(0), f"out{i}", "X", SELL, 1, 10.0, reason=fill_reason)
    tape.fill(day(0), "in9", "X", BUY, 1, 10.0)
    tape.fill(day(0), "in9.tp", "X", SELL, 1, 10.0)
    reasons = trades_of(tape).get_column("exit_reason").to_list()
    assert reasons == ["time_exit", "trailing_stop", "risk_halt", "signal", "take_profit"]


def test_a_cancelled_partial_exit_closes_what_it_filled(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.fill(day(0), "A", "X", BUY, 100, 10.0)
    tape.bar(day(1), bar(11, 11, 11, 11))
    tape.fill(day(1), "B", "X", SELL, 30, 11.0, remaining=70)
    cancelled = OrderCancelled(
        ts_event=day(1), order_id="B", strategy_id="s", symbol="X", filled_quantity=30
    )
    tape.steps.append((day(1), ORDER_EVENTS, cancelled))
    tape.bar(day(2), bar(12, 12, 12, 12))
    tape.fill(day(2), "C", "X", SELL, 20, 12.0, remaining=50)  # a working order
    tape.bar(day(3), bar(13, 13, 13, 13))
    tape.fill(day(3), "D", "X", SELL, 10, 13.0)  # another order settles C's record
    tape.bar(day(4), bar(14, 14, 14, 14))

    frame = trades_of(tape)
    assert frame["exit_order_id"].to_list() == ["B", "C", "D", None]
    assert frame["quantity"].to_list() == [30.0, 20.0, 10.0, 40.0]
    assert frame["exit_reason"].to_list()[-1] == "end_of_backtest"
    assert frame["pnl_gross"].to_list() == pytest.approx([30.0, 40.0, 30.0, 160.0])
    assert set(frame["lot_id"]) == {"L1"}


def test_fills_without_market_data_still_make_trades(trades_of) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), bar(10, 10, 10, 10))
    tape.fill(day(0), "A", "Z", BUY, 5, 20.0)  # Z never appears in a market batch
    tape.fill(day(1), "B", "Z", BUY, 5, 22.0)
    (first, second) = rows(trades_of(tape))
    assert first["symbol"] == "Z" and first["exit_reason"] == "end_of_backtest"
    assert first["exit_price"] == 22.0 and first["holding_period_bars"] == 0  # last fill
    assert first["pnl_gross"] == 10.0 and second["pnl_gross"] == 0.0


def test_symbols_that_join_mid_run_get_the_next_codes_and_open_lots_keep_theirs() -> None:
    # the batches' codes are the session's: B, D first, then A and C as they join
    tape = Tape(["B", "D", "A", "C"])
    builder = TradeBuilder(signals=())
    builder.on_session(SessionStarted(ts_event=day(0), ts_init=day(0), symbols=["B", "D"]))
    builder.on_market(tape.bar(day(0), {"D": (10, 10, 10, 10)}))
    builder.on_fill(tape.fill(day(0), "A", "D", BUY, 1, 10.0))
    builder.on_session(UniverseChanged(ts_event=day(1), ts_init=day(1), added=["A", "C"]))
    builder.on_market(tape.bar(day(1), {"A": (1, 1, 1, 1), "D": (11, 12, 9, 11)}))
    builder.on_market(tape.bar(day(2), {"C": (5, 5, 5, 5), "D": (11, 11, 11, 11)}))
    builder.on_fill(tape.fill(day(2), "B", "D", SELL, 1, 11.0))
    (trade,) = rows(builder.finish().frame())
    check(trade, holding_period_bars=2, max_favorable_excursion=2.0, max_adverse_excursion=1.0)


def test_a_batch_with_a_code_the_session_never_announced_is_an_error() -> None:
    tape = Tape(["B", "D", "A"])
    builder = TradeBuilder(signals=())
    builder.on_session(SessionStarted(ts_event=day(0), ts_init=day(0), symbols=["B", "D"]))
    builder.on_market(tape.bar(day(0), {"D": (10, 10, 10, 10)}))
    builder.on_fill(tape.fill(day(0), "A", "D", BUY, 1, 10.0))
    builder.on_market(tape.bar(day(1), {"A": (1, 1, 1, 1), "D": (11, 12, 9, 11)}))
    with pytest.raises(DataValidationError, match="symbol code 2, past the 2 symbols"):
        builder.finish()


def test_context_json_is_the_same_whether_a_value_came_as_int_or_float() -> None:
    def trade_json(vix: float) -> str:
        tape = Tape(["X"])
        tape.bar(day(0), bar(10, 10, 10, 10), context={"vix": vix})
        tape.fill(day(0), "A", "X", BUY, 1, 10.0)
        return via_builder(tape)["entry_context_json"][0]

    assert trade_json(20) == trade_json(20.0) == '{"vix":20.0}'


# ---------------------------------------------------------------- the MFE/MAE window
#
# One path for every fill timing; every entry and exit fills at 100, so MFE and MAE come
# from the bars the lot held from their open to their close, and from nothing else.
PATH = (
    bar(100, 105, 95, 100),  # d0: the entry decision
    bar(100, 101, 96, 100),  # d1
    bar(100, 120, 97, 100),  # d2
    bar(100, 130, 70, 100),  # d3
)


def path(*steps: tuple[int, str, str, OrderSide]) -> Tape:
    """The bars of PATH with ``(i, "order" | "fill", order_id, side)`` steps after bar i,
    in the order given (market orders, 10 of X, filled at 100)."""
    tape = Tape(["X"])
    for i, ohlc in enumerate(PATH):
        tape.bar(day(i), ohlc)
        for at, kind, order_id, side in steps:
            if at != i:
                continue
            if kind == "order":
                tape.order(day(i), order_id, "X", side, 10)
            else:
                reason = "stop_loss" if order_id.endswith(".sl") else ""
                tape.fill(day(i), order_id, "X", side, 10, 100.0, reason=reason)
    return tape


def test_same_close_window_runs_from_the_bar_after_entry_through_the_exit_bar(trades_of) -> None:
    # entry at d0's close, exit at d2's close: d1 and d2 were held whole, d0 was not
    tape = path(
        (0, "order", "A", BUY),
        (0, "fill", "A", BUY),
        (2, "order", "B", SELL),
        (2, "fill", "B", SELL),
    )
    (trade,) = rows(trades_of(tape, fill_timing="same_close"))
    check(
        trade,
        holding_period_bars=2,  # d1, d2
        max_favorable_excursion=20.0,  # high of d2, the exit bar: 120 (without it: 1)
        max_adverse_excursion=4.0,  # low of d1: 96 (d0's 95 came before the entry)
    )


def test_next_open_window_runs_from_the_entry_bar_up_to_the_exit_bar(trades_of) -> None:
    # entry at d1's open, exit at d3's open: d1 and d2 were held whole, d3 only at 100
    tape = path(
        (0, "order", "A", BUY),
        (1, "fill", "A", BUY),
        (2, "order", "B", SELL),
        (3, "fill", "B", SELL),
    )
    (trade,) = rows(trades_of(tape, fill_timing="next_open"))
    check(
        trade,
        holding_period_bars=2,  # d1, d2
        max_favorable_excursion=20.0,  # high of d2 (d3's 130 came after the exit)
        max_adverse_excursion=4.0,  # low of d1, the entry bar: 96 (without it: 3)
    )


def test_next_close_window_leaves_out_the_entry_bar_and_counts_the_exit_bar(trades_of) -> None:
    # entry at d1's close, exit at d2's close: only d2 was held whole
    tape = path(
        (0, "order", "A", BUY),
        (1, "fill", "A", BUY),
        (1, "order", "B", SELL),
        (2, "fill", "B", SELL),
    )
    (trade,) = rows(trades_of(tape, fill_timing="next_close"))
    check(
        trade,
        holding_period_bars=1,  # d2
        max_favorable_excursion=20.0,  # high of d2, the exit bar (without it: 1)
        max_adverse_excursion=3.0,  # low of d2: 97 (d1's 96 came before the entry)
    )


def test_same_close_stop_exit_within_the_bar_counts_only_its_fill_price(trades_of) -> None:
    # entry at d0's close; the bracket's stop fills within d2 (at 100 here): d2's range
    # is not known to have come before it, so only d1 counts
    tape = path((0, "order", "A", BUY), (0, "fill", "A", BUY), (2, "fill", "A.sl", SELL))
    (trade,) = rows(trades_of(tape, fill_timing="same_close"))
    check(
        trade,
        exit_reason="stop_loss",
        holding_period_bars=1,  # d1
        max_favorable_excursion=1.0,  # high of d1: 101
        max_adverse_excursion=4.0,  # low of d1: 96
    )


def test_same_close_exit_left_to_the_next_open_leaves_that_bar_out(trades_of) -> None:
    # the exit decided on d2 could not fill at d2's close (no volume, say) and fills at
    # d3's open: d3 is out, d2 was held whole
    tape = path(
        (0, "order", "A", BUY),
        (0, "fill", "A", BUY),
        (2, "order", "B", SELL),
        (3, "fill", "B", SELL),
    )
    (trade,) = rows(trades_of(tape, fill_timing="same_close"))
    check(trade, holding_period_bars=2, max_favorable_excursion=20.0, max_adverse_excursion=4.0)


def test_same_close_entry_held_to_the_end_counts_the_bars_after_its_entry_bar(trades_of) -> None:
    # entry at d0's close, closed as end_of_backtest at d3's close: d1, d2, d3
    tape = path((0, "order", "A", BUY), (0, "fill", "A", BUY))
    (trade,) = rows(trades_of(tape, fill_timing="same_close"))
    check(
        trade,
        exit_reason="end_of_backtest",
        holding_period_bars=3,
        max_favorable_excursion=30.0,  # high of d3: 130
        max_adverse_excursion=30.0,  # low of d3: 70
    )


def test_intrabar_close_puts_every_fill_at_its_bars_close(trades_of) -> None:
    # intrabar: close (the zipline preset): the stop child fills at d2's close too
    tape = path((0, "order", "A", BUY), (1, "fill", "A", BUY), (2, "fill", "A.sl", SELL))
    (trade,) = rows(trades_of(tape, fill_timing="next_close", intrabar="close"))
    check(trade, holding_period_bars=1, max_favorable_excursion=20.0, max_adverse_excursion=3.0)


def test_an_unknown_fill_timing_is_refused_with_the_value() -> None:
    with pytest.raises(ConfigError, match="fill_timing 'same_open' is not one of next_open"):
        TradeBuilder(fill_timing="same_open")
    with pytest.raises(ConfigError, match="intrabar 'hl' is not one of ohlc, close"):
        Recorder(intrabar="hl")


def test_a_journal_header_with_only_the_old_flag_replays_with_its_fill_timing() -> None:
    # journals written before fill_timing was recorded carry excursion_from_entry_bar
    def legacy(params: dict[str, Any]) -> Recorder:
        return Recorder.for_replay({"recorder": params}, output_dir=None)

    old_same_close = legacy({"excursion_from_entry_bar": False})
    assert (old_same_close.fill_timing, old_same_close.intrabar) == ("same_close", "ohlc")
    assert legacy({"excursion_from_entry_bar": True}).fill_timing == "next_open"
    old = legacy({"fill_timing": "next_close", "intrabar": "close", "initial_equity": 5.0})
    assert (old.fill_timing, old.intrabar, old.initial_equity) == ("next_close", "close", 5.0)


def test_a_journal_header_gives_the_fill_rules_from_the_run_config() -> None:
    header = {"config": {"execution": {"fill_timing": "next_close", "intrabar": "close"}}}
    again = Recorder.for_replay(header, output_dir=None)
    assert (again.fill_timing, again.intrabar) == ("next_close", "close")
    assert again.initial_equity is None  # it comes with the journaled SessionStarted
