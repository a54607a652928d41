"""The asset data set behind a feed: sources, universe, chunk plan, loading, validation.

:class:`AssetData` turns a :class:`~ml4t.backtest.data.config.FeedConfig` into lazy
scans, learns the symbol universe and the per-timestamp row counts with two streaming
aggregations, plans memory-sized chunks, and loads a chunk as a normalised frame
(``__ts`` Int64 UTC ns, ``symbol`` Enum, Float64 columns) with the configured repairs
applied. :meth:`AssetData.validate` runs every row rule over every chunk.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from ml4t.backtest.data._chunks import ChunkPlan, ChunkReader, bytes_per_row, plan_chunks
from ml4t.backtest.data._repair import OHLCV, order_problems, repair_chunk
from ml4t.backtest.data._source import TS, Layout, Source
from ml4t.backtest.data._vcache import Entry
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.data.config import FeedConfig, OutsideSession, Repair, duration_ns, time_ns
from ml4t.backtest.data.validation import (
    RowChecker,
    ValidationReport,
    Violation,
    check_schema,
    out_of_range_times,
    raise_violations,
)
from ml4t.backtest.logging import get_logger

__all__ = ["AssetData", "Frameish", "Read", "config_range", "merge_files"]

Frameish = str | Path | pl.LazyFrame | pl.DataFrame | None
_DAY_NS = 86_400 * 10**9
_DISORDER = "__disorder"
_FILE = "__ml4t_file"


def _meets(span: tuple[int, int] | None, lo: int, hi: int) -> bool:
    return span is not None and span[0] < hi and span[1] >= lo


class Read(NamedTuple):
    """One chunk as read: the frame, repair counts, and the masks validation reports."""

    frame: pl.DataFrame
    counts: dict[str, int]
    outside_session: np.ndarray | None
    disorder: np.ndarray | None


def merge_files(df: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows read file by file (one symbol per file) in (timestamp, symbol) order.

    Also returns, in the merged order, which rows came earlier in time than the row
    before them in their file (their symbol's previous row): in a per-symbol file that is
    disorder, which the long-format rule ``unsorted`` would have caught. The sort is
    stable, so repeated (timestamp, symbol) rows keep their file order.

    >>> df = pl.DataFrame({TS: [2, 1, 3, 1, 2], "symbol": ["A", "A", "A", "B", "B"]})
    >>> merged, disorder = merge_files(df)
    >>> merged[TS].to_list(), merged["symbol"].to_list(), disorder.tolist()
    ([1, 1, 2, 2, 3], ['A', 'B', 'A', 'B', 'A'], [True, False, False, False, False])
    """
    ts = df[TS].fill_null(np.iinfo(np.int64).min).to_numpy()
    symbol = df["symbol"]
    same = (symbol == symbol.shift(1)).fill_null(False).to_numpy()
    back = np.concatenate(([False], ts[1:] < ts[:-1]))
    order = df.select(pl.arg_sort_by(pl.col(TS), pl.col("symbol"), maintain_order=True)).to_series()
    return df[order], (same & back)[order.to_numpy()]


def config_range(config: FeedConfig) -> tuple[int | None, int | None]:
    """[lo, hi) in UTC ns from start/end; ``end`` is inclusive (a bare date: its whole day)."""
    lo = time_ns(config.start, "start")
    hi = time_ns(config.end, "end")
    if hi is not None and config.end is not None:
        hi += _DAY_NS if ("T" not in config.end and " " not in config.end) else 1
    return lo, hi


