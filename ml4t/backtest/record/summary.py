"""``metrics.json``: the run's metrics, assembled from the recorder's running state.

Return metrics use end-of-day equity (one return per day with data, the first against the
initial equity) annualised with ``periods_per_year``; drawdown metrics use every marked
equity (every snapshot), so an intraday drawdown counts. See ``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from ml4t.backtest import metrics as m
from ml4t.backtest._time import NS_PER_DAY, from_ns
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
) -> dict[str, Any]:
    """Every metric of the run as a flat dict (NaN where undefined). ``cash_flows`` are
    the totals of the cash that came without a trade (``dividend_income``,
    ``borrow_fees``, ``cash_in_lieu``; zero when not given)."""
    out: dict[str, Any] = {}
    initial = states.initial_equity
    final = states.last.equity if states.last is not None else math.nan
    out["start"] = _iso(states.first_ts)
    out["end"] = _iso(states.last_ts)
    out["initial_equity"] = initial if initial is not None else math.nan
    out["final_equity"] = final

    ppy = periods_per_year
    if ppy is None and states.day_ts:
        ppy = m.periods_per_year_from_days(states.day_ts)
        periods_source = "observed"
    ppy = ppy if ppy is not None else math.nan
    returns = (
        m.returns_from_equity(states.day_equity, initial)
        if initial and states.day_equity
        else m.returns_from_equity([], 1.0)
    )
    rf = (1.0 + risk_free_rate) ** (1.0 / ppy) - 1.0 if risk_free_rate and ppy > 0 else 0.0
    out["periods_per_year"] = ppy
    out["periods_per_year_source"] = periods_source if returns.size else None
    out["return_periods"] = int(returns.size)
    out["total_return"] = final / initial - 1.0 if initial else math.nan
    out["annual_return"] = m.annual_return(returns, ppy)
    out["annual_volatility"] = m.annual_volatility(returns, ppy)
    out["sharpe_ratio"] = m.sharpe_ratio(returns, ppy, rf)
    out["sortino_ratio"] = m.sortino_ratio(returns, ppy)

    has_equity = states.first_ts is not None
    out["max_drawdown"] = states.max_drawdown if has_equity else math.nan
    out["max_drawdown_start"] = _iso(states.max_drawdown_start)
    out["max_drawdown_trough"] = _iso(states.max_drawdown_trough)
    out["max_drawdown_end"] = _iso(states.max_drawdown_end)
    out["max_drawdown_duration_days"] = (
        states.max_drawdown_duration_ns / NS_PER_DAY if has_equity else math.nan
    )
    dd = states.max_drawdown
    calmar = out["annual_return"] / abs(dd) if has_equity and dd < 0 else math.nan
    out["calmar_ratio"] = calmar if math.isfinite(calmar) else math.nan

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
