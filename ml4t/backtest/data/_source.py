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

__all__ = [
    "TS",
    "Source",
    "data_fingerprint",
    "open_source",
    "schema_differences",
    "source_files",
]

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

_MAX_LISTED = 10


def source_files(where: str | Path, *, role: str) -> list[Path]:
    """The parquet files a path, glob or directory stands for, each checked readable.

    This is the one place a path becomes files: validation, the run and the data
    fingerprint all read exactly this list. A directory is walked recursively; names
    starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc`` files) are skipped, any other file
    must be parquet. A zero-byte or non-parquet file is a ``DataValidationError`` naming
    it, as is a set of files whose schemas differ.
    """
    text = str(where)
    path = Path(text)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part[0] in "._" for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataValidationError(
                f"rule missing_source: directory {text} ({role} data) holds no parquet files"
            )
        others = [p for p in files if p.suffix not in _PARQUET_SUFFIXES]
        if others:
            raise DataValidationError(
                f"rule unreadable_source: directory {text} ({role} data) holds "
                f"{len(others)} file(s) that are not parquet ({_listing(others)}); move them "
                f"out, or point the path at a glob such as {text}/**/*.parquet"
            )
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise DataValidationError(
                f"rule missing_source: no file matches {text!r} ({role} data)"
            )
    elif path.is_file():
        files = [path]
    else:
        raise DataValidationError(f"rule missing_source: {role} file {text} does not exist")
    _check_schemas(files, text, role)
    return files


def _listing(files: list[Path]) -> str:
    shown = ", ".join(str(p) for p in files[:_MAX_LISTED])
    more = len(files) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _file_schema(path: Path, role: str) -> pl.Schema:
    """The parquet schema of one file (its footer only), or an error naming the file."""
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is empty (0 bytes); "
            "remove it or write it again"
        )
    try:
        return pl.Schema(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is not a readable parquet file "
            f"({exc}); remove it or write it again"
        ) from exc


def _check_schemas(files: list[Path], name: str, role: str) -> None:
    """Every file readable and with the first file's schema, else one error naming each."""
    first = _file_schema(files[0], role)
    lines: list[str] = []
    for path in files[1:]:
        lines.extend(
            f"    {path}: {d}" for d in schema_differences(_file_schema(path, role), first)
        )
    if not lines:
        return
    shown = lines[: _MAX_LISTED * 2]
    if len(lines) > len(shown):
        shown.append(f"    ... and {len(lines) - len(shown)} more difference(s)")
    body = "\n".join(shown)
    raise DataValidationError(
        f"rule schema_mismatch: the files of {name} ({role} data) do not share one schema; "
        f"compared with {files[0]}:\n{body}\n"
        "    fix: write every file with the same columns and types (timestamps all "
        "timezone-aware, or all naive with timezone: set; symbol all String or all Categorical)"
    )


def schema_differences(schema: pl.Schema, reference: pl.Schema) -> list[str]:
    """How ``schema`` differs from ``reference``: missing, extra and retyped columns.

    >>> utc = pl.Schema({"ts": pl.Datetime("us", "UTC"), "v": pl.Float64})
    >>> for line in schema_differences(pl.Schema({"ts": pl.Datetime("us"), "x": pl.Int8}), utc):
    ...     print(line)
    missing column 'v'
    column 'ts' is Datetime(time_unit='us', time_zone=None) (naive), but \
Datetime(time_unit='us', time_zone='UTC') (timezone-aware) there
    extra column 'x' (Int8)
    """
    out = [f"missing column {c!r}" for c in reference if c not in schema]
    for col, dtype in schema.items():
        if col not in reference:
            out.append(f"extra column {col!r} ({dtype})")
        elif dtype != reference[col]:
            out.append(
                f"column {col!r} is {_describe(dtype)}, but {_describe(reference[col])} there"
            )
    return out


def _describe(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return f"{dtype} ({'naive' if dtype.time_zone is None else 'timezone-aware'})"
    return str(dtype)


def open_source(
    where: str | Path | pl.LazyFrame | pl.DataFrame | None, *, role: str
) -> tuple[pl.LazyFrame, str, Rescan | None]:
    """A lazy scan of ``where``, a name for messages, and a rescan that names files.

    ``where`` is a parquet file, a glob, a directory (scanned recursively; hive
    partitions ``key=value`` below it become columns), a LazyFrame or a DataFrame. The
    files scanned are exactly :func:`source_files`.
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
    files = source_files(where, role=role)
    root = Path(str(where))
    keys = _hive_keys(files, root) if root.is_dir() else set()

    def scan(file_col: str | None = None) -> pl.LazyFrame:
        if not keys:
            return pl.scan_parquet(files, hive_partitioning=False, include_file_paths=file_col)
        lf = pl.scan_parquet(files, hive_partitioning=True, include_file_paths=file_col)
        # polars reads key=value from every directory of a path: keep the ones below root
        above = {p.split("=", 1)[0] for p in root.parts if "=" in p} - keys
        return lf.drop(above, strict=False)

    return scan(), str(where), scan


def _hive_keys(files: list[Path], root: Path) -> set[str]:
    """Hive partition keys (``key=value`` directories) between ``root`` and its files."""
    return {
        part.split("=", 1)[0]
        for f in files
        for part in f.relative_to(root).parts[:-1]
        if "=" in part
    }


def data_fingerprint(sources: dict[str, str | None]) -> str:
    """sha256 over each input file's name, size, row count and schema (its parquet footer:
    cheap, and bound to the content), for the sources ``{role: path or None}``; a source
    without a path (a frame given in Python) is fingerprinted as in memory."""
    import hashlib

    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    for key, where in sources.items():
        if where is None:
            digest.update(f"{key}:in-memory".encode())
            continue
        for path in source_files(where, role=key):  # the very files the feed reads
            meta = pq.read_metadata(path)
            digest.update(f"{key}:{path.name}:{path.stat().st_size}:{meta.num_rows}".encode())
            digest.update(meta.schema.to_arrow_schema().to_string().encode())
    return digest.hexdigest()
