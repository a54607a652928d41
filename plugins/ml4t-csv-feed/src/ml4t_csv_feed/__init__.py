"""CsvFeed: long-format CSV bars (+ per-symbol signals, + market context) for ml4t.

A feed written against the published :class:`ml4t.backtest.Feed` protocol with only the
public API. It reads the same config section as the built-in parquet feed
(``config.data``), but every path names CSV files (a file, a glob, or a directory whose
``*.csv`` files are read in name order):

- ``data.asset``: one row per (timestamp, symbol): ``open, high, low, close, volume``
  and the configured ``signals`` and ``indicators`` columns;
- ``data.signal_data``: per-symbol values, each joined onto the bars as of its
  availability time (``timestamp + available_lag``, or the ``available_at`` column), the
  last one at or before the bar, within ``max_staleness``;
- ``data.context``: market-wide fields, each field's last non-null value available at or
  before the bar.

Timestamps are ISO-8601 text with an offset (``2023-01-03T14:31:00+00:00``), or naive
text in the source's ``timezone``. The whole file set is read into memory at
:meth:`CsvFeed.prepare` (CSV is for data that fits); then one
:class:`~ml4t.backtest.MarketBatch` per timestamp is published on ``MARKET``, its
``symbol`` a ``pl.Enum`` of the sorted universe, as the built-in feed does, so a run on
CSV data makes the same trades as the same data in parquet.

Not supported (refused with a ``ConfigError`` naming the key): ``repair``,
``outside_session: drop`` and ``bar_label: start`` with a ``bar_interval``.
"""

from __future__ import annotations

import glob
import math
from pathlib import Path

import numpy as np
import polars as pl

from ml4t.backtest import (
    AlarmPriority,
    Component,
    ConfigError,
    DataValidationError,
    FeedConfig,
    MarketBatch,
    SessionStarted,
    parse_duration,
    to_ns,
)
from ml4t.backtest.topics import MARKET, SESSION

__all__ = ["CsvFeed", "csv_files"]

OHLCV = ("open", "high", "low", "close", "volume")
_TS = "__ts"
_AVAIL = "__available"


def csv_files(where: str | Path, *, role: str) -> list[Path]:
    """The CSV files a path, glob or directory stands for (a directory: its ``*.csv``)."""
    text = str(where)
    path = Path(text)
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True))
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise DataValidationError(f"{role} data: no CSV file at {text!r}; write *.csv files there")
    return files


