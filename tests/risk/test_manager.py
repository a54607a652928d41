"""The risk manager on a real graph: approvals, rejections as events, reservations."""

from __future__ import annotations

import pytest

from ml4t.backtest import (
    CancelOrder,
    ModifyOrder,
    OrderFilled,
    OrderRejected,
    PortfolioSnapshot,
    SubmitOrder,
)
from ml4t.backtest.execution import SimulatedBroker
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.risk import RiskConfig, RiskManager
from ml4t.backtest.topics import (
    FILLS,
    MARKET,
    ORDER_EVENTS,
    ORDER_REQUESTS,
    ORDERS_APPROVED,
    PORTFOLIO,
    POSITIONS,
)
from tests.execution._market import batch, day, flat, order, run

TOPICS = (ORDERS_APPROVED, ORDER_EVENTS, FILLS)


def snapshot(
    ts: int, equity: float, cash: float | None = None, gross: float = 0.0
) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        ts_event=ts,
        equity=equity,
        cash=equity if cash is None else cash,
        positions_value=0.0 if cash is None else equity - cash,
        gross_exposure=gross,
        net_exposure=gross,
        num_positions=0,
    )


def graph(steps, config: RiskConfig, cash: float = 10_000.0):
    """Risk manager, broker and portfolio together."""
    portfolio = Portfolio(PortfolioConfig(initial_cash=cash, check_invariants=True))
    capture = run(steps, RiskManager(config), SimulatedBroker(), portfolio, topics=TOPICS)
    return capture, portfolio


def approved(capture) -> list[str]:
    return [e.order_id for e in capture.on_topic(ORDERS_APPROVED)]


def rejected(capture) -> list[tuple[str, str]]:
    return [(e.order_id, e.rule) for e in capture.of_type(OrderRejected)]


def test_approved_request_is_republished_unchanged() -> None:
    request = order("o1", "buy", 10, kind="limit", limit_price=99.0, reason="signal")
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), PORTFOLIO, snapshot(day(0), 10_000.0)),
        (day(0), ORDER_REQUESTS, request),
    ]
    capture = run(steps, RiskManager(), topics=TOPICS)
    (out,) = capture.on_topic(ORDERS_APPROVED)
    assert isinstance(out, SubmitOrder) and out == request


def test_rejection_is_an_event_with_rule_reason_and_symbol() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), PORTFOLIO, snapshot(day(0), 10_000.0)),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 101)),
    ]
    capture = run(steps, RiskManager(), topics=TOPICS)
    (event,) = capture.of_type(OrderRejected)
    assert (event.order_id, event.strategy_id, event.symbol, event.rule) == (
        "o1",
        "s1",
        "AAA",
        "buying_power",
    )
    assert "insufficient cash: order costs 10,100.00" in event.reason
    assert event.ts_event == day(0)
    assert approved(capture) == []


def test_open_orders_reserve_cash_until_they_fill() -> None:
    # 10,000 cash: two buys of 6,000 at once, the second is refused; after the first
    # fills (cash 4,000) a buy of 3,000 is fine
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 60)),
        (day(0), ORDER_REQUESTS, order("o2", "buy", 120, symbol="BBB")),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100), "BBB": flat(50)})),
        (day(1), ORDER_REQUESTS, order("o3", "buy", 60, symbol="BBB")),
    ]
    capture, portfolio = graph(steps, RiskConfig())
    assert approved(capture) == ["o1", "o3"]
    assert rejected(capture) == [("o2", "buying_power")]
    assert portfolio.cash == 4_000.0


def test_cancel_releases_the_reservation() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 60, kind="limit", limit_price=90.0)),
        (day(0), ORDER_REQUESTS, order("o2", "buy", 60, kind="limit", limit_price=90.0)),
        (day(0), ORDER_REQUESTS, CancelOrder(ts_event=0, order_id="o1", strategy_id="s1")),
        (day(0), ORDER_REQUESTS, order("o3", "buy", 60, kind="limit", limit_price=90.0)),
    ]
    capture, _ = graph(steps, RiskConfig())
    assert approved(capture) == ["o1", "o1", "o3"]  # o1, its cancel, then o3
    assert rejected(capture) == [("o2", "buying_power")]


def test_broker_rejection_releases_the_reservation() -> None:
    # a duplicate id slips past risk once the first order is gone from its book
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 1)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100)})),
        (day(1), ORDER_REQUESTS, order("o1", "buy", 99)),  # reused id: the broker refuses
        (day(1), ORDER_REQUESTS, order("o2", "buy", 98)),
    ]
    capture, _portfolio = graph(steps, RiskConfig())
    assert rejected(capture) == [("o1", "duplicate_order_id")]
    assert "o2" in approved(capture)


def test_modify_is_checked_as_the_order_it_would_become() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 50, kind="limit", limit_price=90.0)),
        (
            day(0),
            ORDER_REQUESTS,
            ModifyOrder(ts_event=0, order_id="o1", strategy_id="s1", quantity=200.0),
        ),
        (
            day(0),
            ORDER_REQUESTS,
            ModifyOrder(ts_event=0, order_id="o1", strategy_id="s1", quantity=80.0),
        ),
        (day(1), MARKET, batch(day(1), {"AAA": (95, 96, 89, 90, 1e6)})),
    ]
    capture, portfolio = graph(steps, RiskConfig(max_position_shares=100.0))
    assert rejected(capture) == [("o1", "max_position")]
    assert "would be 200 shares" in capture.of_type(OrderRejected)[0].reason
    assert [f.quantity for f in capture.of_type(OrderFilled)] == [80.0]
    assert portfolio.position("AAA") == 80.0


