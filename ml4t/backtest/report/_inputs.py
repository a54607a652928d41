"""What the report reads from a results directory, checked before anything is drawn.

A run's directory holds the recorder's tables (``portfolio``, ``trades``, ``orders``),
``metrics.json``, ``manifest.json``, the resolved ``config.yaml`` and, when the run had a
benchmark, ``benchmark_returns.parquet`` (``date``, ``return``: one simple return per
day). Each is optional: a table the run did not keep (``reporting.tables``) leaves its
panels saying so. Only the columns a panel uses are read, so a year of minute-level
portfolio states costs a few columns, not the whole table.

A table that is there but lacks a column the report needs, or a benchmark with a null,
non-finite or duplicated day, is an error naming the file, the column, the first
offending row and the fix: the report never draws a panel from data it had to guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import polars as pl
import yaml

from ml4t.backtest.errors import ConfigError, DataValidationError, ResultsNotFoundError

__all__ = ["BENCHMARK_FILE", "ReportInputs", "load_inputs"]

BENCHMARK_FILE = "benchmark_returns.parquet"

PORTFOLIO_COLUMNS = ("timestamp", "equity", "drawdown", "gross_leverage", "net_leverage")
TRADE_COLUMNS = (
    "trade_id",
    "symbol",
    "side",
    "quantity",
    "entry_timestamp",
    "exit_timestamp",
    "entry_price",
    "exit_price",
    "pnl_gross",
    "pnl_net",
    "pnl_percent",
    "total_cost",
    "holding_period_bars",
    "exit_reason",
    "max_favorable_pct",
    "max_adverse_pct",
)
ORDER_COLUMNS = ("order_id", "symbol", "status", "updated_at", "reject_rule", "reject_reason")


@dataclass(frozen=True)
class ReportInputs:
    """Everything one report is drawn from. A table the run did not write is ``None``."""

    portfolio: pl.DataFrame | None
    trades: pl.DataFrame | None
    orders: pl.DataFrame | None
    benchmark: pl.DataFrame | None
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    day_timezone: str = "UTC"
    risk_free_rate: float = 0.0

    @property
    def initial_equity(self) -> float | None:
        value = self.metrics.get("initial_equity")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
        if self.portfolio is not None and self.portfolio.height:
            return float(self.portfolio.get_column("equity")[0])
        return None

    @property
    def periods_per_year(self) -> float:
        """The metrics' annualisation (the calendar's sessions), 252 when unknown."""
        value = self.metrics.get("periods_per_year")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
        return 252.0


def load_inputs(
    results_dir: str | Path,
    *,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    day_timezone: str | None = None,
    risk_free_rate: float | None = None,
) -> ReportInputs:
    """Read and check a results directory. ``metrics``/``manifest`` given by the caller
    (the recorder, which has them in memory) win over the files; ``day_timezone`` and
    ``risk_free_rate`` default to the run's ``config.yaml`` (``reporting``), else UTC
    and 0."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsNotFoundError(
            f"no results directory at {root}; give the reporting.output_dir of a run"
        )
    reporting = _reporting_config(root / "config.yaml")
    timezone = day_timezone or str(reporting.get("day_timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"day timezone {timezone!r} (reporting.day_timezone in {root / 'config.yaml'}) "
            "is not a known IANA zone; use a name such as 'America/New_York' or 'UTC'"
        ) from exc
    rate = risk_free_rate if risk_free_rate is not None else reporting.get("risk_free_rate")
    return ReportInputs(
        portfolio=_table(root / "portfolio.parquet", PORTFOLIO_COLUMNS, sort="timestamp"),
        trades=_table(root / "trades.parquet", TRADE_COLUMNS),
        orders=_table(root / "orders.parquet", ORDER_COLUMNS),
        benchmark=read_benchmark(root / BENCHMARK_FILE),
        metrics=dict(metrics) if metrics is not None else _json(root / "metrics.json"),
        manifest=dict(manifest) if manifest is not None else _json(root / "manifest.json"),
        day_timezone=timezone,
        risk_free_rate=float(rate or 0.0),
    )


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    value = msgspec.json.decode(path.read_bytes())
    if not isinstance(value, dict):
        raise DataValidationError(f"{path} holds a JSON {type(value).__name__}, not an object")
    return value


def _reporting_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    config = yaml.safe_load(path.read_text()) or {}
    reporting = config.get("reporting") if isinstance(config, dict) else None
    return reporting if isinstance(reporting, dict) else {}


def _table(path: Path, columns: tuple[str, ...], *, sort: str | None = None) -> pl.DataFrame | None:
    if not path.is_file():
        return None
    present = pl.read_parquet_schema(path)
    missing = [c for c in columns if c not in present]
    if missing:
        raise DataValidationError(
            f"{path} has no column {', '.join(map(repr, missing))}, which the report needs; "
            "it is not a table the ml4t recorder wrote (rerun the backtest, or rebuild the "
            "file with the columns in docs/results.md)"
        )
    frame = pl.read_parquet(path, columns=list(columns))
    return frame.sort(sort, maintain_order=True) if sort else frame


def read_benchmark(path: Path) -> pl.DataFrame | None:
    """``date`` (a date, or a timestamp whose date is taken), ``return`` (float, simple
    daily return): sorted by date, one row per date, every return finite."""
    if not path.is_file():
        return None
    schema = pl.read_parquet_schema(path)
    for name in ("date", "return"):
        if name not in schema:
            raise DataValidationError(
                f"{path} has no column {name!r}; a benchmark file has the columns 'date' "
                "(one row per day) and 'return' (that day's simple return, 0.01 = 1 %)"
            )
    frame = pl.read_parquet(path, columns=["date", "return"])
    if isinstance(frame.schema["date"], pl.Datetime):
        frame = frame.with_columns(pl.col("date").dt.date())
    elif frame.schema["date"] != pl.Date:
        raise DataValidationError(
            f"{path}: column 'date' is {frame.schema['date']}, not a date; write it as "
            "pl.Date (or a timestamp)"
        )
    if not frame.schema["return"].is_numeric():
        raise DataValidationError(
            f"{path}: column 'return' is {frame.schema['return']}, not a number; write "
            "simple returns as float64 (0.01 = 1 %)"
        )
    frame = frame.with_columns(pl.col("return").cast(pl.Float64)).with_row_index("row")
    bad = frame.filter(
        pl.col("date").is_null() | pl.col("return").is_null() | ~pl.col("return").is_finite()
    )
    if bad.height:
        row = bad.row(0, named=True)
        column = "date" if row["date"] is None else "return"
        raise DataValidationError(
            f"{path}: {bad.height} row(s) with a null or non-finite {column!r}, first at "
            f"row {row['row']} (date {row['date']}, return {row['return']}); drop those days "
            "or fill them with the benchmark's real return"
        )
    repeated = frame.filter(pl.col("date").is_duplicated())
    if repeated.height:
        row = repeated.row(0, named=True)
        times = repeated.filter(pl.col("date") == row["date"]).height
        raise DataValidationError(
            f"{path}: date {row['date']} appears {times} times (first at row {row['row']}) "
            "in column 'date'; keep one return per day"
        )
    return frame.drop("row").sort("date")
