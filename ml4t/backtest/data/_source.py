"""Input sources: a path, glob, directory or frame as one lazy scan, in any supported layout.

A :class:`Source` knows its name (for error messages), its lazy frame and its schema. It
builds the expressions that turn the user's timestamp column into UTC nanoseconds of the
time the row is known, and the predicates on the raw column that polars pushes down to
the reader (parquet row groups outside a time range are never read).

Layouts (docs/data.md, "Layouts"): long-format parquet or CSV files (one file, a glob, a
directory, hive partitions ``key=value/``), or a directory of per-symbol files whose
symbol is the file name (``symbol_from: filename``). Every layout becomes the same lazy
frame, so validation, chunking, time-range pushdown and the fingerprint do not care
which one it was. A layout that splits one symbol's rows from the others' (per-symbol
files, a hive key that is the symbol) is ``symbol_split``: the rows of a time range come
file by file, and the asset reader merges them into (timestamp, symbol) order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec
import polars as pl

from ml4t.backtest.data._csv import CsvFiles
from ml4t.backtest.data._files import (
    check_symbol_columns,
    config_key,
    csv_header,
    resolve_files,
    schema_differences,
    source_files,
    symbols_by_file,
)
from ml4t.backtest.errors import ConfigError, DataValidationError

__all__ = [
    "TS",
    "Layout",
    "Opened",
    "Source",
    "data_fingerprint",
    "open_source",
    "schema_differences",
    "source_files",
]

TS = "__ts"
"""Name of the normalised timestamp column (Int64 UTC ns, "known at") inside the data layer."""

_NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_PATH = "__ml4t_path"

Rescan = Callable[[str | None], pl.LazyFrame]
"""Scan the same files again with a column (of the given name) holding each row's file."""


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    """How one source's files are read: taken from its config section.

    ``time_columns`` and ``float_columns`` are the columns a CSV reads as times and as
    numbers (see :mod:`ml4t.backtest.data._csv`); parquet carries its own types.
    """

    format: Literal["auto", "parquet", "csv"] = "auto"
    symbol_from: Literal["column", "filename"] = "column"
    timestamp_format: str | None = None
    time_columns: tuple[str, ...] = ()
    float_columns: tuple[str, ...] = ()


class Opened(NamedTuple):
    """A source opened: its frame, a name for messages and what its layout implies."""

    frame: pl.LazyFrame
    name: str
    rescan: Rescan | None = None
    format: str = "frame"  # parquet | csv | frame
    symbol_split: bool = False
    locate: Callable[[], str | None] | None = None  # CSV: the value that does not parse
    files: tuple[Path, ...] = ()
    symbol_from: str = "column"
    subset: Callable[[list[Path]], pl.LazyFrame] | None = None  # CSV: scan only these files

    def describe(self) -> str:
        """The layout in a few words, for ``ml4t validate``: ``csv, 4 files, ...``."""
        if self.format == "frame":
            return "a frame given in Python"
        n = len(self.files)
        parts = [self.format, f"{n} file{'s' if n != 1 else ''}"]
        if self.symbol_from == "filename":
            parts.append("symbol from the file name")
        elif self.symbol_split:
            parts.append("symbol from the hive partition")
        return ", ".join(parts)


class Source:
    """One input: a lazy scan plus what is needed to normalise its timestamps."""

    __slots__ = (
        "frame",
        "name",
        "opened",
        "rescan",
        "role",
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
        layout: Layout | None = None,
    ) -> None:
        self.opened = opened = open_source(
            where, role=role, layout=layout, symbol_column=symbol_column
        )
        self.frame, self.name, self.rescan = opened.frame, opened.name, opened.rescan
        self.role = role
        self.ts_column = ts_column
        self.symbol_column = symbol_column
        self.shift_ns = shift_ns
        self.tz = tz if tz is not None or opened.format != "csv" else "UTC"  # naive CSV: UTC
        try:
            self.schema = self.frame.collect_schema()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataValidationError(
                f"rule unreadable_source: cannot read the schema of {self.name} ({role} data): "
                f"{exc}"
            ) from exc

    @property
    def format(self) -> str:
        """``parquet``, ``csv`` or ``frame`` (given in Python)."""
        return self.opened.format

    @property
    def symbol_split(self) -> bool:
        """True when each file holds one symbol's rows (chunks are merged into order)."""
        return self.opened.symbol_split

    def collect(self, lf: pl.LazyFrame, *, streaming: bool = False) -> pl.DataFrame:
        """``lf.collect()``; a read that fails is a DataValidationError naming the cause."""
        try:
            return lf.collect(engine="streaming") if streaming else lf.collect()
        except pl.exceptions.PolarsError as exc:
            raise self.read_error(exc) from exc

    def read_error(self, exc: Exception, what: str = "") -> DataValidationError:
        """The error of a failed read: for CSV the file, row, column and value at fault."""
        locate = self.opened.locate
        found = locate() if locate is not None else None
        if found is not None:
            return DataValidationError(found)
        return DataValidationError(
            f"rule unreadable_source: cannot read {what}{self.name} ({self.role} data): {exc}"
        )

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