class AssetData:
    """Asset bars of one feed: everything needed to read them chunk by chunk."""

    def __init__(
        self, config: FeedConfig, where: Frameish, calendar: SessionCalendar | None = None
    ) -> None:
        cfg = config.asset
        self.config = config
        self.repairs = tuple(config.repair)
        shift = (
            duration_ns(cfg.bar_interval, "asset.bar_interval") if cfg.bar_label == "start" else 0
        )
        self.source = Source(
            where if where is not None else cfg.path,
            role="asset",
            ts_column=cfg.timestamp_column,
            symbol_column=cfg.symbol_column,
            shift_ns=shift or 0,
            tz=cfg.timezone,
            layout=Layout(
                format=cfg.format,
                symbol_from=cfg.symbol_from,
                timestamp_format=cfg.timestamp_format,
                time_columns=(cfg.timestamp_column,),
                float_columns=(*OHLCV, *cfg.signals, *cfg.indicators),
            ),
        )
        raise_violations(
            check_schema(
                self.source,
                numeric=OHLCV,
                flags=[*cfg.signals, *cfg.indicators],
                symbol=cfg.symbol_column,
            )
        )
        raise_violations(self._date_label_violations())
        self.lo, self.hi = config_range(config)
        if calendar is not None and calendar.name != config.calendar:
            calendar = None  # the run's calendar is not the data's: open the data's own
        if calendar is None and config.calendar:
            calendar = SessionCalendar(config.calendar)
        self.calendar = calendar
        self.log = get_logger("ml4t.backtest.data", source=self.source.name)
        self.symbols: tuple[str, ...] = ()
        self.enum: pl.Enum = pl.Enum([])
        self.plan = ChunkPlan([], [])
        self.file_spans: dict[Path, tuple[int, int]] = {}  # CSV files: first, last known-at
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.rows = 0
        self.n_timestamps = 0
        # what the planning pass counted: rows per symbol, rows per timestamp (for the cache)
        self.counted: tuple[pl.DataFrame, pl.DataFrame] | None = None

    def _date_label_violations(self) -> list[Violation]:
        """A Date labels the start of a day: without a shift its bars would be early."""
        if self.config.asset.bar_label == "start":
            return []
        if not isinstance(self.source.schema[self.source.ts_column], pl.Date):
            return []
        return [
            Violation(
                rule="wrong_type",
                source=self.source.name,
                column=self.source.ts_column,
                count=self.source.collect(self.source.frame.select(pl.len())).item(),
                detail=(
                    "are Dates, which mark the start of the day, but bar_label is 'end'; set "
                    "bar_label: start and bar_interval: 16h (with timezone: America/New_York) so "
                    "a daily bar is known at the close, or store the close time"
                ),
            )
        ]

    # ------------------------------------------------------------ planning

    def _filtered(self, lf: pl.LazyFrame | None = None) -> pl.LazyFrame:
        """The source restricted to the time range and configured symbols (pushed down)."""
        lf = self.source.frame if lf is None else lf
        pred = self.source.time_range(self.lo, self.hi)
        if pred is not None:
            lf = lf.filter(pred)
        wanted = self.config.asset.symbols
        if wanted is not None:
            lf = lf.filter(pl.col(self.config.asset.symbol_column).cast(pl.String).is_in(wanted))
        return lf

    def _exact(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """Re-apply the bounds on the normalised time (exact also for Date columns)."""
        preds = []
        if self.lo is not None:
            preds.append(pl.col(TS) >= self.lo)
        if self.hi is not None:
            preds.append(pl.col(TS) < self.hi)
        return lf.filter(*preds) if preds else lf

    def plan_chunks(self, known: Entry | None = None) -> list[Violation]:
        """Learn the universe and timestamps, plan chunks; return planning-level violations.

        ``known`` is what an earlier pass over the same files learned (the validation
        cache): its counts replace the two streaming aggregations.
        """
        if known is not None:
            by_symbol, by_ts = known.by_symbol, known.by_ts
            self.file_spans = dict(known.file_spans)
        else:
            by_symbol, by_ts = self._count_keys()
        self.counted = (by_symbol, by_ts)
        violations = self._key_violations(by_symbol, by_ts)
        present = sorted(s for s in by_symbol["symbol"].to_list() if s is not None)
        wanted = self.config.asset.symbols
        self.symbols = tuple(sorted(set(wanted))) if wanted is not None else tuple(present)
        self.enum = pl.Enum(list(self.symbols))
        by_ts = by_ts.drop_nulls(TS)
        ts, counts = by_ts[TS].to_numpy(), by_ts["len"].to_numpy()
        self.rows = int(counts.sum())
        self.n_timestamps = len(ts)
        if len(ts):
            self.first_ts, self.last_ts = int(ts[0]), int(ts[-1])
            if self.calendar is not None:  # fetch the schedules now, not on the reader thread
                self.calendar.arrays(self.first_ts - _DAY_NS * 10, self.last_ts)
        self.plan = plan_chunks(
            ts,
            counts,
            row_bytes=bytes_per_row(self._schema()),
            budget_mb=self.config.chunk_memory_mb,
        )
        return violations

    def _count_keys(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Rows per symbol and rows per timestamp, each in one streaming pass."""
        sym = self.config.asset.symbol_column
        keyed = self._exact(self._filtered().select(self.source.ts_expr().alias(TS), pl.col(sym)))
        try:
            by_symbol = (
                keyed.group_by(pl.col(sym).cast(pl.String).alias("symbol"))
                .agg(pl.len())
                .collect(engine="streaming")
            )
            return by_symbol, self._count_by_ts(keyed)
        except pl.exceptions.PolarsError as exc:
            raise_violations(out_of_range_times(self.source, [self.source.ts_column]))
            raise self.source.read_error(exc, "the timestamps and symbols of ") from exc

    def _count_by_ts(self, keyed: pl.LazyFrame) -> pl.DataFrame:
        """Rows per timestamp; for a CSV of several files also each file's time span.

        CSV has no row-group statistics: without the spans every chunk would scan every
        file. The spans come from the same pass (rows counted per file and timestamp).
        """
        opened = self.source.opened
        if opened.subset is None or len(opened.files) < 2 or self.source.rescan is None:
            return keyed.group_by(TS).agg(pl.len()).collect(engine="streaming").sort(TS)
        lf = self._filtered(self.source.rescan(_FILE))
        lf = self._exact(lf.select(self.source.ts_expr().alias(TS), pl.col(_FILE)))
        by_file = lf.group_by(_FILE, TS).agg(pl.len()).collect(engine="streaming")
        spans = by_file.drop_nulls(TS).group_by(_FILE).agg(lo=pl.col(TS).min(), hi=pl.col(TS).max())
        self.file_spans = {Path(f): (lo, hi) for f, lo, hi in spans.iter_rows()}
        return by_file.group_by(TS).agg(pl.col("len").sum()).sort(TS)

    def _frame_for(self, lo: int, hi: int) -> pl.LazyFrame:
        """The source's frame, or for a CSV of several files only those meeting [lo, hi)."""
        subset = self.source.opened.subset
        if not self.file_spans or subset is None:
            return self.source.frame
        files = [f for f in self.source.opened.files if _meets(self.file_spans.get(f), lo, hi)]
        return subset(files) if files else self.source.frame

    def _key_violations(self, by_symbol: pl.DataFrame, by_ts: pl.DataFrame) -> list[Violation]:
        out: list[Violation] = []
        name = self.source.name
        if by_ts.height == 0:
            rng = f"between {self.config.start or '-inf'} and {self.config.end or '+inf'}"
            out.append(
                Violation(
                    rule="empty",
                    source=name,
                    column="timestamp",
                    count=0,
                    detail=f"in the data {rng}: there are none",
                )
            )
        null_ts = by_ts.filter(pl.col(TS).is_null())["len"].sum()
        if null_ts:
            out.append(
                Violation(
                    rule="null_key",
                    source=name,
                    column="timestamp",
                    count=int(null_ts),
                    detail="have a null timestamp",
                )
            )
        null_sym = by_symbol.filter(pl.col("symbol").is_null())["len"].sum()
        if null_sym:
            out.append(
                Violation(
                    rule="null_key",
                    source=name,
                    column="symbol",
                    count=int(null_sym),
                    detail="have a null symbol",
                )
            )
        wanted = self.config.asset.symbols
        if wanted is not None:
            missing = sorted(set(wanted) - set(by_symbol["symbol"].drop_nulls().to_list()))
            if missing:
                out.append(
                    Violation(
                        rule="symbol_without_rows",
                        source=name,
                        column="symbol",
                        count=len(missing),
                        detail="listed in asset.symbols have no rows (symbols, not rows)",
                        examples=[f"symbol={s}" for s in missing[:5]],
                    )
                )
        return out

    def _schema(self) -> pl.Schema:
        return self._select(pl.LazyFrame(schema=self.source.schema)).collect_schema()

    # ------------------------------------------------------------ loading

    def _select(self, lf: pl.LazyFrame, *, validating: bool = False) -> pl.LazyFrame:
        """The normalised columns. For ``validating`` only those the row rules read
        (time, symbol, OHLCV), with the symbols left as the source's strings: their order
        is the universe's (it is sorted), and no rule needs the Enum's codes."""
        cfg = self.config.asset
        sym = pl.col(cfg.symbol_column)
        dtype = self.source.schema[cfg.symbol_column]
        if dtype != self.enum and not (validating and dtype == pl.String):
            sym = sym.cast(pl.String) if validating else sym.cast(pl.String).cast(self.enum)
        extra = [] if validating else [*cfg.signals, *cfg.indicators]
        return lf.select(
            self.source.ts_expr().alias(TS),
            sym.alias("symbol"),
            *(pl.col(c).cast(pl.Float64) for c in (*OHLCV, *extra)),
        )

    def read(self, lo: int, hi: int, *, validating: bool = False) -> Read:
        """Chunk ``[lo, hi)``: normalised, merged, repaired; with what validation needs
        (``validating``: only the columns the row rules read, see :meth:`_select`).

        With ``outside_session: drop`` rows outside sessions are dropped (and counted);
        with ``reject`` the mask of them is returned for validation to report. The rows of
        a symbol-split layout are merged into (timestamp, symbol) order, and the rows that
        were out of time order within their file are returned as ``disorder`` (or, with
        ``repair: [sort]``, counted as sorted).
        """
        span = self.source.time_range(lo, hi)
        assert span is not None  # both bounds given
        lf = self._frame_for(lo, hi).filter(span)
        wanted = self.config.asset.symbols
        if wanted is not None:
            lf = lf.filter(pl.col(self.config.asset.symbol_column).cast(pl.String).is_in(wanted))
        lf = self._select(lf, validating=validating)
        if isinstance(self.source.schema[self.source.ts_column], pl.Date):
            lf = lf.filter(pl.col(TS) >= lo, pl.col(TS) < hi)
        df = self.source.collect(lf)
        if self.source.symbol_split:  # the mask rides along as a column through the drops
            df, disorder = merge_files(df)
            df = df.with_columns(pl.Series(_DISORDER, disorder))
        counts: dict[str, int] = {}
        if self.repairs:
            df, counts = repair_chunk(df, self.repairs)
        mask = None
        if self.calendar is not None and self.config.outside_session != OutsideSession.KEEP:
            mask = self.calendar.outside_mask(df[TS].to_numpy())
            if self.config.outside_session == OutsideSession.DROP:
                counts["outside_session"] = int(mask.sum())
                df = df.filter(pl.Series(~mask)) if mask.any() else df
                mask = None
        if not self.source.symbol_split:
            return Read(df, counts, mask, None)
        found: np.ndarray | None = df[_DISORDER].to_numpy()
        df = df.drop(_DISORDER)
        if Repair.SORT in self.repairs:  # merging sorted them: count them as the repair
            counts[Repair.SORT.value] += int(found.sum())  # type: ignore[union-attr]
            found = None
        return Read(df, counts, mask, found)

    def checked(
        self, lo: int, hi: int, *, ordered: bool = False
    ) -> tuple[pl.DataFrame, dict[str, int]]:
        """Chunk ``[lo, hi)`` for publishing, and its repair counts.

        Raises if the chunk is out of order or has bars to reject: never misorders.
        ``ordered`` says :meth:`validate` has already read and passed this very chunk
        (the same files, config and repairs give the same rows), so the order is not
        checked a second time.
        """
        df, counts, mask, disorder = self.read(lo, hi)
        if ordered:
            return df, counts
        unsorted, dup = order_problems(df)
        bad = (mask is not None and mask.any()) or (disorder is not None and disorder.any())
        if unsorted.any() or dup.any() or bad:
            checker = RowChecker(self.source)
            checker.check(df, mask, disorder)
            raise_violations(
                [
                    v
                    for v in checker.violations()
                    if v.rule in ("unsorted", "duplicate", "outside_session")
                ]
            )
        return df, counts

    # ------------------------------------------------------------ validation

    def validate(self, planning: list[Violation]) -> ValidationReport:
        """Every row rule over every chunk; raise all violations at once, or report."""
        checker = RowChecker(self.source)
        repairs: dict[str, int] = {}
        kept = 0
        reader = ChunkReader(self.plan, partial(self.read, validating=True))
        try:
            for df, counts, mask, disorder in reader:
                for key, n in counts.items():
                    repairs[key] = repairs.get(key, 0) + n
                checker.check(df, mask, disorder)
                kept += df.height
        finally:
            reader.close()
        violations = [*planning, *checker.violations()]
        if kept == 0 and self.rows > 0:
            violations.append(
                Violation(
                    rule="empty",
                    source=self.source.name,
                    column="timestamp",
                    count=0,
                    detail="remain after repairs and session filtering",
                )
            )
        raise_violations(violations)
        dropped = repairs.pop("outside_session", 0)
        report = ValidationReport(
            rows=kept,
            timestamps=self.n_timestamps,
            symbols=len(self.symbols),
            first_ts=self.first_ts,
            last_ts=self.last_ts,
            chunks=len(self.plan),
            repairs=repairs,
            dropped_outside_session=dropped,
        )
        self.log_repairs(report)
        return report

    def log_repairs(self, report: ValidationReport) -> None:
        """Warn that repairs changed rows (or rows outside sessions were dropped)."""
        if any(report.repairs.values()) or report.dropped_outside_session:
            self.log.warning(
                "data_repaired",
                repairs=report.repairs,
                dropped_outside_session=report.dropped_outside_session,
            )