def _read(
    where: str | None, *, role: str, ts: str, tz: str | None, times: list[str]
) -> pl.DataFrame:
    if where is None:
        raise ConfigError(f"$.data.{role}.path is not set; the csv feed reads files only")
    frames = [pl.read_csv(f, infer_schema_length=10_000) for f in csv_files(where, role=role)]
    frame = pl.concat(frames, how="vertical_relaxed")
    missing = [c for c in (ts, *times) if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{role} data at {where}: no column(s) {missing}")
    return frame.with_columns(_ns(pl.col(c), tz).alias(c) for c in (ts, *times))


def _ns(column: pl.Expr, tz: str | None) -> pl.Expr:
    """ISO-8601 text (with an offset, or naive in ``tz``) -> UTC int64 nanoseconds."""
    if tz is None:
        parsed = column.str.to_datetime(time_unit="ns", time_zone="UTC")
    else:
        parsed = column.str.to_datetime(time_unit="ns").dt.replace_time_zone(tz)
    return parsed.dt.convert_time_zone("UTC").dt.epoch("ns")


class CsvFeed(Component):
    """Bars from CSV files, one :class:`~ml4t.backtest.MarketBatch` per timestamp."""

    def __init__(self, config: FeedConfig | None = None, *, name: str = "feed") -> None:
        super().__init__(name)
        self.config = config = config if config is not None else FeedConfig()
        for key, bad in (
            ("repair", bool(config.repair)),
            ("outside_session", config.outside_session != "keep"),
            (
                "asset.bar_label",
                config.asset.bar_label == "start" and bool(config.asset.bar_interval),
            ),
        ):
            if bad:
                raise ConfigError(f"$.data.{key}: the csv feed does not support it; remove it")
        extra = tuple(config.signal_data.columns) if config.signal_data else ()
        self.signal_columns: tuple[str, ...] = (*config.asset.signals, *extra)
        self.indicator_columns: tuple[str, ...] = tuple(config.asset.indicators)
        self.symbols: tuple[str, ...] = ()
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._frame: pl.DataFrame | None = None
        self._codes = b""
        self._ts: list[int] = []
        self._offsets: list[int] = []
        self._contexts: list[dict[str, float | None]] = []
        self._i = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of every batch frame, in order."""
        return ("symbol", *OHLCV, *self.signal_columns, *self.indicator_columns)

    # ------------------------------------------------------------ preparation

    def prepare(self) -> dict[str, int] | None:
        """Read and check every file, join signals and context; idempotent.

        Returns ``{"rows", "timestamps", "symbols"}``; raises ``DataValidationError``
        naming the file set and what is wrong (a missing column, a duplicate row, an
        empty span)."""
        if self._frame is not None:
            return self._report()
        cfg, asset = self.config, self.config.asset
        bars = _read(
            asset.path, role="asset", ts=asset.timestamp_column, tz=asset.timezone, times=[]
        )
        own = [*OHLCV, *asset.signals, *asset.indicators]
        absent = [c for c in (asset.symbol_column, *own) if c not in bars.columns]
        if absent:
            raise DataValidationError(f"asset data at {asset.path}: no column(s) {absent}")
        bars = bars.select(
            pl.col(asset.timestamp_column).alias(_TS),
            pl.col(asset.symbol_column).cast(pl.String).alias("symbol"),
            *(pl.col(c).cast(pl.Float64) for c in own),
        )
        bars = self._in_span(bars)
        if asset.symbols is not None:
            bars = bars.filter(pl.col("symbol").is_in(list(asset.symbols)))
        if bars.height == 0:
            raise DataValidationError(f"asset data at {asset.path}: no rows in the run's span")
        dup = bars.filter(pl.struct(_TS, "symbol").is_duplicated())
        if dup.height:
            raise DataValidationError(
                f"asset data at {asset.path}: {dup.height} rows repeat a (timestamp, symbol) "
                f"pair, e.g. {dup.row(0, named=True)}"
            )
        universe = pl.Enum(sorted(bars["symbol"].unique().to_list()))
        bars = bars.with_columns(pl.col("symbol").cast(universe)).sort(_TS, "symbol")
        if cfg.signal_data is not None:
            bars = self._join_signals(bars, universe)
        row_ts = bars[_TS].to_numpy()
        starts = np.concatenate(([0], np.flatnonzero(np.diff(row_ts)) + 1))
        self._ts = row_ts[starts].tolist()
        self._offsets = [*starts.tolist(), len(row_ts)]
        self._contexts = self._context_values(np.asarray(self._ts, dtype=np.int64))
        self._codes = bars["symbol"].to_physical().to_numpy().astype("<i4").tobytes()
        self._frame = bars.select(self.columns)
        self.symbols = tuple(universe.categories.to_list())
        self.first_ts, self.last_ts = self._ts[0], self._ts[-1]
        return self._report()

    def _report(self) -> dict[str, int]:
        assert self._frame is not None
        return {
            "rows": self._frame.height,
            "timestamps": len(self._ts),
            "symbols": len(self.symbols),
        }

    def _in_span(self, bars: pl.DataFrame) -> pl.DataFrame:
        for key, keep in (("start", pl.col(_TS).__ge__), ("end", pl.col(_TS).__le__)):
            value = getattr(self.config, key)
            if value is not None:
                bars = bars.filter(keep(to_ns(value)))
        return bars

    def _join_signals(self, bars: pl.DataFrame, universe: pl.Enum) -> pl.DataFrame:
        sig = self.config.signal_data
        assert sig is not None
        extra = [sig.available_at] if sig.available_at else []
        frame = _read(
            sig.path, role="signal_data", ts=sig.timestamp_column, tz=sig.timezone, times=extra
        )
        lag = parse_duration(sig.available_lag) or 0
        avail = pl.col(sig.available_at) if sig.available_at else pl.col(sig.timestamp_column) + lag
        frame = (
            frame.filter(pl.col(sig.symbol_column).cast(pl.String).is_in(list(universe.categories)))
            .select(
                pl.col(sig.symbol_column).cast(pl.String).cast(universe).alias("symbol"),
                avail.alias(_AVAIL),
                pl.col(sig.timestamp_column).alias("__signal_ts"),
                *(pl.col(c).cast(pl.Float64) for c in sig.columns),
            )
            .drop_nulls(_AVAIL)
            .sort([_AVAIL, "__signal_ts", "symbol"], maintain_order=True)
            .drop("__signal_ts")
            .unique(subset=["symbol", _AVAIL], keep="last", maintain_order=True)
        )
        tolerance = parse_duration(sig.max_staleness) if sig.max_staleness else None
        return bars.join_asof(
            frame,
            left_on=_TS,
            right_on=_AVAIL,
            by="symbol",
            strategy="backward",
            tolerance=tolerance,
            check_sortedness=False,
        ).drop(_AVAIL, strict=False)

    def _context_values(self, event_ts: np.ndarray) -> list[dict[str, float | None]]:
        ctx = self.config.context
        if ctx is None:
            return [{} for _ in event_ts]
        extra = [ctx.available_at] if ctx.available_at else []
        rows = _read(
            ctx.path, role="context", ts=ctx.timestamp_column, tz=ctx.timezone, times=extra
        )
        lag = parse_duration(ctx.available_lag) or 0
        avail = pl.col(ctx.available_at) if ctx.available_at else pl.col(ctx.timestamp_column) + lag
        rows = rows.with_columns(avail.alias(_AVAIL)).sort(_AVAIL, maintain_order=True)
        columns = []
        for field in ctx.fields:
            known = (
                rows.select(_AVAIL, pl.col(field).cast(pl.Float64))
                .drop_nulls()
                .filter(pl.col(field).is_not_nan())
            )
            t, v = known[_AVAIL].to_numpy(), known[field].to_numpy()
            idx = np.searchsorted(t, event_ts, side="right") - 1
            columns.append(
                np.where(idx >= 0, v[np.maximum(idx, 0)] if len(v) else math.nan, math.nan)
            )
        table = np.column_stack(columns).tolist() if columns else [[] for _ in event_ts]
        return [
            {f: (None if x != x else x) for f, x in zip(ctx.fields, row, strict=True)}
            for row in table
        ]

    # ------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        self.prepare()
        self._i = 0
        # the session handshake first: every role takes the universe's codes from it
        roles = {"symbol": "symbol", **dict.fromkeys(OHLCV, "ohlcv")}
        roles.update(dict.fromkeys(self.signal_columns, "signal"))
        roles.update(dict.fromkeys(self.indicator_columns, "indicator"))
        first = self.first_ts or 0
        self.publish(
            SESSION,
            SessionStarted(
                ts_event=first,
                ts_init=first,
                calendar=self.config.calendar or "",
                timezone=self.config.asset.timezone or "UTC",
                start_ns=first,
                end_ns=self.last_ts or 0,
                symbols=list(self.symbols),
                columns=roles,
                context=list(self.config.context.fields) if self.config.context else [],
            ),
        )
        if self._ts:
            self.context.clock.schedule(self._ts[0], self._emit, priority=AlarmPriority.DATA)

    def _emit(self) -> None:
        """Publish the batch at the current timestamp and schedule the next one."""
        assert self._frame is not None
        i = self._i
        lo, hi = self._offsets[i], self._offsets[i + 1]
        ts = self._ts[i]
        batch = MarketBatch(
            ts_event=ts,
            ts_init=ts,
            frame=self._frame.slice(lo, hi - lo),
            context=self._contexts[i],
            codes=self._codes[4 * lo : 4 * hi],
        )
        self.publish(MARKET, batch)
        self._i = i + 1
        if self._i < len(self._ts):
            self.context.clock.schedule(self._ts[self._i], self._emit, priority=AlarmPriority.DATA)