def test_broker_rejected_modify_keeps_the_order_reserved() -> None:
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 60, kind="limit", limit_price=90.0)),
        # stop_price on a limit order: risk passes it, the broker refuses it
        (
            day(0),
            ORDER_REQUESTS,
            ModifyOrder(ts_event=0, order_id="o1", strategy_id="s1", stop_price=1.0),
        ),
        (day(0), ORDER_REQUESTS, order("o2", "buy", 60, kind="limit", limit_price=90.0)),
    ]
    capture, _ = graph(steps, RiskConfig())
    assert rejected(capture) == [("o1", "invalid_order"), ("o2", "buying_power")]


def test_drawdown_halt_rejects_entries_and_allows_exits() -> None:
    config = RiskConfig(max_drawdown=0.1, account="margin")
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 50)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100), "BBB": flat(50)})),  # filled at 100
        (day(2), MARKET, batch(day(2), {"AAA": flat(70), "BBB": flat(50)})),  # equity 8,500
        (day(2), ORDER_REQUESTS, order("o2", "buy", 1, symbol="BBB")),
        (day(2), ORDER_REQUESTS, order("o3", "sell", 50)),
        (day(3), MARKET, batch(day(3), {"AAA": flat(75), "BBB": flat(50)})),
        (day(3), ORDER_REQUESTS, order("o4", "buy", 1, symbol="BBB")),  # still halted
    ]
    capture, portfolio = graph(steps, config)
    assert rejected(capture) == [("o2", "max_drawdown"), ("o4", "max_drawdown")]
    assert (
        "drawdown reached 15.00% of peak equity 10,000.00"
        in capture.of_type(OrderRejected)[0].reason
    )
    assert portfolio.position("AAA") == 0.0  # the exit went through


def test_daily_loss_halt_lasts_until_the_next_day() -> None:
    config = RiskConfig(max_daily_loss=0.05)
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 50)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100), "BBB": flat(50)})),  # filled, 10,000
        (day(2), MARKET, batch(day(2), {"AAA": flat(88), "BBB": flat(50)})),  # 9,400: -6 %
        (day(2), ORDER_REQUESTS, order("o2", "buy", 1, symbol="BBB")),
        (day(3), MARKET, batch(day(3), {"AAA": flat(88), "BBB": flat(50)})),  # a new day
        (day(3), ORDER_REQUESTS, order("o3", "buy", 1, symbol="BBB")),
    ]
    capture, _ = graph(steps, config)
    assert rejected(capture) == [("o2", "daily_loss_limit")]
    assert (
        "equity fell 6.00% from the day's start 10,000.00"
        in capture.of_type(OrderRejected)[0].reason
    )
    assert "o3" in approved(capture)


def test_positions_from_events_drive_the_open_positions_limit() -> None:
    config = RiskConfig(max_open_positions=1)
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100), "BBB": flat(50)})),
        (day(0), ORDER_REQUESTS, order("o1", "buy", 10)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100), "BBB": flat(50)})),
        (day(1), ORDER_REQUESTS, order("o2", "buy", 10, symbol="BBB")),
        (day(1), ORDER_REQUESTS, order("o3", "sell", 10)),
        (day(2), MARKET, batch(day(2), {"AAA": flat(100), "BBB": flat(50)})),
        (day(2), ORDER_REQUESTS, order("o4", "buy", 10, symbol="BBB")),
    ]
    capture, portfolio = graph(steps, config)
    assert rejected(capture) == [("o2", "max_open_positions")]
    assert portfolio.position("BBB") == 0.0 and "o4" in approved(capture)


def test_view_moves_early_positions_to_the_datas_codes() -> None:
    from ml4t.backtest import PositionChanged

    risk = RiskManager(RiskConfig(max_position_shares=15.0), symbols=["CCC", "AAA"])
    steps = [
        (
            day(0),
            POSITIONS,
            PositionChanged(
                ts_event=day(0), symbol="CCC", quantity=10.0, avg_price=20.0, realized_pnl=0.0
            ),
        ),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100), "CCC": flat(20)})),
        (day(1), PORTFOLIO, snapshot(day(1), 10_000.0)),
        (day(1), ORDER_REQUESTS, order("o1", "buy", 6, symbol="CCC")),
        (day(1), ORDER_REQUESTS, order("o2", "buy", 15, symbol="AAA")),
    ]
    capture = run(steps, risk, topics=TOPICS)
    assert rejected(capture) == [("o1", "max_position")]
    assert approved(capture) == ["o2"]
    assert risk.view.position[risk.view.code("CCC")] == 10.0


def test_daily_loss_day_is_a_date_in_the_datas_timezone() -> None:
    # 14:00, 14:50 and 15:10 UTC are 23:00, 23:50 and 00:10 in Tokyo: the equity falls
    # 4 % before Tokyo's midnight, so there the new day starts from 96,000 with no loss;
    # in UTC all three are one day, 4 % down
    from ml4t.backtest._time import to_ns

    times = [to_ns(f"2024-01-02T{t}:00+00:00") for t in ("14:00", "14:50", "15:10")]
    for timezone, start, worst in (("Asia/Tokyo", 96_000.0, 0.0), (None, 100_000.0, 0.04)):
        view = RiskManager(RiskConfig(max_daily_loss=0.03), timezone=timezone).view
        for ts, equity in zip(times, (100_000.0, 96_000.0, 96_000.0), strict=True):
            view.observe_equity(ts, equity)
        assert (view.day_start_equity, view.day_worst_loss) == (start, pytest.approx(worst))
