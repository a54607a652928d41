"""The benchmark a run is measured against: its level at the run's daily instants.

``reporting.benchmark`` names a context field (``{field: spy}``: its value in each market
batch, as of that bar, as strategies see it) or a file (``{path, column,
timestamp_column}``: the last row known at or before an instant, as the context is
joined). Either way the level is taken **as of the same states as the run's equity**:
the first state (the base) and the last state of each day, so the benchmark's daily
returns line up with ours date by date. A day before the benchmark's first known value
has no return (NaN), and the metrics use the days where both are known.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ml4t.backtest import metrics as m
from ml4t.backtest.errors import ConfigError, DataValidationError
from ml4t.backtest.events import MarketBatch
from ml4t.backtest.record.config import BenchmarkConfig

__all__ = ["BENCHMARK_METRICS", "BenchmarkLevels", "benchmark_metrics"]

BENCHMARK_METRICS = (
    "benchmark",
    "benchmark_total_return",
    "benchmark_annual_return",
    "benchmark_annual_volatility",
    "benchmark_sharpe_ratio",
    "benchmark_max_drawdown",
    "benchmark_return_periods",
    "alpha",
    "beta",
    "correlation",
    "tracking_error",
    "information_ratio",
    "up_capture",
    "down_capture",
)


class BenchmarkLevels:
    """The benchmark's level at any instant: from the context stream or from a file."""

    def __init__(self, config: BenchmarkConfig) -> None:
        self.config = config
        self.field = config.field
        self.current = math.nan  # a field's value as of the latest batch
        self._ts = np.zeros(0, dtype=np.int64)
        self._levels = np.zeros(0)
        if config.path is not None:
            self._ts, self._levels = _read_file(config)

    def check_field(self, context_fields: list[str]) -> None:
        """A field must be one of the run's context fields (when the feed lists them)."""
        if self.field is not None and context_fields and self.field not in context_fields:
            raise ConfigError(
                f"$.reporting.benchmark.field: {self.field!r} is not a context field of this "
                f"run ({', '.join(context_fields)}); add it to data.context.fields or name "
                "one of these"
            )

    def on_market(self, batch: MarketBatch) -> None:
        """A field's value as of this batch (a missing value keeps the last one known)."""
        if self.field is None:
            return
        value = batch.context.get(self.field)
        if value is None or value != value:  # not known yet: as of, keep the last
            return
        if not (math.isfinite(value) and value > 0):
            raise DataValidationError(
                f"benchmark field {self.field!r} is {value!r} at {batch.ts_event} ns; a "
                "benchmark is a price level (> 0): name an index or an ETF's price"
            )
        self.current = float(value)

    def at(self, ts: list[int] | np.ndarray) -> np.ndarray:
        """A file's level as of each instant in ``ts`` (NaN before its first row)."""
        stamps = np.asarray(ts, dtype=np.int64)
        index = np.searchsorted(self._ts, stamps, side="right") - 1
        out = np.full(stamps.shape, math.nan)
        known = index >= 0
        out[known] = self._levels[index[known]]
        return out


