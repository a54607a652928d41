"""Performance metrics: pure functions of numpy arrays (and a polars trades table).

Return metrics take a series of simple period returns ``r`` (one per trading day in a
backtest) and ``periods_per_year`` (the number of such periods in a year of the data's
calendar: about 252 for US equities, 365 for crypto, 52 for weekly bars). The formulas
follow the usual definitions (those of empyrical, which the tests check against):

- total return ``prod(1 + r) - 1``; annual return (CAGR)
  ``(1 + total) ** (periods_per_year / n) - 1``;
- volatility ``std(r, ddof=1) * sqrt(periods_per_year)``;
- Sharpe ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(periods_per_year)``;
- Sortino ``mean(r - req) * periods_per_year / downside`` with
  ``downside = sqrt(mean(min(r - req, 0) ** 2)) * sqrt(periods_per_year)``;
- max drawdown ``min(wealth / cummax(wealth) - 1)`` with wealth starting at 1;
- Calmar ``annual return / |max drawdown|`` (NaN without a drawdown).

Against a benchmark's returns ``b`` over the same periods (empyrical's definitions, with
``rf`` per period, 0 by default):

- beta ``cov(r, b) / var(b)``; alpha ``(1 + mean((r - rf) - beta (b - rf))) ** N - 1``
  (annualised, compounded, CAPM);
- tracking error ``std(r - b, ddof=1) * sqrt(N)``; information ratio
  ``mean(r - b) / std(r - b, ddof=1) * sqrt(N)`` (annualised);
- up capture ``annual_return(r[b > 0]) / annual_return(b[b > 0])``, down capture the
  same over ``b < 0``.

A metric that is undefined (too few periods, zero dispersion) is NaN; ``metrics.json``
writes it as ``null``. ``docs/results.md`` lists every metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from ml4t.backtest.errors import DataValidationError

__all__ = [
    "alpha_beta",
    "annual_return",
    "annual_volatility",
    "calmar_ratio",
    "down_capture",
    "downside_risk",
    "drawdown_series",
    "information_ratio",
    "longest_drawdown",
    "max_drawdown",
    "max_drawdown_periods",
    "periods_per_year_from_days",
    "returns_from_equity",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return",
    "tracking_error",
    "trade_metrics",
    "up_capture",
]

DAYS_PER_YEAR = 365.25
WEEKDAYS_PER_YEAR = DAYS_PER_YEAR * 5 / 7


def _array(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(returns, dtype=np.float64)


def returns_from_equity(equity: Sequence[float] | np.ndarray, initial: float) -> np.ndarray:
    """Simple returns of an equity series that started at ``initial``."""
    values = _array(equity)
    previous = np.concatenate([[initial], values[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / previous - 1.0


def total_return(returns: Sequence[float] | np.ndarray) -> float:
    r = _array(returns)
    if r.size == 0:
        return math.nan
    return float(np.prod(r + 1.0) - 1.0)


def annual_return(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Compound annual growth rate: ``(1 + total) ** (periods_per_year / n) - 1``."""
    r = _array(returns)
    if r.size == 0:
        return math.nan
    growth = float(np.prod(r + 1.0))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return float(np.float64(growth) ** (periods_per_year / r.size) - 1.0)


def annual_volatility(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    r = _array(returns)
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def _dispersion(r: np.ndarray) -> float:
    """Sample std, exactly 0 when every value is equal (not a 1e-18 rounding residue)."""
    if r.max() == r.min():
        return 0.0
    return float(np.std(r, ddof=1))


def sharpe_ratio(
    returns: Sequence[float] | np.ndarray, periods_per_year: float, risk_free: float = 0.0
) -> float:
    """``mean(r - rf) / std(r - rf) * sqrt(periods_per_year)``; ``rf`` is per period."""
    r = _array(returns)
    if r.size < 2:
        return math.nan
    excess = r - risk_free
    std = _dispersion(excess)
    mean = float(np.mean(excess))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(mean) / np.float64(std) * math.sqrt(periods_per_year))


def downside_risk(
    returns: Sequence[float] | np.ndarray, periods_per_year: float, required: float = 0.0
) -> float:
    """``sqrt(mean(min(r - required, 0) ** 2)) * sqrt(periods_per_year)``."""
    r = _array(returns)
    if r.size == 0:
        return math.nan
    below = np.minimum(r - required, 0.0)
    return float(np.sqrt(np.mean(below**2)) * math.sqrt(periods_per_year))


def sortino_ratio(
    returns: Sequence[float] | np.ndarray, periods_per_year: float, required: float = 0.0
) -> float:
    """Annualised mean excess return over annualised downside deviation."""
    r = _array(returns)
    if r.size < 2:
        return math.nan
    mean = float(np.mean(r - required)) * periods_per_year
    risk = downside_risk(r, periods_per_year, required)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(mean) / np.float64(risk))


