"""``metrics.json``: the run's metrics, assembled from the recorder's running state.

Return, drawdown, Calmar and benchmark metrics use **daily returns** (the equity at the
last state of each day, a session with a calendar, the first against the initial
equity), annualised with ``periods_per_year``: they mean what empyrical, pyfolio and
quantstats mean by those names. The ``*_intraday`` drawdown metrics use every state
(every bar), so a drawdown inside a day counts there. See ``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest import metrics as m
from ml4t.backtest._time import NS_PER_DAY, from_ns
from ml4t.backtest.record.benchmark import benchmark_metrics
from ml4t.backtest.record.daily import date_of
from ml4t.backtest.record.states import PortfolioStates

__all__ = ["CostTotals", "build_metrics"]


class CostTotals:
    """Running sums over fills."""

    __slots__ = ("commission", "fills", "notional", "slippage")

    def __init__(self) -> None:
        self.fills = 0
        self.notional = 0.0
        self.commission = 0.0
        self.slippage = 0.0

    def add(self, quantity: float, price: float, commission: float, slippage: float) -> None:
        self.fills += 1
        self.notional += abs(quantity * price)
        self.commission += commission
        self.slippage += slippage


def _iso(ns: int | None) -> str | None:
    return from_ns(ns).isoformat() if ns is not None else None


def _day_iso(days: int | None) -> str | None:
    return date_of(days).isoformat() if days is not None else None


def _daily_drawdown(returns: np.ndarray, dates: list[int]) -> dict[str, Any]:
    """The drawdown of the daily series: how deep, where (session dates) and the longest
    time under water. Wealth index 0 is the start (the initial equity), dated by the
    first day; index i is the end of day i."""
    if not returns.size:
        return {
            "max_drawdown": math.nan,
            "max_drawdown_start": None,
            "max_drawdown_trough": None,
            "max_drawdown_end": None,
            "max_drawdown_duration_days": math.nan,
        }

    def day(index: int | None) -> int | None:
        return None if index is None else dates[max(index - 1, 0)]

    peak, trough, recovery = m.max_drawdown_periods(returns)
    drawn = trough > 0
    longest = m.longest_drawdown(returns, dates)
    duration = float(day(longest[1]) - day(longest[0])) if longest else 0.0  # type: ignore[operator]
    return {
        "max_drawdown": m.max_drawdown(returns),
        "max_drawdown_start": _day_iso(day(peak)) if drawn else None,
        "max_drawdown_trough": _day_iso(day(trough)) if drawn else None,
        "max_drawdown_end": _day_iso(day(recovery)) if drawn else None,
        "max_drawdown_duration_days": duration,
    }


def _intraday_drawdown(states: PortfolioStates) -> dict[str, Any]:
    """The drawdown over every state (every bar): the ``*_intraday`` keys."""
    has_equity = states.first_ts is not None
    return {
        "max_drawdown_intraday": states.max_drawdown if has_equity else math.nan,
        "max_drawdown_intraday_start": _iso(states.max_drawdown_start),
        "max_drawdown_intraday_trough": _iso(states.max_drawdown_trough),
        "max_drawdown_intraday_end": _iso(states.max_drawdown_end),
        "max_drawdown_intraday_duration_days": (
            states.max_drawdown_duration_ns / NS_PER_DAY if has_equity else math.nan
        ),
    }


def build_metrics(
    states: PortfolioStates,
    trades: pl.DataFrame,
    costs: CostTotals,
    *,
    orders: int,
    rejected: int,
    periods_per_year: float | None,
    periods_source: str,
    risk_free_rate: float = 0.0,
    cash_flows: Mapping[str, float] | None = None,
    benchmark: np.ndarray | None = None,
    benchmark_name: str | None = None,
) -> dict[str, Any]:
    """Every metric of the run as a flat dict (NaN where undefined). ``cash_flows`` are
    the totals of the cash that came without a trade (``dividend_income``,
    ``borrow_fees``, ``cash_in_lieu``; zero when not given); ``benchmark`` the
    benchmark's daily returns aligned with the run's (NaN where unknown)."""
    out: dict[str, Any] = {}
    initial = states.initial_equity
    final = states.last.equity if states.last is not None else math.nan
    out["start"] = _iso(states.first_ts)
    out["end"] = _iso(states.last_ts)
    out["initial_equity"] = initial if initial is not None else math.nan
    out["final_equity"] = final

    daily = states.daily
    ppy = periods_per_year
    if ppy is None and len(daily):
        ppy = m.periods_per_year_from_days(daily.ts)
        periods_source = "observed"
    ppy = ppy if ppy is not None else math.nan
    returns = daily.returns(initial)
    rf = (1.0 + risk_free_rate) ** (1.0 / ppy) - 1.0 if risk_free_rate and ppy > 0 else 0.0
    out["periods_per_year"] = int(ppy) if math.isfinite(ppy) and float(ppy).is_integer() else ppy
    out["periods_per_year_source"] = periods_source if returns.size else None
    out["return_periods"] = int(returns.size)
    out["total_return"] = final / initial - 1.0 if initial else math.nan
    out["annual_return"] = m.annual_return(returns, ppy)
    out["annual_volatility"] = m.annual_volatility(returns, ppy)
    out["sharpe_ratio"] = m.sharpe_ratio(returns, ppy, rf)
    out["sortino_ratio"] = m.sortino_ratio(returns, ppy)
    out.update(_daily_drawdown(returns, daily.dates))
    out["calmar_ratio"] = m.calmar_ratio(returns, ppy) if returns.size else math.nan
    out.update(_intraday_drawdown(states))
    out.update(benchmark_metrics(benchmark_name, returns, benchmark, ppy, rf))

    trade = m.trade_metrics(trades)
    out.update(trade)
    out["num_fills"] = costs.fills
    out["num_orders"] = orders
    out["num_rejected_orders"] = rejected

    n = states.snapshots
    mean_equity = states.equity_sum / n if n else math.nan
    out["traded_notional"] = costs.notional
    out["turnover"] = costs.notional / mean_equity if n and mean_equity else math.nan
    years = returns.size / ppy if returns.size and ppy > 0 else math.nan
    out["annual_turnover"] = out["turnover"] / years if years and years > 0 else math.nan
    out["exposure"] = states.invested / n if n else math.nan
    out["average_gross_leverage"] = states.gross_sum / n if n else math.nan
    out["average_net_leverage"] = states.net_sum / n if n else math.nan
    out["total_commission"] = costs.commission
    out["total_slippage"] = costs.slippage
    out["total_costs"] = costs.commission + costs.slippage
    flows = cash_flows or {}
    for key in ("dividend_income", "borrow_fees", "cash_in_lieu"):
        out[key] = float(flows.get(key, 0.0))
    return out
