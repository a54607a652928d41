"""The metrics panel: ``metrics.json`` as labelled groups of formatted figures.

Known keys are grouped and labelled here; a key this module does not know (a metric a
newer recorder added) still appears, under *More*, with its name as its label, so the
report never hides a figure the run computed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["metrics_panel"]

# (group, ((key, label, format), ...)); formats: pct (a fraction shown as %), pct100 (a
# percentage already), num, int, money, days (one decimal), x (a multiple)
GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Returns",
        (
            ("total_return", "Total return", "pct"),
            ("annual_return", "Annual return (CAGR)", "pct"),
            ("annual_volatility", "Annual volatility", "pct"),
            ("sharpe_ratio", "Sharpe ratio", "num"),
            ("sortino_ratio", "Sortino ratio", "num"),
            ("calmar_ratio", "Calmar ratio", "num"),
            ("max_drawdown", "Max drawdown", "pct"),
            ("max_drawdown_intraday", "Max drawdown (intraday)", "pct"),
            ("max_drawdown_duration_days", "Longest drawdown (days)", "days"),
        ),
    ),
    (
        "Benchmark",
        (
            ("alpha", "Alpha (annual)", "pct"),
            ("beta", "Beta", "num"),
            ("information_ratio", "Information ratio", "num"),
            ("tracking_error", "Tracking error", "pct"),
            ("up_capture", "Up capture", "num"),
            ("down_capture", "Down capture", "num"),
            ("correlation", "Correlation", "num"),
            ("benchmark_return", "Benchmark total return", "pct"),
            ("benchmark_annual_return", "Benchmark CAGR", "pct"),
            ("benchmark_volatility", "Benchmark volatility", "pct"),
        ),
    ),
    (
        "Trades",
        (
            ("num_trades", "Trades", "int"),
            ("win_rate", "Win rate", "pct"),
            ("profit_factor", "Profit factor", "num"),
            ("expectancy", "Expectancy per trade", "money"),
            ("average_win", "Average win", "money"),
            ("average_loss", "Average loss", "money"),
            ("best_trade", "Best trade", "money"),
            ("worst_trade", "Worst trade", "money"),
            ("average_pnl_percent", "Avg net P&L per trade", "pct100"),
            ("average_holding_days", "Avg holding (days)", "days"),
            ("average_holding_bars", "Avg holding (bars)", "days"),
        ),
    ),
    (
        "Exposure and costs",
        (
            ("exposure", "Time in market", "pct"),
            ("average_gross_leverage", "Avg gross leverage", "x"),
            ("average_net_leverage", "Avg net leverage", "x"),
            ("turnover", "Turnover (x equity)", "x"),
            ("annual_turnover", "Annual turnover", "x"),
            ("traded_notional", "Traded notional", "money"),
            ("total_commission", "Commission", "money"),
            ("total_slippage", "Slippage", "money"),
            ("total_costs", "Total costs", "money"),
            ("dividend_income", "Dividends (net)", "money"),
            ("borrow_fees", "Borrow fees", "money"),
            ("cash_in_lieu", "Cash in lieu", "money"),
        ),
    ),
    (
        "Run",
        (
            ("initial_equity", "Initial equity", "money"),
            ("final_equity", "Final equity", "money"),
            ("num_orders", "Orders", "int"),
            ("num_rejected_orders", "Rejected orders", "int"),
            ("num_fills", "Fills", "int"),
            ("return_periods", "Daily returns", "int"),
            ("periods_per_year", "Sessions per year", "days"),
        ),
    ),
)

# shown elsewhere (the header, the drawdowns table) or bookkeeping, not a figure
NOT_SHOWN = frozenset(
    {
        "start",
        "end",
        "max_drawdown_start",
        "max_drawdown_trough",
        "max_drawdown_end",
        "periods_per_year_source",
    }
)


def fmt(value: Any, kind: str) -> str:
    """``value`` as the panel shows it; ``n/a`` for an undefined (null, NaN) metric."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "pct100":  # already a percentage (5.0 = 5 %)
        return f"{value:,.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "days":
        return f"{value:,.1f}"
    if kind == "x":
        return f"{value:,.2f}x"
    return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"


def metrics_panel(metrics: Mapping[str, Any]) -> str:
    """The ``metrics-table`` section: one table per group that has a value."""
    known = {key for _, rows in GROUPS for key, _, _ in rows}
    more = tuple(
        (key, key.replace("_", " ").capitalize(), "int" if type(metrics[key]) is int else "num")
        for key in metrics
        if key not in known and key not in NOT_SHOWN
    )
    tables = []
    for title, rows in (*GROUPS, ("More", more)):
        cells = [
            f'<tr data-key="{html.escape(key)}"><th>{html.escape(label)}</th>'
            f"<td>{fmt(metrics[key], kind)}</td></tr>"
            for key, label, kind in rows
            if key in metrics
        ]
        if cells:
            tables.append(
                f'<table class="kv"><caption>{html.escape(title)}</caption>{"".join(cells)}</table>'
            )
    if not tables:
        return '<p class="empty">no metrics.json in the results</p>'
    return "".join(tables)