def drawdown_series(returns: Sequence[float] | np.ndarray) -> np.ndarray:
    """Drawdown after each period: wealth over its running peak, minus 1 (wealth starts at 1)."""
    r = _array(returns)
    wealth = np.cumprod(np.concatenate([[1.0], r + 1.0]))
    peak = np.maximum.accumulate(wealth)
    return (wealth / peak - 1.0)[1:]


def max_drawdown(returns: Sequence[float] | np.ndarray) -> float:
    """The deepest drawdown, a number <= 0 (NaN for no returns)."""
    r = _array(returns)
    if r.size == 0:
        return math.nan
    return float(np.min(drawdown_series(r)))


def calmar_ratio(returns: Sequence[float] | np.ndarray, periods_per_year: float) -> float:
    """Annual return over the absolute max drawdown (NaN when there is no drawdown)."""
    dd = max_drawdown(returns)
    if not dd < 0:
        return math.nan
    ratio = annual_return(returns, periods_per_year) / abs(dd)
    return ratio if math.isfinite(ratio) else math.nan


def max_drawdown_periods(returns: Sequence[float] | np.ndarray) -> tuple[int, int, int | None]:
    """Where the deepest drawdown is, as indices into the wealth series ``[1, w_1, ...,
    w_n]`` (0 is the start, before the first return): its peak, its trough and its
    recovery (the first later index back at the peak; None if it never recovered).
    ``(0, 0, None)`` without a drawdown."""
    r = _array(returns)
    wealth = np.cumprod(np.concatenate([[1.0], r + 1.0]))
    peak = np.maximum.accumulate(wealth)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = wealth / peak - 1.0
    if r.size == 0 or not np.nanmin(dd) < 0:
        return 0, 0, None
    trough = int(np.nanargmin(dd))
    top = int(np.argmax(wealth[: trough + 1] == peak[trough]))
    later = np.flatnonzero(wealth[trough:] >= peak[trough])
    return top, trough, (trough + int(later[0])) if later.size else None


def longest_drawdown(
    returns: Sequence[float] | np.ndarray, times: Sequence[float] | np.ndarray | None = None
) -> tuple[int, int] | None:
    """The longest spell under water, as ``(peak, end)`` indices into the wealth series
    (as :func:`max_drawdown_periods`): from a peak to the first index back at it, or to
    the last index if it never came back. Lengths are measured in ``times`` (one per
    return; index 0, the start, takes the first one), else in periods. None when wealth
    never fell below a peak."""
    r = _array(returns)
    wealth = np.cumprod(np.concatenate([[1.0], r + 1.0]))
    at = np.arange(wealth.size, dtype=np.float64)
    if times is not None:
        given = np.asarray(times, dtype=np.float64)
        at = np.concatenate([given[:1], given]) if given.size else at
    best: tuple[int, int] | None = None

    def longer(top: int, end: int) -> bool:
        return best is None or at[end] - at[top] > at[best[1]] - at[best[0]]

    top, peak, under = 0, wealth[0], False
    for i in range(1, wealth.size):
        if wealth[i] >= peak:
            if under and longer(top, i):
                best = (top, i)
            top, peak, under = i, wealth[i], False
        else:
            under = True
    last = wealth.size - 1
    if under and longer(top, last):
        best = (top, last)
    return best


def _paired(returns: Sequence[float] | np.ndarray, benchmark: Sequence[float] | np.ndarray):
    """The periods where both are known (finite)."""
    r, b = _array(returns), _array(benchmark)
    if r.shape != b.shape:
        raise DataValidationError(
            f"returns ({r.size}) and benchmark ({b.size}) are not aligned: pass one "
            "benchmark return per return period"
        )
    keep = np.isfinite(r) & np.isfinite(b)
    return r[keep], b[keep]


