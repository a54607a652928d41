"""The numbers behind the report's panels, each checked against a hand computation."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from ml4t.backtest.metrics import annual_volatility, sharpe_ratio
from ml4t.backtest.report import _panels as panels

DAY = 86_400 * 10**9


def _utc(*stamps: str) -> pl.Series:
    return pl.Series([datetime.fromisoformat(s) for s in stamps]).dt.replace_time_zone("UTC")


def test_daily_closes_take_the_last_state_of_each_day_in_the_day_timezone() -> None:
    portfolio = pl.DataFrame(
        {
            "timestamp": _utc(
                "2024-01-02 15:00", "2024-01-02 21:00", "2024-01-03 03:00", "2024-01-03 21:00"
            ),
            "equity": [100.0, 101.0, 102.0, 103.0],
        }
    )
    utc = panels.daily_closes(portfolio, "UTC")
    assert utc.get_column("date").to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert utc.get_column("equity").to_list() == [101.0, 103.0]
    assert utc.get_column("row").to_list() == [1, 3]
    # 03:00 UTC on Jan 3 is 22:00 on Jan 2 in New York: it closes New York's Jan 2
    ny = panels.daily_closes(portfolio, "America/New_York")
    assert ny.get_column("equity").to_list() == [102.0, 103.0]
    assert ny.get_column("row").to_list() == [2, 3]


def test_daily_returns_start_from_the_initial_equity() -> None:
    assert panels.daily_returns(np.array([110.0, 99.0]), 100.0) == pytest.approx([0.1, -0.1])


def test_rolling_sharpe_and_volatility_by_hand() -> None:
    r = np.array([0.01, 0.03, -0.02, 0.02])
    sharpe, vol = panels.rolling_stats(r, window=3, periods_per_year=4.0)
    # window [0.01, 0.03, -0.02]: mean 0.02/3, sample std sqrt(1.26667e-3 / 2) = 0.0251661
    # window [0.03, -0.02, 0.02]: mean 0.01, sample std sqrt(1.4e-3 / 2) = 0.0264575
    assert np.isnan(sharpe[:2]).all() and np.isnan(vol[:2]).all()
    assert sharpe[2:] == pytest.approx([0.0066667 / 0.0251661 * 2, 0.01 / 0.0264575 * 2], rel=1e-5)
    assert vol[2:] == pytest.approx([0.0251661 * 2, 0.0264575 * 2], rel=1e-5)
    # the same formulas as metrics.json on the last window
    assert sharpe[-1] == pytest.approx(sharpe_ratio(r[1:], periods_per_year=4.0), rel=1e-12)
    assert vol[-1] == pytest.approx(annual_volatility(r[1:], 4.0), rel=1e-12)


def test_rolling_sharpe_subtracts_the_daily_risk_free_rate() -> None:
    # a 1 % daily rate (annual 1.01**4 - 1 with 4 periods) makes the last window's mean
    # excess return 0
    r = np.array([0.01, 0.03, -0.02, 0.02])
    sharpe, vol = panels.rolling_stats(r, 3, 4.0, risk_free_rate=1.01**4 - 1)
    assert sharpe[-1] == pytest.approx(0.0, abs=1e-12)
    assert vol[-1] == pytest.approx(0.0264575 * 2, rel=1e-5)


def test_rolling_sharpe_of_a_flat_window_is_undefined_and_a_short_run_has_none() -> None:
    sharpe, vol = panels.rolling_stats(np.array([0.01, 0.01, 0.01]), 3, 252.0)
    assert np.isnan(sharpe[-1]) and vol[-1] == pytest.approx(0.0, abs=1e-12)
    sharpe, vol = panels.rolling_stats(np.array([0.01, 0.02]), 3, 252.0)
    assert np.isnan(sharpe).all() and np.isnan(vol).all()


def test_worst_drawdowns_are_episodes_under_water_deepest_first() -> None:
    ts = np.arange(10, dtype=np.int64) * DAY
    dd = np.array([0, -0.1, -0.2, 0, 0, -0.05, 0, -0.3, -0.1, -0.15])
    episodes = panels.worst_drawdowns(ts, dd, top=5)
    assert episodes == [
        panels.Drawdown(6 * DAY, 7 * DAY, None, -0.3, 3.0),  # not recovered: to the last state
        panels.Drawdown(0, 2 * DAY, 3 * DAY, -0.2, 3.0),
        panels.Drawdown(4 * DAY, 5 * DAY, 6 * DAY, -0.05, 2.0),
    ]
    assert panels.worst_drawdowns(ts, dd, top=2) == episodes[:2]
    assert panels.worst_drawdowns(ts, np.zeros(10)) == []


def test_a_drawdown_under_water_from_the_first_state_starts_there() -> None:
    ts = np.array([5, 6, 7], dtype=np.int64) * DAY
    assert panels.worst_drawdowns(ts, np.array([-0.02, -0.04, 0.0])) == [
        panels.Drawdown(5 * DAY, 6 * DAY, 7 * DAY, -0.04, 2.0)
    ]


def test_monthly_returns_chain_month_end_closes() -> None:
    days = pl.DataFrame(
        {
            "date": [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 1)],
            "equity": [105.0, 110.0, 99.0, 108.9],
        }
    )
    months = panels.monthly_returns(days, 100.0)
    assert months.select("year", "month").rows() == [(2024, 1), (2024, 2), (2024, 3)]
    assert months.get_column("return").to_list() == pytest.approx([0.10, -0.10, 0.10])


def test_the_benchmark_grows_the_initial_equity_over_the_run_days_only() -> None:
    benchmark = pl.DataFrame(
        {
            "date": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 10)],
            "return": [0.5, 0.10, -0.5, 0.2],
        }
    )
    days = pl.Series([date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)])
    # Jan 1 is before the run and Jan 10 after it; Jan 3 and 5 keep the last value
    values = panels.benchmark_equity(benchmark, days, 1000.0)
    assert values.tolist() == pytest.approx([1100.0, 1100.0, 550.0, 550.0])
    later = benchmark.filter(pl.col("date") >= date(2024, 1, 4))
    values = panels.benchmark_equity(later, days, 1000.0)
    assert values.tolist() == pytest.approx([1000.0, 1000.0, 500.0, 500.0])


def test_histogram_bins_by_hand() -> None:
    counts, edges = panels.histogram(np.array([-3.0, -1.0, 0.0, 1.0, 2.0, 5.0, math.nan]))
    # 6 values: max(5, 2 sqrt 6 = 4.9) = 5 bins of 1.6 over [-3, 5]
    assert edges.tolist() == pytest.approx([-3.0, -1.4, 0.2, 1.8, 3.4, 5.0])
    assert counts.tolist() == [1, 2, 1, 1, 1]
    counts, edges = panels.histogram(np.array([2.0, 2.0]))
    assert (edges[0], edges[-1], counts.sum()) == (1.0, 3.0, 2)
    assert panels.histogram(np.array([math.nan]))[0].size == 0


def test_symbol_breakdown_over_closed_trades() -> None:
    trades = pl.DataFrame(
        {
            "symbol": ["A", "B", "A", "C"],
            "pnl_net": [10.0, 5.0, -4.0, None],
            "pnl_gross": [11.0, 6.0, -3.0, None],
            "total_cost": [1.0, 1.0, 1.0, 0.5],
        }
    )
    rows = panels.symbol_breakdown(trades).rows(named=True)
    assert rows == [
        {
            "symbol": "A",
            "trades": 2,
            "win_rate": 50.0,
            "pnl_net": 6.0,
            "pnl_gross": 8.0,
            "costs": 2.0,
            "average_pnl": 3.0,
            "best": 10.0,
            "worst": -4.0,
        },
        {
            "symbol": "B",
            "trades": 1,
            "win_rate": 100.0,
            "pnl_net": 5.0,
            "pnl_gross": 6.0,
            "costs": 1.0,
            "average_pnl": 5.0,
            "best": 5.0,
            "worst": 5.0,
        },
    ]


def test_rejections_by_rule() -> None:
    t = _utc("2024-01-02 10:00", "2024-01-03 10:00", "2024-01-04 10:00", "2024-01-05 10:00")
    orders = pl.DataFrame(
        {
            "symbol": ["X", "X", "Y", "X", "Z"],
            "status": ["filled", "rejected", "rejected", "rejected", "rejected"],
            "updated_at": pl.concat([t[:1], t[:1], t[2:3], t[1:2], t[3:4]]),
            "reject_rule": [None, "a", "a", "b", None],
            "reject_reason": [None, "r1", "r2", "r3", "r4"],
        }
    )
    rows = panels.rejections(orders).rows(named=True)
    assert [(r["rule"], r["orders"], r["share"], r["symbols"]) for r in rows] == [
        ("a", 2, 50.0, 2),
        ("(no rule)", 1, 25.0, 1),
        ("b", 1, 25.0, 1),
    ]
    assert (rows[0]["first"], rows[0]["last"], rows[0]["example"]) == (t[0], t[2], "r1")


def test_thin_keeps_extremes_ends_and_the_rows_asked_for() -> None:
    column = np.zeros(100)
    column[13], column[57] = -9.0, 9.0
    idx = panels.thin([column], buckets=10, keep=np.array([42]))
    # constant buckets give their first row (as min and max); bucket 1 also its dip,
    # bucket 5 its spike
    assert idx.tolist() == sorted({*range(0, 100, 10), 13, 57, 99, 42})
    assert panels.thin([np.arange(30.0)], buckets=10).tolist() == list(range(30))
