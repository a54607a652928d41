"""Context (market-wide fields) as of each event time, computed once per chunk.

For a chunk of event times ``[lo, hi)`` the cursor reads only the context rows that
became available in that range, and carries each field's last value from the chunks
before. Each field is joined on its own: the value at event time t is the field's last
non-null value whose availability time is <= t (None before the first). The result is
one dict per event time, built in bulk with numpy, so per-timestamp work is a list index.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from ml4t.backtest._time import from_ns
from ml4t.backtest.data._source import TS, Layout, Source
from ml4t.backtest.data.config import ContextSourceConfig, duration_ns
from ml4t.backtest.data.validation import (
    Violation,
    check_schema,
    format_examples,
    out_of_range_times,
)
from ml4t.backtest.errors import ML4TError

__all__ = ["AVAIL", "ContextCursor", "coverage_violations", "open_context"]

AVAIL = "__available"


class ContextCursor:
    """Walks a context source forward in time, chunk by chunk."""

    def __init__(
        self, source: Source, fields: list[str], *, lag_ns: int, available_at: str | None
    ) -> None:
        self.fields = fields
        self.source = source
        self.available_at = available_at
        avail = source.time_expr(available_at) if available_at else source.ts_expr() + lag_ns
        self._frame = source.frame.select(
            avail.alias(AVAIL), *(pl.col(f).cast(pl.Float64) for f in fields)
        )
        self._last: list[float] = [math.nan] * len(fields)
        self._lo: int | None = None
        self._hi: int | None = None

    def values(self, event_ts: np.ndarray, lo: int, hi: int) -> list[dict[str, float | None]]:
        """One context dict per sorted event time in ``event_ts`` (all within [lo, hi))."""
        if self._lo is None:
            self._carry(self._frame.filter(pl.col(AVAIL) < lo))
        elif lo != self._hi:
            raise ML4TError(
                f"context chunks must be read in order, without gaps: asked for [{lo}, {hi}) "
                f"after one ending at {self._hi} (a bug in the feed reading them)"
            )
        self._lo, self._hi = lo, hi
        rows = self.source.collect(self._frame.filter((pl.col(AVAIL) >= lo) & (pl.col(AVAIL) < hi)))
        rows = rows.sort(AVAIL, maintain_order=True)
        avail = rows[AVAIL].to_numpy()
        columns = []
        for i, f in enumerate(self.fields):
            vals = rows[f].to_numpy()
            known = ~np.isnan(vals)
            t, v = avail[known], vals[known]
            idx = np.searchsorted(t, event_ts, side="right") - 1
            col = np.where(idx >= 0, v[np.maximum(idx, 0)] if len(v) else math.nan, self._last[i])
            if len(v):
                self._last[i] = float(v[-1])
            columns.append(col)
        return _dicts(self.fields, columns, len(event_ts))

    def available_span(self) -> tuple[int | None, int | None]:
        """The first and last availability time (UTC ns) of the context rows."""
        span = self._frame.select(pl.col(AVAIL).min().alias("lo"), pl.col(AVAIL).max().alias("hi"))
        lo, hi = self.source.collect(span).row(0)
        return lo, hi

    def _carry(self, before: pl.LazyFrame) -> None:
        """The last non-null value of each field available before the first chunk."""
        for i, f in enumerate(self.fields):
            known = pl.col(f).is_not_null() & pl.col(f).is_not_nan()
            last = self.source.collect(before.filter(known).select(pl.col(f).top_k_by(AVAIL, k=1)))
            self._last[i] = float(last.item()) if last.height else math.nan


def _dicts(fields: list[str], columns: list[np.ndarray], n: int) -> list[dict[str, float | None]]:
    if not fields:
        return [{} for _ in range(n)]
    table = np.column_stack(columns).tolist()
    return [
        {f: (None if v != v else v) for f, v in zip(fields, row, strict=True)}  # NaN -> None
        for row in table
    ]


def coverage_violations(
    cursor: ContextCursor, first_ts: int | None, last_ts: int | None
) -> list[Violation]:
    """No context rows, rows without a time, or none available within the asset data's span.

    ``first_ts``/``last_ts`` are the known-at times of the first and last asset bars; a
    context that ends before them would give every batch one stale value, one that starts
    after them would give every batch None.
    """
    src = cursor.source
    times = [src.ts_column, *([cursor.available_at] if cursor.available_at else [])]
    stats = src.collect(
        src.frame.select(pl.len().alias("rows"), *(pl.col(c).null_count().alias(c) for c in times))
    )
    rows = int(stats["rows"][0])
    if rows == 0:
        return [_violation(src, "empty", src.ts_column, 0, "in the context data: there are none")]
    out = [
        _violation(src, "null_key", c, int(stats[c][0]), "have a null time (never available)")
        for c in times
        if stats[c][0]
    ]
    lo, hi = cursor.available_span()
    if first_ts is None or last_ts is None or lo is None or hi is None:
        return out
    if hi < first_ts or lo > last_ts:
        span = f"{from_ns(first_ts).isoformat()} to {from_ns(last_ts).isoformat()}"
        seen = "one stale value" if hi < first_ts else "None"
        out.append(
            _violation(
                src,
                "context_outside_range",
                src.ts_column,
                rows,
                f"are available from {from_ns(lo).isoformat()} to {from_ns(hi).isoformat()}, "
                f"none within the asset data's {span}: every batch would see {seen}",
            )
        )
    return out


def _violation(src: Source, rule: str, column: str, count: int, detail: str) -> Violation:
    return Violation(rule=rule, source=src.name, column=column, count=count, detail=detail)


def open_context(
    config: ContextSourceConfig, where: object = None
) -> tuple[ContextCursor | None, list[Violation]]:
    """The cursor over a context source (``where`` overrides ``config.path``: a path,
    glob, directory or frame) and the problems of its schema, times and duplicates; the
    cursor is None when there are any."""
    times = (config.timestamp_column, *([config.available_at] if config.available_at else []))
    source = Source(
        where if where is not None else config.path,  # type: ignore[arg-type]
        role="context",
        ts_column=config.timestamp_column,
        tz=config.timezone,
        layout=Layout(
            format=config.format,
            timestamp_format=config.timestamp_format,
            time_columns=times,
            float_columns=tuple(config.fields),
        ),
    )
    extra = [config.available_at] if config.available_at else []
    problems = check_schema(source, numeric=config.fields, extra_times=extra)
    problems = (
        problems
        or out_of_range_times(source, [config.timestamp_column, *extra])
        or _duplicates(source)
    )
    if problems:
        return None, problems
    lag = duration_ns(config.available_lag, "context.available_lag") or 0
    cursor = ContextCursor(
        source, list(config.fields), lag_ns=lag, available_at=config.available_at
    )
    return cursor, []


def _duplicates(source: Source) -> list[Violation]:
    """Context rows sharing a timestamp (which one is "the value at t" would be arbitrary)."""
    dup = source.collect(
        source.frame.group_by(source.ts_expr().alias(TS))
        .agg(pl.len())
        .filter(pl.col("len") > 1)
        .sort(TS),
        streaming=True,
    )
    if dup.height == 0:
        return []
    return [
        Violation(
            rule="duplicate",
            source=source.name,
            column="timestamp",
            count=int(dup["len"].sum()),
            detail="share a timestamp with another context row",
            examples=format_examples(dup, ["len"]),
        )
    ]