def _read_file(config: BenchmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps in ns UTC, levels) of a benchmark file, sorted, every row checked."""
    assert config.path is not None and config.column is not None
    path, column, stamp = Path(config.path), config.column, config.timestamp_column
    where = f"benchmark file {str(path)!r}"
    if not path.is_file():
        raise ConfigError(f"$.reporting.benchmark.path: {where} does not exist")
    suffix = path.name.lower()
    if suffix.endswith((".csv", ".csv.gz")):
        frame = pl.read_csv(path, try_parse_dates=True)
    elif suffix.endswith((".parquet", ".pq", ".parq")):
        frame = pl.read_parquet(path)
    else:
        raise ConfigError(f"$.reporting.benchmark.path: {where} is not .parquet or .csv")
    for name, key in ((stamp, "timestamp_column"), (column, "column")):
        if name not in frame.columns:
            raise ConfigError(
                f"$.reporting.benchmark.{key}: {where} has no column {name!r} (its columns: "
                f"{', '.join(frame.columns)})"
            )
    if not frame.schema[column].is_numeric():
        raise DataValidationError(
            f"{where}, column {column!r}: type {frame.schema[column]}, expected numbers"
        )
    ns = frame.select(_utc_ns(stamp, frame.schema[stamp], config.timezone, where))
    ts = ns.to_series().to_numpy().astype(np.int64)
    levels = frame.get_column(column).cast(pl.Float64).to_numpy()
    bad = np.flatnonzero(~np.isfinite(levels) | (levels <= 0))
    if bad.size:
        row = int(bad[0])
        raise DataValidationError(
            f"{where}, column {column!r}: {bad.size} rows are missing or not > 0, first row "
            f"{row} ({levels[row]!r}); a benchmark is a price level: drop or fill those rows"
        )
    order = np.argsort(ts, kind="stable")
    ts, levels = ts[order], levels[order]
    dup = np.flatnonzero(np.diff(ts) == 0)
    if dup.size:
        raise DataValidationError(
            f"{where}, column {stamp!r}: {dup.size} duplicate timestamps, first "
            f"{ns.to_series().cast(pl.Datetime('ns', 'UTC'))[int(order[dup[0]])]}; keep one "
            "row per time"
        )
    return ts, levels


def _utc_ns(column: str, dtype: pl.DataType, timezone: str | None, where: str) -> pl.Expr:
    """``column`` as UTC nanoseconds; naive times (and dates) are in ``timezone``."""
    if not isinstance(dtype, pl.Datetime | pl.Date):
        raise DataValidationError(
            f"{where}, column {column!r}: type {dtype}, expected datetimes (or ISO-8601 text "
            "in a CSV)"
        )
    expr = pl.col(column)
    if isinstance(dtype, pl.Date):
        expr = expr.cast(pl.Datetime("ns"))
    if isinstance(dtype, pl.Date) or dtype.time_zone is None:
        if timezone is None:
            raise DataValidationError(
                f"{where}, column {column!r}: times have no timezone ({dtype}); set "
                "benchmark.timezone to the zone they are in"
            )
        expr = expr.dt.replace_time_zone(timezone, ambiguous="raise", non_existent="raise")
    return expr.dt.cast_time_unit("ns").dt.convert_time_zone("UTC").to_physical()


def benchmark_metrics(
    name: str | None,
    returns: np.ndarray,
    benchmark: np.ndarray | None,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """The benchmark keys of ``metrics.json`` (every value None/NaN without one)."""
    out: dict[str, Any] = dict.fromkeys(BENCHMARK_METRICS, math.nan)
    out["benchmark"] = name
    if benchmark is None:
        out["benchmark_return_periods"] = 0
        return out
    known = np.isfinite(benchmark)
    b = benchmark[known]
    ppy = periods_per_year
    out["benchmark_total_return"] = m.total_return(b)
    out["benchmark_annual_return"] = m.annual_return(b, ppy)
    out["benchmark_annual_volatility"] = m.annual_volatility(b, ppy)
    out["benchmark_sharpe_ratio"] = m.sharpe_ratio(b, ppy, risk_free)
    out["benchmark_max_drawdown"] = m.max_drawdown(b)
    out["benchmark_return_periods"] = int(b.size)
    alpha, beta = m.alpha_beta(returns, benchmark, ppy, risk_free)
    out["alpha"], out["beta"] = alpha, beta
    r_known, b_known = returns[known], b
    if b_known.size >= 2 and np.std(b_known) > 0 and np.std(r_known) > 0:
        out["correlation"] = float(np.corrcoef(r_known, b_known)[0, 1])
    out["tracking_error"] = m.tracking_error(returns, benchmark, ppy)
    out["information_ratio"] = m.information_ratio(returns, benchmark, ppy)
    out["up_capture"] = m.up_capture(returns, benchmark, ppy)
    out["down_capture"] = m.down_capture(returns, benchmark, ppy)
    return out
