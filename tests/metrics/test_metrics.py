"""Metrics equal an independent implementation (empyrical-reloaded) on random returns."""

from __future__ import annotations

import math

import empyrical  # empyrical-reloaded, a dev dependency: the independent implementation
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import metrics as m

returns_series = st.lists(
    st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_subnormal=False),
    min_size=2,
    max_size=400,
).map(np.array)
periods = st.one_of(
    st.sampled_from([252.0, 365.25, 260.89, 52.0, 12.0]),
    st.floats(min_value=1.0, max_value=100_000.0),
)


def same(ours: float, theirs: float, rel_tol: float = 1e-9) -> bool:
    theirs = float(theirs)
    if math.isnan(theirs):
        return math.isnan(ours)
    if math.isinf(theirs):
        return ours == theirs
    return math.isclose(ours, theirs, rel_tol=rel_tol, abs_tol=1e-9)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=returns_series, ppy=periods)
def test_return_metrics_equal_empyrical(r: np.ndarray, ppy: float) -> None:
    with np.errstate(all="ignore"):  # empyrical's own overflow warnings are not ours
        theirs = _empyrical_metrics(r, ppy)
    ours = {
        "total_return": m.total_return(r),
        "annual_return": m.annual_return(r, ppy),
        "annual_volatility": m.annual_volatility(r, ppy),
        "sharpe_ratio": m.sharpe_ratio(r, ppy),
        "sortino_ratio": m.sortino_ratio(r, ppy),
        "downside_risk": m.downside_risk(r, ppy),
        "max_drawdown": m.max_drawdown(r),
        "calmar_ratio": m.calmar_ratio(r, ppy),
    }
    # Calmar divides by the max drawdown, which both compute with an absolute rounding
    # error of a few ulps (empyrical compounds wealth from 100, we from 1): the ratio's
    # relative error is then ~eps/|drawdown|, so a drawdown of 1e-9 cannot agree to 1e-9.
    # Below 1e-12 a drawdown is rounding noise: one side may round it to 0 (Calmar NaN)
    # and the other keep an ulp (Calmar ~1e31), so there is nothing to compare.
    calmar = ours.pop("calmar_ratio")
    ours_dd, their_dd = abs(ours["max_drawdown"]), abs(float(theirs["max_drawdown"]))
    if min(ours_dd, their_dd) >= 1e-12:
        tolerance = max(1e-9, 8 * np.finfo(float).eps / ours_dd)
        assert same(calmar, theirs["calmar_ratio"], tolerance), (calmar, theirs["calmar_ratio"])
    elif ours_dd == their_dd == 0.0:
        assert math.isnan(calmar) and math.isnan(theirs["calmar_ratio"])
    for name, value in ours.items():
        assert same(value, theirs[name]), f"{name}: ours {value!r} != empyrical {theirs[name]!r}"


