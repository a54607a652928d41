"""The ``reporting`` section of a run's config: what the recorder keeps and where.

reporting:
  output_dir: results/ml_top25
  tables: [trades, fills, orders, order_history, portfolio, cash_flows]
  portfolio_frequency: daily        # bar | daily | a duration such as 5m, 1h
  signals: [signal_value, confidence]
  context: [vix]
  benchmark: {field: spy}           # or {path: spy.parquet, column: close}
  html_report: true
  journal: false
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ml4t.backtest._time import parse_duration
from ml4t.backtest.errors import ConfigError

__all__ = ["TABLES", "BenchmarkConfig", "ReportingConfig", "TableName"]

TableName = Literal[
    "trades",
    "fills",
    "orders",
    "order_history",
    "portfolio",
    "cash_flows",
    "daily_returns",
    "daily_positions",
    "benchmark_returns",
]
TABLES: tuple[TableName, ...] = (
    "trades",
    "fills",
    "orders",
    "order_history",
    "portfolio",
    "cash_flows",
    "daily_returns",
    "daily_positions",
    "benchmark_returns",
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class BenchmarkConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the run is measured against: a context field or a column of a file.

    - ``field``: a context field (``spy``), its value as of each bar, as strategies see it;
    - ``path`` and ``column``: a parquet or CSV file of ``timestamp_column`` (a time the
      value is known at; naive times are in ``timezone``, which must then be given) and
      the price level ``column``.

    Either is a price level (an index or an ETF's price, > 0); its returns are taken at
    the same instants as the run's daily returns (``docs/results.md``, *Benchmark*).
    """

    field: str | None = None
    path: str | None = None
    column: str | None = None
    timestamp_column: str = "timestamp"
    timezone: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.field is None) == (self.path is None):
            raise ConfigError(
                "benchmark: give either field (a context field, e.g. {field: spy}) or path "
                "and column (a file, e.g. {path: spy.parquet, column: close}), not both"
            )
        if self.path is not None and self.column is None:
            raise ConfigError(
                f"benchmark: path {self.path!r} needs column, the name of its price column"
            )
        if self.field is not None and (self.column is not None or self.timezone is not None):
            raise ConfigError("benchmark: column and timezone go with path, not with field")
        if self.timezone is not None:
            _zone(self.timezone, "benchmark.timezone")

    @property
    def label(self) -> str:
        """The benchmark's name in metrics and the report: ``name``, the field or column."""
        return self.name or self.field or self.column or "benchmark"


def _zone(name: str, key: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown {key} {name!r}; use an IANA name such as 'UTC' or 'America/New_York'"
        ) from exc


class ReportingConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the recorder writes (see ``docs/results.md`` for every file and column).

    - ``output_dir``: where the results go; ``None`` keeps them in memory only.
    - ``tables``: which parquet tables to write (all six by default).
    - ``portfolio_frequency``: ``bar`` (every snapshot), ``daily`` (the last snapshot of
      each day in ``day_timezone``) or a duration (``5m``, ``1h``: the last snapshot of
      each such interval).
    - ``signals``: frame columns whose values at entry and exit become trade columns
      (``entry_<name>``, ``exit_<name>``); ``None`` takes every non-OHLCV column.
    - ``context``: context fields captured the same way; ``None`` takes every field.
    - ``day_timezone``: what a day is for daily returns and ``daily`` states. ``None``
      (the default): a session of the run's calendar, else a date in the data's timezone
      (UTC when it has none). A zone name: a date in that zone, even with a calendar.
    - ``benchmark``: a :class:`BenchmarkConfig`; ``None`` measures against nothing.
    - ``end_of_backtest``: ``close`` marks trades still open at the end closed at the
      last close with exit reason ``end_of_backtest`` (``open_at_stop`` when the run
      was stopped before the end of its data); ``leave_open`` writes them with empty
      exit fields.
    - ``periods_per_year``: daily returns per year for annualised metrics; ``None`` uses
      the calendar's sessions per year (252 for NYSE) when the engine gives them, else
      estimates it from the days observed.
    - ``risk_free_rate``: annual rate, compounded into a per-period rate for Sharpe.
    - ``diagnostic``: also write ``diagnostic/``, the run in the artifact layout
      ml4t-diagnostic reads (needs the ``trades`` and ``daily_returns`` tables).
    """

    output_dir: str | None = "results"
    tables: tuple[TableName, ...] = TABLES
    portfolio_frequency: str = "bar"
    day_timezone: str | None = None
    signals: tuple[str, ...] | None = None
    context: tuple[str, ...] | None = None
    benchmark: BenchmarkConfig | None = None
    end_of_backtest: Literal["close", "leave_open"] = "close"
    html_report: bool = False
    journal: bool = False
    diagnostic: bool = True
    periods_per_year: Annotated[float, msgspec.Meta(gt=0)] | None = None
    risk_free_rate: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.0
    row_group_size: Annotated[int, msgspec.Meta(ge=1)] = 65_536
    compression: Literal["zstd", "snappy", "lz4", "none"] = "zstd"

    def __post_init__(self) -> None:
        if len(set(self.tables)) != len(self.tables):
            raise ConfigError(f"tables lists a table twice: {list(self.tables)}")
        self.frequency_ns()  # raises on a bad frequency
        if self.day_timezone is not None:
            _zone(self.day_timezone, "day_timezone")
        for group in (self.signals or (), self.context or ()):
            for name in group:
                if not _NAME.match(name):
                    raise ConfigError(
                        f"{name!r} cannot be a column name suffix; use letters, digits "
                        "and underscores"
                    )
        both = set(self.signals or ()) & set(self.context or ())
        if both:
            raise ConfigError(
                f"{sorted(both)} listed both as signals and as context; trade columns "
                "entry_<name> would clash, list each name once"
            )

    def frequency_ns(self) -> int | None:
        """Bucket width in ns for a duration frequency; 0 for ``bar``; None for ``daily``."""
        freq = self.portfolio_frequency.strip().lower()
        if freq == "bar":
            return 0
        if freq == "daily":
            return None
        try:
            width = parse_duration(freq)
        except ValueError as exc:
            raise ConfigError(
                f"portfolio_frequency {self.portfolio_frequency!r} is not 'bar', 'daily' or "
                "a duration such as '5m' or '1h'"
            ) from exc
        if width <= 0:
            raise ConfigError(f"portfolio_frequency must be positive, got {freq!r}")
        return width
