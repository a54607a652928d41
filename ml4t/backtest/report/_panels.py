"""The numbers behind each panel of the report, as pure functions of the results tables.

Nothing here draws: each function takes frames or arrays and returns frames, arrays or
small records, so a test checks every figure by hand without a browser.

- **Days** are those of ``day_timezone`` (the recorder's ``reporting.day_timezone``): a
  day's equity is its last portfolio state, and the first day's return is against the
  initial equity, exactly as ``metrics.json`` computes its return metrics.
- **Rolling statistics** use the metrics' formulas on a trailing window of daily returns:
  volatility ``std(r, ddof=1) * sqrt(N)``, Sharpe ``mean(r - rf) / std(r - rf, ddof=1) *
  sqrt(N)``, undefined (NaN) until the window is full or when the window is flat.
- **Drawdowns** come from the portfolio's ``drawdown`` column (against the high-water
  mark of every state, recorded or not): an episode is a run of states under water; it
  starts at the state before the run (the peak), bottoms at its deepest state and
  recovers at the first state back at the mark.
- **The benchmark** grows the initial equity by its daily returns over the run's days,
  so both curves start from the same money; a run day the benchmark has no row for
  keeps the benchmark's last value.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "Drawdown",
    "benchmark_equity",
    "daily_closes",
    "daily_returns",
    "histogram",
    "monthly_returns",
    "rejections",
    "rolling_stats",
    "symbol_breakdown",
    "thin",
    "worst_drawdowns",
]

NS_PER_DAY = 86_400 * 10**9


def daily_closes(portfolio: pl.DataFrame, timezone: str = "UTC") -> pl.DataFrame:
    """``date``, ``timestamp``, ``equity``, ``row``: the last state of each day in
    ``timezone`` (``row`` is its index in ``portfolio``, which is sorted by time)."""
    return (
        portfolio.select("timestamp", "equity")
        .with_row_index("row")
        .with_columns(pl.col("timestamp").dt.convert_time_zone(timezone).dt.date().alias("date"))
        .group_by("date", maintain_order=True)
        .agg(pl.col("timestamp").last(), pl.col("equity").last(), pl.col("row").last())
        .select("date", "timestamp", "equity", pl.col("row").cast(pl.Int64))
    )


def daily_returns(equity: np.ndarray, initial_equity: float) -> np.ndarray:
    """Each day's close over the previous day's (the first over ``initial_equity``) - 1."""
    equity = np.asarray(equity, dtype=np.float64)
    previous = np.concatenate(([initial_equity], equity[:-1]))
    return equity / previous - 1.0


def rolling_stats(
    returns: np.ndarray, window: int, periods_per_year: float, risk_free_rate: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Annualised (Sharpe, volatility) of the ``window`` returns ending at each day."""
    r = np.asarray(returns, dtype=np.float64)
    sharpe, vol = np.full(r.size, np.nan), np.full(r.size, np.nan)
    if window < 2 or r.size < window:
        return sharpe, vol
    rf = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    windows = sliding_window_view(r - rf, window)
    std = windows.std(axis=1, ddof=1)
    mean = windows.mean(axis=1)
    flat = ~(std > 1e-15 * np.maximum(1.0, np.abs(mean)))
    scale = math.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe[window - 1 :] = np.where(flat, np.nan, mean / std * scale)
    vol[window - 1 :] = std * scale
    return sharpe, vol


class Drawdown(NamedTuple):
    """One episode under water; times in ns UTC, ``recovery`` ``None`` if still under."""

    start: int
    trough: int
    recovery: int | None
    depth: float
    days: float


def worst_drawdowns(timestamps: np.ndarray, drawdown: np.ndarray, top: int = 5) -> list[Drawdown]:
    """The ``top`` deepest episodes, deepest first. ``days`` is calendar days from the
    peak to the recovery (or to the last state, for one not recovered)."""
    ts = np.asarray(timestamps, dtype=np.int64)
    under = np.asarray(drawdown, dtype=np.float64) < 0.0
    if not under.any():
        return []
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, end)
    depths = np.minimum.reduceat(np.asarray(drawdown, dtype=np.float64), starts)
    worst = np.argsort(depths, kind="stable")[:top]
    episodes = []
    for k in worst:
        a, b = int(starts[k]), int(ends[k])
        trough = a + int(np.argmin(drawdown[a:b]))
        peak = int(ts[a - 1] if a > 0 else ts[a])
        recovery = int(ts[b]) if b < ts.size else None
        until = recovery if recovery is not None else int(ts[-1])
        episodes.append(
            Drawdown(peak, int(ts[trough]), recovery, float(depths[k]), (until - peak) / NS_PER_DAY)
        )
    return episodes


