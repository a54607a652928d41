"""Position accounting against hand-computed numbers: the pure rule, then the component."""

from __future__ import annotations

import pytest

from ml4t.backtest import OrderFilled, OrderSide, PortfolioSnapshot, PositionChanged
from ml4t.backtest._accounting import AccountingError, apply_fill
from ml4t.backtest.portfolio import Portfolio, PortfolioConfig
from ml4t.backtest.topics import FILLS, MARKET, PORTFOLIO, POSITIONS
from tests.execution._market import batch, day, flat, run, table

APPLY = [
    # id, (quantity, avg), signed fill (qty, price), expected (quantity, avg, realized)
    ("open_long", (0, 0), (100, 50), (100, 50, 0)),
    ("increase_long_averages", (100, 10), (100, 12), (200, 11, 0)),
    ("partial_close_long_keeps_avg", (200, 11), (-50, 13), (150, 11, 100)),
    ("close_long_at_a_loss", (150, 11), (-150, 9), (0, 0, -300)),
    ("open_short", (0, 0), (-100, 50), (-100, 50, 0)),
    ("increase_short_averages", (-100, 50), (-100, 40), (-200, 45, 0)),
    ("cover_short_at_a_profit", (-100, 50), (100, 46), (0, 0, 400)),
    ("partial_cover_short", (-100, 50), (40, 55), (-60, 50, -200)),
    ("flip_long_to_short", (100, 10), (-150, 12), (-50, 12, 200)),
    ("flip_short_to_long", (-100, 20), (150, 18), (50, 18, 200)),
]


@pytest.mark.parametrize(("position", "fill", "expected"), table(APPLY))
def test_apply_fill(position, fill, expected) -> None:
    assert apply_fill(float(position[0]), float(position[1]), float(fill[0]), float(fill[1])) == (
        pytest.approx(expected[0]),
        pytest.approx(expected[1]),
        pytest.approx(expected[2]),
    )


def test_float_dust_closes_a_position_exactly() -> None:
    qty = 0.0
    avg = 0.0
    for part in (33.3, 33.3, 33.4):
        qty, avg, _ = apply_fill(qty, avg, part, 10.0)
    assert apply_fill(qty, avg, -100.0, 10.0)[0] == 0.0


# ------------------------------------------------------------------ the component


def fill(ts, side, qty, price, symbol="AAA", commission=0.0, slippage=0.0, n=[0]):  # noqa: B006
    n[0] += 1
    return OrderFilled(
        ts_event=ts,
        fill_id=f"f{n[0]}",
        order_id=f"o{n[0]}",
        strategy_id="s",
        symbol=symbol,
        side=OrderSide(side),
        quantity=float(qty),
        price=float(price),
        commission=commission,
        slippage=slippage,
    )


def account(steps, cash=10_000.0):
    portfolio = Portfolio(PortfolioConfig(initial_cash=cash, check_invariants=True))
    capture = run(steps, portfolio, topics=(POSITIONS, PORTFOLIO))
    snaps = capture.of_type(PortfolioSnapshot)
    for s in snaps:
        assert s.equity == pytest.approx(s.cash + s.positions_value, abs=1e-9)
        assert s.equity == pytest.approx(
            cash + s.realized_pnl + s.unrealized_pnl - s.commission, abs=1e-9
        )
    return portfolio, snaps, capture.of_type(PositionChanged)


def test_long_round_trip_with_commission() -> None:
    _portfolio, snaps, changes = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(50)})),
            (day(1), FILLS, fill(day(1), "buy", 100, 50, commission=1.0)),
            (day(1), MARKET, batch(day(1), {"AAA": flat(52)})),
            (day(2), FILLS, fill(day(2), "sell", 100, 55, commission=1.0)),
            (day(2), MARKET, batch(day(2), {"AAA": flat(55)})),
        ]
    )
    held = snaps[1]
    assert (held.cash, held.positions_value, held.equity) == (4999.0, 5200.0, 10199.0)
    assert (held.unrealized_pnl, held.realized_pnl, held.commission) == (200.0, 0.0, 1.0)
    assert (held.gross_exposure, held.net_exposure, held.num_positions) == (5200.0, 5200.0, 1)
    done = snaps[2]
    assert (done.cash, done.equity, done.realized_pnl, done.commission) == (
        10498.0,
        10498.0,
        500.0,
        2.0,
    )
    assert done.num_positions == 0
    assert [(c.quantity, c.avg_price, c.realized_pnl) for c in changes] == [
        (100.0, 50.0, 0.0),
        (0.0, 0.0, 500.0),
    ]


def test_short_is_credited_and_marked_negative() -> None:
    _portfolio, snaps, _ = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(50)})),
            (day(1), FILLS, fill(day(1), "sell", 100, 50)),
            (day(1), MARKET, batch(day(1), {"AAA": flat(45)})),
            (day(2), FILLS, fill(day(2), "buy", 100, 46)),
            (day(2), MARKET, batch(day(2), {"AAA": flat(46)})),
        ]
    )
    short = snaps[1]
    assert (short.cash, short.positions_value, short.equity) == (15000.0, -4500.0, 10500.0)
    assert (short.gross_exposure, short.net_exposure, short.unrealized_pnl) == (
        4500.0,
        -4500.0,
        500.0,
    )
    assert (snaps[2].cash, snaps[2].realized_pnl) == (10400.0, 400.0)