def _empyrical_metrics(r: np.ndarray, ppy: float) -> dict[str, float]:
    return {
        "total_return": empyrical.cum_returns_final(r),
        "annual_return": empyrical.annual_return(r, annualization=ppy),
        "annual_volatility": empyrical.annual_volatility(r, annualization=ppy),
        "sharpe_ratio": empyrical.sharpe_ratio(r, annualization=ppy),
        "sortino_ratio": empyrical.sortino_ratio(r, annualization=ppy),
        "downside_risk": empyrical.downside_risk(r, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(r),
        "calmar_ratio": empyrical.calmar_ratio(r, annualization=ppy),
    }


@settings(max_examples=100, deadline=None)
@given(r=returns_series, rf=st.floats(min_value=0.0, max_value=0.001), ppy=periods)
def test_sharpe_with_a_risk_free_rate_equals_empyrical(r: np.ndarray, rf: float, ppy: float):
    assert same(m.sharpe_ratio(r, ppy, rf), empyrical.sharpe_ratio(r, rf, annualization=ppy))


@settings(max_examples=100, deadline=None)
@given(r=returns_series)
def test_drawdown_series_equals_empyrical(r: np.ndarray) -> None:
    ours, theirs = m.drawdown_series(r), np.asarray(empyrical.stats.drawdown_series(r))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_edge_cases_match_empyrical() -> None:
    flat = np.zeros(10)
    assert math.isnan(m.sharpe_ratio(flat, 252))
    assert same(m.sharpe_ratio(np.full(5, 0.01), 252), empyrical.sharpe_ratio(np.full(5, 0.01)))
    assert m.sortino_ratio(np.array([0.01, 0.02]), 252) == math.inf
    assert math.isnan(m.calmar_ratio(np.array([0.01, 0.02]), 252))
    for fn in (m.sharpe_ratio, m.sortino_ratio, m.annual_volatility):
        assert math.isnan(fn(np.array([0.01]), 252))
    assert math.isnan(m.total_return(np.array([]))) and math.isnan(m.max_drawdown([]))


def test_returns_from_equity_starts_from_the_initial_equity() -> None:
    r = m.returns_from_equity([110.0, 99.0, 108.9], 100.0)
    np.testing.assert_allclose(r, [0.1, -0.1, 0.1])
    assert m.total_return(r) == pytest.approx(0.089)


def _days(start: str, end: str, weekdays_only: bool) -> np.ndarray:
    days = np.arange(np.datetime64(start), np.datetime64(end), dtype="datetime64[D]")
    if weekdays_only:
        days = days[np.is_busday(days)]
    return (days.astype("datetime64[ns]") + np.timedelta64(20, "h")).astype(np.int64)


def test_periods_per_year_from_the_days_observed() -> None:
    weekdays = _days("2023-01-02", "2024-01-01", weekdays_only=True)
    assert m.periods_per_year_from_days(weekdays) == pytest.approx(260.89, abs=0.01)
    # NYSE 2023: 250 sessions (weekdays less 10 holidays)
    nyse = np.delete(weekdays, np.arange(1, 11) * 25)
    assert m.periods_per_year_from_days(nyse) == pytest.approx(249 / 259 * 260.89, abs=0.01)
    every_day = _days("2023-01-01", "2024-01-01", weekdays_only=False)
    assert m.periods_per_year_from_days(every_day) == pytest.approx(365.25)
    weekly = every_day[::7]  # Sundays: calendar days
    assert m.periods_per_year_from_days(weekly) == pytest.approx(365.25 / 7)
    assert m.periods_per_year_from_days(weekly[:1]) == 365.25


def test_trade_metrics_by_hand() -> None:
    trades = pl.DataFrame(
        {
            "pnl_net": [100.0, -50.0, 30.0, -20.0, None],
            "pnl_percent": [10.0, -5.0, 3.0, -2.0, None],
            "holding_period_bars": [1, 2, 3, 4, 5],
            "holding_period_days": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = m.trade_metrics(trades)
    assert out["num_trades"] == 4  # the open one (no P&L) is not counted
    assert out["win_rate"] == 0.5
    assert out["profit_factor"] == pytest.approx(130 / 70)
    assert out["average_win"] == 65.0 and out["average_loss"] == -35.0
    assert out["expectancy"] == 15.0
    assert out["best_trade"] == 100.0 and out["worst_trade"] == -50.0
    assert out["average_holding_bars"] == 2.5
    no_losses = m.trade_metrics(trades.head(1))
    assert no_losses["profit_factor"] == math.inf
    assert m.trade_metrics(trades.head(0))["num_trades"] == 0


pairs = st.integers(min_value=3, max_value=300).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(-0.2, 0.2, allow_subnormal=False), min_size=n, max_size=n),
        st.lists(st.floats(-0.2, 0.2, allow_subnormal=False), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=pairs, ppy=st.sampled_from([252.0, 365.25, 52.0]))
def test_benchmark_metrics_equal_empyrical(pair, ppy: float) -> None:
    r, b = (np.array(x) for x in pair)
    if np.var(b) < 1e-12:  # a flat benchmark: beta is undefined on both sides
        assert math.isnan(m.alpha_beta(r, b, ppy)[1])
        return
    with np.errstate(all="ignore"):
        alpha, beta = empyrical.alpha_beta(r, b, annualization=ppy)
    ours = m.alpha_beta(r, b, ppy)
    assert same(ours[1], beta) and same(ours[0], alpha, 1e-8)
    period = {252.0: "daily", 365.25: "daily", 52.0: "weekly"}[ppy]
    if ppy == 252.0 or period == "weekly":
        for ours_fn, theirs_fn in (
            (m.up_capture, empyrical.up_capture),
            (m.down_capture, empyrical.down_capture),
        ):
            with np.errstate(all="ignore"):
                theirs = theirs_fn(r, b, period=period)
            assert same(ours_fn(r, b, ppy), theirs), (ours_fn.__name__, theirs)
    excess = empyrical.excess_sharpe(r, b)
    assert same(m.information_ratio(r, b, ppy), excess * math.sqrt(ppy))
    assert same(m.tracking_error(r, b, ppy), float(np.std(r - b, ddof=1)) * math.sqrt(ppy))


def test_where_the_drawdown_is_and_the_longest_spell_under_water() -> None:
    # wealth 1, 1.1, 0.99, 1.045, 1.1495 (above the 1.1 peak), 1.0
    r = [0.1, -0.1, 0.05556, 0.1, -0.13]
    peak, trough, recovery = m.max_drawdown_periods(r)
    assert (peak, trough) == (4, 5) and recovery is None  # 1.1495 -> 1.0: -13 %
    assert m.max_drawdown_periods([0.01, 0.02]) == (0, 0, None)
    assert m.max_drawdown_periods([-0.1, 0.2]) == (0, 1, 2)  # from the start, recovered
    # under water 1 -> 4 (three periods) and 4 -> 5 (one), but 4 -> 5 spans more time
    assert m.longest_drawdown(r) == (1, 4)
    assert m.longest_drawdown(r, times=[0, 1, 2, 3, 30]) == (4, 5)
    assert m.longest_drawdown([0.01, 0.02]) is None