def alpha_beta(
    returns: Sequence[float] | np.ndarray,
    benchmark: Sequence[float] | np.ndarray,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> tuple[float, float]:
    """CAPM ``(alpha, beta)``: ``beta = cov(r, b) / var(b)``, ``alpha = (1 + mean((r -
    rf) - beta (b - rf))) ** periods_per_year - 1``; ``rf`` is per period. NaN with
    fewer than two periods or a benchmark without dispersion."""
    r, b = _paired(returns, benchmark)
    if r.size < 2:
        return math.nan, math.nan
    r, b = r - risk_free, b - risk_free
    centred = b - b.mean()
    variance = float(np.mean(centred**2))
    if variance < 1e-30:
        return math.nan, math.nan
    beta = float(np.mean(centred * r)) / variance
    alpha = float((1.0 + np.mean(r - beta * b)) ** periods_per_year - 1.0)
    return alpha, beta


def tracking_error(
    returns: Sequence[float] | np.ndarray,
    benchmark: Sequence[float] | np.ndarray,
    periods_per_year: float,
) -> float:
    """``std(r - b, ddof=1) * sqrt(periods_per_year)``."""
    r, b = _paired(returns, benchmark)
    if r.size < 2:
        return math.nan
    return _dispersion(r - b) * math.sqrt(periods_per_year)


def information_ratio(
    returns: Sequence[float] | np.ndarray,
    benchmark: Sequence[float] | np.ndarray,
    periods_per_year: float,
) -> float:
    """``mean(r - b) / std(r - b, ddof=1) * sqrt(periods_per_year)``: the annualised
    active return over the tracking error (empyrical's ``excess_sharpe`` times
    ``sqrt(periods_per_year)``)."""
    r, b = _paired(returns, benchmark)
    return sharpe_ratio(r - b, periods_per_year)


def _capture(r: np.ndarray, b: np.ndarray, periods_per_year: float) -> float:
    if r.size == 0:
        return math.nan
    theirs = annual_return(b, periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(annual_return(r, periods_per_year)) / np.float64(theirs))
    return ratio


def up_capture(
    returns: Sequence[float] | np.ndarray,
    benchmark: Sequence[float] | np.ndarray,
    periods_per_year: float,
) -> float:
    """Annual return over the periods the benchmark rose, over the benchmark's."""
    r, b = _paired(returns, benchmark)
    up = b > 0
    return _capture(r[up], b[up], periods_per_year)


def down_capture(
    returns: Sequence[float] | np.ndarray,
    benchmark: Sequence[float] | np.ndarray,
    periods_per_year: float,
) -> float:
    """Annual return over the periods the benchmark fell, over the benchmark's."""
    r, b = _paired(returns, benchmark)
    down = b < 0
    return _capture(r[down], b[down], periods_per_year)


def periods_per_year_from_days(day_ts: Sequence[int] | np.ndarray) -> float:
    """Trading days per year estimated from the days that had data.

    ``day_ts`` are nanosecond timestamps, one per day with data. If none falls on a
    weekend the data trades on weekdays: the estimate is the number of intervals between
    those days per weekday of their span, times 260.89 weekdays a year; otherwise per
    calendar day, times 365.25. (NYSE 2023: 249 intervals over 259 weekdays, 250.8.) A
    calendar's exact session count is better when known.
    """
    ts = np.asarray(day_ts, dtype=np.int64)
    if ts.size == 0:
        return math.nan
    days = np.unique(ts.astype("datetime64[ns]").astype("datetime64[D]"))
    weekdays_only = not np.is_busday(days, weekmask="0000011").any()
    per_year = WEEKDAYS_PER_YEAR if weekdays_only else DAYS_PER_YEAR
    if days.size < 2:
        return per_year
    if weekdays_only:
        span = int(np.busday_count(days[0], days[-1]))
    else:
        span = int((days[-1] - days[0]) / np.timedelta64(1, "D"))
    return (days.size - 1) / span * per_year


def trade_metrics(trades: pl.DataFrame) -> dict[str, float | int]:
    """Win rate, profit factor, average win and loss, expectancy... of closed trades.

    A trade wins when its net P&L is above zero. Profit factor is gross wins over gross
    losses (inf without losses, NaN without trades).
    """
    closed = trades.filter(pl.col("pnl_net").is_not_null()) if trades.height else trades
    n = closed.height
    if n == 0:
        return {
            "num_trades": 0,
            "win_rate": math.nan,
            "profit_factor": math.nan,
            "average_win": math.nan,
            "average_loss": math.nan,
            "expectancy": math.nan,
            "best_trade": math.nan,
            "worst_trade": math.nan,
            "average_pnl_percent": math.nan,
            "average_holding_bars": math.nan,
            "average_holding_days": math.nan,
        }
    pnl = closed.get_column("pnl_net").to_numpy()
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    if gross_loss > 0:
        profit_factor = gross_win / gross_loss
    else:
        profit_factor = math.inf if gross_win > 0 else math.nan
    return {
        "num_trades": n,
        "win_rate": wins.size / n,
        "profit_factor": profit_factor,
        "average_win": float(wins.mean()) if wins.size else math.nan,
        "average_loss": float(losses.mean()) if losses.size else math.nan,
        "expectancy": float(pnl.mean()),
        "best_trade": float(pnl.max()),
        "worst_trade": float(pnl.min()),
        "average_pnl_percent": float(closed.get_column("pnl_percent").mean()),  # type: ignore[arg-type]
        "average_holding_bars": float(closed.get_column("holding_period_bars").mean()),  # type: ignore[arg-type]
        "average_holding_days": float(closed.get_column("holding_period_days").mean()),  # type: ignore[arg-type]
    }