def test_flip_long_to_short_in_one_fill() -> None:
    _portfolio, snaps, changes = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(10)})),
            (day(1), FILLS, fill(day(1), "buy", 100, 10)),
            (day(1), FILLS, fill(day(1), "sell", 150, 12)),
            (day(1), MARKET, batch(day(1), {"AAA": flat(11)})),
        ]
    )
    assert (changes[-1].quantity, changes[-1].avg_price, changes[-1].realized_pnl) == (
        -50.0,
        12.0,
        200.0,
    )
    flipped = snaps[-1]
    assert (flipped.cash, flipped.positions_value, flipped.equity) == (10800.0, -550.0, 10250.0)
    assert (flipped.realized_pnl, flipped.unrealized_pnl) == (200.0, 50.0)


def test_partial_closes_realize_against_the_average_cost() -> None:
    _portfolio, snaps, changes = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(10)})),
            (day(1), FILLS, fill(day(1), "buy", 100, 10)),
            (day(1), FILLS, fill(day(1), "buy", 100, 12)),
            (day(1), FILLS, fill(day(1), "sell", 50, 13)),
            (day(1), MARKET, batch(day(1), {"AAA": flat(12)})),
            (day(2), FILLS, fill(day(2), "sell", 150, 9)),
            (day(2), MARKET, batch(day(2), {"AAA": flat(9)})),
        ]
    )
    assert [(c.quantity, c.avg_price, c.realized_pnl) for c in changes] == [
        (100.0, 10.0, 0.0),
        (200.0, 11.0, 0.0),
        (150.0, 11.0, 100.0),
        (0.0, 0.0, -200.0),
    ]
    assert (snaps[1].cash, snaps[1].unrealized_pnl, snaps[1].equity) == (8450.0, 150.0, 10250.0)
    assert (snaps[2].cash, snaps[2].equity, snaps[2].realized_pnl) == (9800.0, 9800.0, -200.0)


def test_commission_leaves_cash_and_slippage_is_in_the_price() -> None:
    # bought at 100.1 (0.1 of slippage per share on a 100.0 rule price) with 1.5 commission
    _portfolio, snaps, _ = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(100)})),
            (day(1), FILLS, fill(day(1), "buy", 10, 100.1, commission=1.5, slippage=1.0)),
            (day(1), MARKET, batch(day(1), {"AAA": flat(100)})),
        ]
    )
    snap = snaps[-1]
    assert snap.cash == pytest.approx(10_000 - 1001.0 - 1.5)
    assert snap.unrealized_pnl == pytest.approx(-1.0)  # the slippage, seen at the mark
    assert (snap.commission, snap.slippage) == (1.5, 1.0)
    assert snap.equity == pytest.approx(10_000 - 1.0 - 1.5)


def test_one_snapshot_per_batch_marks_every_held_symbol() -> None:
    portfolio, snaps, _ = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(10), "BBB": flat(20), "CCC": flat(30)})),
            (day(1), FILLS, fill(day(1), "buy", 10, 10, symbol="AAA")),
            (day(1), FILLS, fill(day(1), "sell", 10, 20, symbol="BBB")),
            (day(1), FILLS, fill(day(1), "buy", 10, 30, symbol="CCC")),
            (day(1), MARKET, batch(day(1), {"AAA": flat(11), "BBB": flat(19), "CCC": flat(33)})),
            (day(2), MARKET, batch(day(2), {"AAA": flat(12)})),  # BBB, CCC keep their marks
        ]
    )
    assert [s.ts_event for s in snaps] == [day(0), day(1), day(2)]
    assert snaps[1].positions_value == pytest.approx(110 - 190 + 330)
    assert snaps[1].gross_exposure == pytest.approx(110 + 190 + 330)
    assert snaps[2].positions_value == pytest.approx(120 - 190 + 330)
    assert portfolio.gross_leverage == pytest.approx(640 / portfolio.equity)
    assert portfolio.net_leverage == pytest.approx(260 / portfolio.equity)
    table_ = portfolio.positions()
    assert table_["symbol"].to_list() == ["AAA", "BBB", "CCC"]
    assert table_["quantity"].to_list() == [10.0, -10.0, 10.0]
    assert table_["unrealized_pnl"].to_list() == pytest.approx([20.0, 10.0, 30.0])


def test_fills_after_the_snapshot_get_a_corrected_snapshot() -> None:
    # a same_close fill arrives after the bar's snapshot: a second one follows
    _portfolio, snaps, _ = account(
        [
            (day(0), MARKET, batch(day(0), {"AAA": flat(10)})),
            (day(0), FILLS, fill(day(0), "buy", 10, 10, commission=1.0)),
        ]
    )
    assert [(s.ts_event, s.cash, s.num_positions) for s in snaps] == [
        (day(0), 10_000.0, 0),
        (day(0), 9_899.0, 1),
    ]


def test_broken_identity_raises_in_debug_mode() -> None:
    portfolio = Portfolio(PortfolioConfig(initial_cash=1000.0))
    portfolio.check()
    portfolio.cash += 0.01  # a bug elsewhere
    with pytest.raises(AccountingError, match=r"account identity broken by 0\.01"):
        portfolio.check()
