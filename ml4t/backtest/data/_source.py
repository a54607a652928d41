"""Input sources: resolve a path, glob, directory or LazyFrame into one lazy scan.

A :class:`Source` knows its name (for error messages), its lazy frame and its schema. It
builds the expressions that turn the user's timestamp column into UTC nanoseconds of the
time the row is known, and the predicates on the raw column that polars pushes down to
the parquet reader (row groups outside a time range are never read).
"""

from __future__ import annotations

import glob as globlib
from collections.abc import Callable
from pathlib import Path

import polars as pl

from ml4t.backtest.errors import DataValidationError

__all__ = ["TS", "Source", "open_source"]

TS = "__ts"
"""Name of the normalised timestamp column (Int64 UTC ns, "known at") inside the data layer."""

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000}


class Source:
    """One input: a lazy scan plus what is needed to normalise its timestamps."""

    __slots__ = (
        "frame",
        "name",
        "rescan",
        "schema",
        "shift_ns",
        "symbol_column",
        "ts_column",
        "tz",
    )

    def __init__(
        self,
        where: str | Path | pl.LazyFrame | pl.DataFrame | None,
        *,
        role: str,
        ts_column: str,
        symbol_column: str | None = None,
        shift_ns: int = 0,
        tz: str | None = None,
    ) -> None:
        self.frame, self.name, self.rescan = open_source(where, role=role)
        self.ts_column = ts_column
        self.symbol_column = symbol_column
        self.shift_ns = shift_ns
        self.tz = tz
        try:
            self.schema = self.frame.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataValidationError(
                f"rule unreadable_source: cannot read the schema of {self.name} ({role} data): "
                f"{exc}"
            ) from exc

    @property
    def raw_ts_dtype(self) -> pl.DataType:
        return self.schema[self.ts_column]

    def ts_expr(self) -> pl.Expr:
        """The timestamp column as Int64 UTC nanoseconds, shifted to "known at"."""
        expr = self.time_expr(self.ts_column)
        return expr + self.shift_ns if self.shift_ns else expr

    def time_expr(self, column: str) -> pl.Expr:
        """A Datetime or Date ``column`` as Int64 UTC ns (naive values in ``tz``)."""
        col = pl.col(column)
        dtype = self.schema[column]
        if isinstance(dtype, pl.Date):
            col = col.cast(pl.Datetime("ns"))
        if isinstance(dtype, pl.Date) or getattr(dtype, "time_zone", None) is None:
            col = col.dt.replace_time_zone(self.tz, ambiguous="raise", non_existent="raise")
        return col.dt.cast_time_unit("ns").dt.convert_time_zone("UTC").to_physical()

    def raw_bound(self, ns: int) -> pl.Expr:
        """A literal in the raw column's dtype for the normalised time ``ns`` (pushdown).

        Rounded up to the column's time unit, so ``col >= bound`` and ``col < bound``
        select exactly the rows whose normalised time is ``>= ns`` and ``< ns``.
        """
        raw = ns - self.shift_ns
        dtype = self.raw_ts_dtype
        if isinstance(dtype, pl.Datetime):
            unit = dtype.time_unit or "us"
            per_unit = _NS_PER_UNIT[unit]
            lit = pl.lit(-(-raw // per_unit), dtype=pl.Int64).cast(pl.Datetime(unit, "UTC"))
            if dtype.time_zone is None:
                return lit.dt.convert_time_zone(self.tz or "UTC").dt.replace_time_zone(None)
            return lit.dt.convert_time_zone(dtype.time_zone)
        # a Date column: compare on the local calendar day
        lit = pl.lit(raw, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC"))
        return lit.dt.convert_time_zone(self.tz or "UTC").dt.date()

    def time_range(self, lo: int | None, hi: int | None) -> pl.Expr | None:
        """Predicate ``lo <= ts < hi`` (normalised ns) on the raw column, or None for all.

        Exact for timestamp columns; a ``Date`` column is filtered by whole days (the
        exact bounds are re-applied on the normalised column afterwards).
        """
        col = pl.col(self.ts_column)
        preds: list[pl.Expr] = []
        is_date = isinstance(self.raw_ts_dtype, pl.Date)
        if lo is not None:
            preds.append(col >= self.raw_bound(lo))
        if hi is not None:
            preds.append(col <= self.raw_bound(hi) if is_date else col < self.raw_bound(hi))
        if not preds:
            return None
        return preds[0] if len(preds) == 1 else preds[0] & preds[1]


Rescan = Callable[[str], pl.LazyFrame]
"""Scan the same files again with a column (of the given name) holding each row's file."""


def open_source(
    where: str | Path | pl.LazyFrame | pl.DataFrame | None, *, role: str
) -> tuple[pl.LazyFrame, str, Rescan | None]:
    """A lazy scan of ``where``, a name for messages, and a rescan that names files.

    ``where`` is a parquet file, a glob, a directory (scanned recursively; hive
    partitions ``key=value`` become columns), a LazyFrame or a DataFrame.
    """
    if where is None:
        raise DataValidationError(
            f"rule missing_source: no {role} data was given; set {role}.path in the config "
            "or pass a frame"
        )
    if isinstance(where, pl.DataFrame):
        return where.lazy(), f"<{role} DataFrame>", None
    if isinstance(where, pl.LazyFrame):
        return where, f"<{role} LazyFrame>", None
    text = str(where)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.suffix in _PARQUET_SUFFIXES and p.is_file()]
        if not files:
            raise DataValidationError(
                f"rule missing_source: directory {text} ({role} data) holds no parquet files"
            )
        return _scan(path, hive=True), text, lambda col: _scan(path, hive=True, file_col=col)
    if any(ch in text for ch in "*?["):
        if not globlib.glob(text, recursive=True):
            raise DataValidationError(
                f"rule missing_source: no file matches {text!r} ({role} data)"
            )
        return _scan(text), text, lambda col: _scan(text, file_col=col)
    if not path.is_file():
        raise DataValidationError(f"rule missing_source: {role} file {text} does not exist")
    return _scan(path), text, None


def _scan(where: str | Path, *, hive: bool = False, file_col: str | None = None) -> pl.LazyFrame:
    return pl.scan_parquet(
        where, hive_partitioning=True if hive else None, include_file_paths=file_col
    )