def open_source(
    where: str | Path | pl.LazyFrame | pl.DataFrame | None,
    *,
    role: str,
    layout: Layout | None = None,
    symbol_column: str | None = None,
) -> Opened:
    """A lazy scan of ``where`` in its layout, a name for messages, and a rescan.

    ``where`` is a file, a glob, a directory (scanned recursively; hive partitions
    ``key=value`` below it become columns), a LazyFrame or a DataFrame. The files scanned
    are exactly :func:`source_files`. With ``symbol_from: filename`` every file holds one
    symbol, its name without the extension, as the ``symbol_column``.
    """
    layout = layout or Layout()
    if where is None:
        raise DataValidationError(
            f"rule missing_source: no {role} data was given; set {config_key(role)}.path in "
            "the config or pass a frame"
        )
    if isinstance(where, pl.DataFrame):
        return Opened(where.lazy(), f"<{role} DataFrame>")
    if isinstance(where, pl.LazyFrame):
        return Opened(where, f"<{role} LazyFrame>")
    by_name = layout.symbol_from == "filename" and symbol_column is not None
    files, fmt = resolve_files(
        where, role=role, format=layout.format, except_column=symbol_column if by_name else None
    )
    root = Path(str(where))
    hive = {f: _hive_values(f, root) for f in files} if root.is_dir() else {}
    keys = {k for values in hive.values() for k in values}
    symbols = symbols_by_file(files, role) if by_name else {}
    if by_name:
        assert symbol_column is not None
        check_symbol_columns(files, symbols, fmt, symbol_column, role)
    split = by_name or (symbol_column is not None and symbol_column in keys)
    listed, symbol_from = tuple(files), "filename" if by_name else "column"
    if fmt == "csv":
        extra = {f: {**hive.get(f, {}), **_named(symbols, f, symbol_column)} for f in files}
        csv = CsvFiles(
            files,
            role=role,
            time_columns=layout.time_columns,
            float_columns=layout.float_columns,
            symbol_column=symbol_column,
            timestamp_format=layout.timestamp_format,
            extra={f: cols for f, cols in extra.items() if cols},
        )
        return Opened(
            csv.scan(),
            str(where),
            csv.scan,
            "csv",
            symbol_split=split,
            locate=csv.locate,
            files=listed,
            symbol_from=symbol_from,
            subset=csv.subset,
        )
    if layout.timestamp_format is not None:
        raise ConfigError(
            f"{config_key(role)}.timestamp_format is set, but {where} is parquet, whose "
            "timestamps carry their type; remove timestamp_format (it applies to CSV only)"
        )
    named = {str(f): s for f, s in symbols.items()}
    scan = _parquet_scan(files, root, keys, named, symbol_column)
    return Opened(
        scan(None),
        str(where),
        scan,
        "parquet",
        symbol_split=split,
        files=listed,
        symbol_from=symbol_from,
    )


def _named(symbols: dict[Path, str], path: Path, column: str | None) -> dict[str, str]:
    """The literal symbol column of a per-symbol file (none for other layouts)."""
    return {column: symbols[path]} if column is not None and path in symbols else {}


def _parquet_scan(
    files: list[Path],
    root: Path,
    keys: set[str],
    symbols: dict[str, str],
    symbol_column: str | None,
) -> Rescan:
    """The scan of parquet ``files`` (and ``symbols`` by path, for per-symbol files)."""
    # per-symbol files may or may not carry the symbol column: read the others' columns
    schema = None
    if symbols:
        first = pl.read_parquet_schema(files[0])
        schema = {c: t for c, t in first.items() if c != symbol_column}
    # polars reads key=value from every directory of a path: keep the ones below root
    above = {p.split("=", 1)[0] for p in root.parts if "=" in p} - keys

    def scan(file_col: str | None = None) -> pl.LazyFrame:
        path_col = file_col or (_PATH if symbols else None)
        lf = pl.scan_parquet(
            files,
            hive_partitioning=bool(keys),
            include_file_paths=path_col,
            schema=schema,
            extra_columns="ignore" if schema is not None else "raise",
        )
        lf = lf.drop(above, strict=False) if keys else lf
        if symbols:
            assert symbol_column is not None and path_col is not None
            named = pl.col(path_col).replace_strict(symbols, return_dtype=pl.String)
            lf = lf.drop(symbol_column, strict=False).with_columns(named.alias(symbol_column))
            lf = lf.drop(_PATH) if file_col is None else lf
        return lf

    return scan


def _hive_values(path: Path, root: Path) -> dict[str, str]:
    """Hive partition keys and values (``key=value`` directories) between ``root`` and a file."""
    parts = path.relative_to(root).parts[:-1]
    return dict(p.split("=", 1) for p in parts if "=" in p)


def data_fingerprint(sources: dict[str, str | None], formats: dict[str, str] | None = None) -> str:
    """sha256 over each input file's name, size, row count and schema, for the sources
    ``{role: path or None}`` read in ``formats`` (``{role: auto|parquet|csv}``, default
    auto). For parquet the schema and row count come from the footer (cheap, and bound to
    the content); for CSV from the header and a count of the rows. A source without a
    path (a frame given in Python) is fingerprinted as in memory."""
    import hashlib

    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for key, where in sources.items():
        if where is None:
            digest.update(f"{key}:in-memory".encode())
            continue
        fmt = (formats or {}).get(key, "auto")
        # the very files the feed reads (it compared their schemas)
        files, fmt = resolve_files(where, role=key, format=fmt, compare=False)
        for path in files:
            if fmt == "csv":
                rows = pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item()
                schema = ",".join(csv_header(path, key))
            else:
                meta = pq.read_metadata(path)
                rows, schema = meta.num_rows, meta.schema.to_arrow_schema().to_string()
            digest.update(f"{key}:{path.name}:{path.stat().st_size}:{rows}".encode())
            digest.update(schema.encode())
    return digest.hexdigest()