def monthly_returns(days: pl.DataFrame, initial_equity: float) -> pl.DataFrame:
    """``year``, ``month``, ``return``: each month's last close over the previous month's
    (the first month over ``initial_equity``) - 1, from :func:`daily_closes`."""
    if days.height == 0:
        return pl.DataFrame(schema={"year": pl.Int32, "month": pl.Int8, "return": pl.Float64})
    ends = days.group_by(
        pl.col("date").dt.year().alias("year"),
        pl.col("date").dt.month().alias("month"),
        maintain_order=True,
    ).agg(pl.col("equity").last())
    return ends.with_columns(
        (pl.col("equity") / pl.col("equity").shift(1, fill_value=initial_equity) - 1.0).alias(
            "return"
        )
    ).select("year", "month", "return")


def benchmark_equity(benchmark: pl.DataFrame, days: pl.Series, initial_equity: float) -> np.ndarray:
    """The benchmark's value at the close of each of ``days`` (dates, ascending), starting
    from ``initial_equity`` before the first day."""
    if days.len() == 0:
        return np.array([])
    inside = benchmark.filter(pl.col("date").is_between(days.min(), days.max()))
    growth = inside.select(
        "date", (initial_equity * (1.0 + pl.col("return")).cum_prod()).alias("value")
    )
    joined = (
        pl.DataFrame({"date": days})
        .with_row_index("i")
        .sort("date")
        .join_asof(growth, on="date", strategy="backward")
        .sort("i")
    )
    return joined.get_column("value").fill_null(initial_equity).to_numpy()


def histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the finite ``values``: between 5 and 40 equal bins (about twice
    the square root of the count); empty arrays when there is nothing to count."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.array([], dtype=np.int64), np.array([])
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    bins = int(min(40, max(5, math.sqrt(v.size) * 2)))
    return np.histogram(v, bins=bins, range=(lo, hi))


def symbol_breakdown(trades: pl.DataFrame) -> pl.DataFrame:
    """One row per symbol over the closed trades, largest net P&L first: ``trades``,
    ``win_rate`` (percent), ``pnl_net``, ``pnl_gross``, ``costs``, ``average_pnl``,
    ``best``, ``worst``."""
    closed = trades.filter(pl.col("pnl_net").is_not_null())
    return (
        closed.group_by("symbol")
        .agg(
            pl.len().alias("trades"),
            ((pl.col("pnl_net") > 0).mean() * 100.0).alias("win_rate"),
            pl.col("pnl_net").sum(),
            pl.col("pnl_gross").sum(),
            pl.col("total_cost").sum().alias("costs"),
            pl.col("pnl_net").mean().alias("average_pnl"),
            pl.col("pnl_net").max().alias("best"),
            pl.col("pnl_net").min().alias("worst"),
        )
        .sort(["pnl_net", "symbol"], descending=[True, False])
    )


def rejections(orders: pl.DataFrame) -> pl.DataFrame:
    """Rejected orders by the rule that refused them, most frequent first: ``rule``,
    ``orders``, ``share`` (percent of rejections), ``symbols``, ``first``, ``last``
    (``updated_at``), ``example`` (the first rejection's reason)."""
    rejected = orders.filter(pl.col("status") == "rejected").with_columns(
        pl.col("reject_rule").fill_null("(no rule)").alias("rule")
    )
    return (
        rejected.group_by("rule", maintain_order=True)
        .agg(
            pl.len().alias("orders"),
            pl.col("symbol").n_unique().alias("symbols"),
            pl.col("updated_at").min().alias("first"),
            pl.col("updated_at").max().alias("last"),
            pl.col("reject_reason").drop_nulls().first().alias("example"),
        )
        .with_columns((pl.col("orders") / pl.col("orders").sum() * 100.0).alias("share"))
        .sort(["orders", "rule"], descending=[True, False])
        .select("rule", "orders", "share", "symbols", "first", "last", "example")
    )


def thin(columns: list[np.ndarray], buckets: int, keep: np.ndarray | None = None) -> np.ndarray:
    """Row indices that draw ``columns`` faithfully with few points: the first and last
    rows, and in each of ``buckets`` equal slices the rows of each column's minimum and
    maximum (a drawdown or a spike is never thinned away), plus ``keep``. All rows when
    there are no more than four per bucket."""
    n = columns[0].size if columns else 0
    if n <= 4 * buckets:
        return np.arange(n, dtype=np.int64)
    size = -(-n // buckets)
    chosen = [np.array([0, n - 1], dtype=np.int64)]
    base = np.arange(0, size * buckets, size, dtype=np.int64)[:, None]
    for column in columns:
        padded = np.full(size * buckets, np.nan)
        padded[:n] = column
        grid = padded.reshape(buckets, size)
        finite = np.isfinite(grid)
        low = np.where(finite, grid, np.inf).argmin(axis=1)
        high = np.where(finite, grid, -np.inf).argmax(axis=1)
        chosen.append((base[:, 0] + low)[finite.any(axis=1)])
        chosen.append((base[:, 0] + high)[finite.any(axis=1)])
    if keep is not None:
        chosen.append(np.asarray(keep, dtype=np.int64))
    idx = np.unique(np.concatenate(chosen))
    return idx[(idx >= 0) & (idx < n)]
