"""A slower per-symbol source (daily predictions) joined onto each chunk as of availability.

The source is small next to the bars it annotates (one row per symbol per day), so it is
read once, restricted to the universe and to values available before the end of the
range, and kept sorted by availability. Each chunk of bars then gets, per symbol, the
last row available at or before the bar's time (``join_asof``, backward), or null when
none is, or when it is older than ``max_staleness``.
"""

from __future__ import annotations

import polars as pl

from ml4t.backtest.data._source import TS, Layout, Source
from ml4t.backtest.data.config import SignalSourceConfig, duration_ns
from ml4t.backtest.data.validation import (
    Violation,
    check_schema,
    format_examples,
    out_of_range_times,
)

__all__ = ["SlowSignals"]

AVAIL = "__available"


class SlowSignals:
    """Per-symbol values joined onto bars as of their availability time."""

    def __init__(self, config: SignalSourceConfig, where: object) -> None:
        self.config = config
        self.columns = list(config.columns)
        self.source = Source(
            where if where is not None else config.path,  # type: ignore[arg-type]
            role="signal_data",
            ts_column=config.timestamp_column,
            symbol_column=config.symbol_column,
            tz=config.timezone,
            layout=Layout(
                format=config.format,
                symbol_from=config.symbol_from,
                timestamp_format=config.timestamp_format,
                time_columns=(
                    config.timestamp_column,
                    *([config.available_at] if config.available_at else []),
                ),
                float_columns=tuple(config.columns),
            ),
        )
        self.lag = duration_ns(config.available_lag, "signal_data.available_lag") or 0
        self.tolerance = duration_ns(config.max_staleness, "signal_data.max_staleness")
        self.frame = pl.DataFrame()

    def schema_violations(self) -> list[Violation]:
        extra = [self.config.available_at] if self.config.available_at else []
        problems = check_schema(
            self.source,
            numeric=(),
            flags=self.columns,
            symbol=self.config.symbol_column,
            extra_times=extra,
        )
        return problems or out_of_range_times(self.source, [self.config.timestamp_column, *extra])

    def load(self, universe: pl.Enum, hi: int | None) -> list[Violation]:
        """Read the source (values available before ``hi``); return duplicate violations."""
        src, cfg = self.source, self.config
        avail = src.time_expr(cfg.available_at) if cfg.available_at else src.ts_expr() + self.lag
        lf = src.frame.filter(
            pl.col(cfg.symbol_column).cast(pl.String).is_in(universe.categories.to_list())
        )
        lf = lf.select(
            pl.col(cfg.symbol_column).cast(pl.String).cast(universe).alias("symbol"),
            src.ts_expr().alias(TS),
            avail.alias(AVAIL),
            *(pl.col(c).cast(pl.Float64) for c in self.columns),
        )
        if hi is not None:
            lf = lf.filter((pl.col(AVAIL) < hi) | pl.col(AVAIL).is_null())  # nulls: rule null_key
        frame = src.collect(lf).sort([AVAIL, TS, "symbol"], maintain_order=True)
        dup = frame.filter(pl.struct("symbol", TS).is_duplicated())
        out = self._null_times(frame)
        self.frame = (
            frame.drop(TS)
            .drop_nulls(AVAIL)
            .unique(subset=["symbol", AVAIL], keep="last", maintain_order=True)
        )
        if dup.height == 0:
            return out
        return [
            *out,
            Violation(
                rule="duplicate",
                source=src.name,
                column="symbol",
                count=dup.height,
                detail="repeat a (timestamp, symbol) pair",
                examples=format_examples(dup, self.columns),
            ),
        ]

    def _null_times(self, frame: pl.DataFrame) -> list[Violation]:
        """Rows with no time would never be available: an error, not a silent drop."""
        never = frame.filter(pl.col(AVAIL).is_null())
        if never.height == 0:
            return []
        cfg = self.config
        ts_null = int(never[TS].null_count())
        column = cfg.timestamp_column if ts_null or not cfg.available_at else cfg.available_at
        return [
            Violation(
                rule="null_key",
                source=self.source.name,
                column=column,
                count=never.height,
                detail="have a null time (never available)",
                examples=format_examples(never, self.columns),
            )
        ]

    def join(self, chunk: pl.DataFrame) -> pl.DataFrame:
        """``chunk`` (sorted by time) with the source's columns as of each bar's time."""
        return chunk.join_asof(
            self.frame,
            left_on=TS,
            right_on=AVAIL,
            by="symbol",
            strategy="backward",
            tolerance=self.tolerance,
            check_sortedness=False,
        ).drop(AVAIL, strict=False)
