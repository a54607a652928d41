"""CSV sources: one explicit schema rule, a lazy scan, and errors that name file, row and column.

A CSV file has no types, so the rule is stated here once (docs/data.md, "Layouts"):

- the time columns (``timestamp_column``, ``available_at``) are text, parsed with
  ``timestamp_format`` (strftime), or, when it is not set, with the ISO-8601 variant that
  parses the first value of the first file (``2023-01-03T14:31:00+00:00``, ``2023-01-03
  14:31:00``, ``2023-01-03``, ...); that one format then applies to every value. A format
  without a time of day gives a ``Date``. Times keep microseconds. Values without an
  offset are wall-clock times in the source's ``timezone`` (UTC when it is not set);
- the symbol column is a String;
- OHLCV and every column the config reads as a number (signals, indicators, signal_data
  columns, context fields) are Float64, except one whose first 10,000 values are all
  ``true``/``false``, which is a Boolean (published as 1.0/0.0);
- any other column gets polars' inference over the first 10,000 rows of the first file
  (the feed never reads it);
- every file is read with these types; headers may list the columns in any order;
  an empty cell is null.

Files are scanned lazily with ``pl.scan_csv`` (one scan per file, concatenated, so
literal columns such as hive keys or a symbol taken from the file name come for free).
A value that does not parse fails the first read that touches it: :meth:`CsvFiles.locate`
then reads the files again as text and names the file, row, line, column and value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from ml4t.backtest.data._files import config_key, csv_header
from ml4t.backtest.errors import DataValidationError

__all__ = ["INFER_ROWS", "ISO_FORMATS", "CsvFiles"]

INFER_ROWS = 10_000
ROW = "__ml4t_row"

ISO_FORMATS = (
    *(
        f"%Y-%m-%d{sep}%H:%M{sec}{zone}"
        for zone in ("%#z", "%z", "")
        for sep in ("T", " ")
        for sec in (":%S%.f", "")
    ),
    "%Y-%m-%d",
)
"""ISO-8601 variants tried, in order, on the first value of a time column."""

_TIME_OF_DAY = ("%H", "%I", "%k", "%l", "%M", "%S", "%T", "%R", "%r", "%X", "%c", "%s")


def _has_time_of_day(fmt: str) -> bool:
    return any(d in fmt for d in _TIME_OF_DAY)


class CsvFiles:
    """The CSV files of one source read under the schema rule, as one lazy frame."""

    __slots__ = ("columns", "extra", "files", "formats", "headers", "numbers", "role", "types")

    def __init__(
        self,
        files: Sequence[Path],
        *,
        role: str,
        time_columns: Sequence[str],
        float_columns: Sequence[str],
        symbol_column: str | None,
        timestamp_format: str | None,
        extra: Mapping[Path, Mapping[str, str]],
    ) -> None:
        self.files = list(files)
        self.role = role
        self.extra = extra  # per file: literal String columns (hive keys, symbol from name)
        self.headers = {f: csv_header(f, role) for f in self.files}
        first = self.files[0]
        inferred = pl.scan_csv(first, infer_schema_length=INFER_ROWS).collect_schema()
        times = [c for c in dict.fromkeys(time_columns) if c in self.headers[first]]
        self.types: dict[str, pl.DataType] = {}
        for col, dtype in inferred.items():
            if col in times or col == symbol_column:
                self.types[col] = pl.String()
            elif col in float_columns:
                self.types[col] = pl.Boolean() if dtype == pl.Boolean else pl.Float64()
            else:
                self.types[col] = dtype
        if symbol_column is not None:
            self.types.setdefault(symbol_column, pl.String())
        self.numbers = [c for c in self.types if c in float_columns]
        self.formats = {c: self._time_format(c, timestamp_format) for c in times}
        literal = sorted({k for cols in extra.values() for k in cols})
        self.columns = [*(c for c in self.headers[first] if c not in literal), *literal]

    # ------------------------------------------------------------ times

    def _time_format(self, col: str, given: str | None) -> tuple[str, bool, bool]:
        """(strftime format, is it a date, was it detected) of a time column."""
        if given is not None:
            return given, not _has_time_of_day(given), False
        found = self._first_value(col)
        if found is None:  # no value anywhere: any format parses nothing
            return ISO_FORMATS[0], False, True
        path, row, value = found
        for fmt in ISO_FORMATS:
            date = not _has_time_of_day(fmt)
            if pl.select(_parse(pl.lit(value), fmt, date=date, strict=False)).item() is not None:
                return fmt, date, True
        raise DataValidationError(
            f"rule bad_timestamp: column {col!r} in {self.role} file {path}, row {row + 1} "
            f"(line {row + 2}): {value!r} is not an ISO-8601 time; set "
            f"{config_key(self.role)}.timestamp_format to its strftime format (e.g. "
            f"'%m/%d/%Y %H:%M' for 01/03/2023 09:31)"
        )

    def _first_value(self, col: str) -> tuple[Path, int, str] | None:
        for path in self.files:
            head = (
                pl.scan_csv(path, infer_schema=False)
                .with_row_index(ROW)
                .select(ROW, col)
                .drop_nulls(col)
                .head(1)
                .collect()
            )
            if head.height:
                return path, int(head[ROW][0]), str(head[col][0])
        return None

    # ------------------------------------------------------------ scanning

    def scan(
        self, file_col: str | None = None, files: Sequence[Path] | None = None
    ) -> pl.LazyFrame:
        """The files (all, or ``files``) as one lazy frame, ``file_col`` naming each row's."""
        frames = [
            self._scan_file(path, file_col) for path in (self.files if files is None else files)
        ]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")

    def subset(self, files: Sequence[Path]) -> pl.LazyFrame:
        """Only ``files``: a chunk reads the files whose time span meets its range."""
        return self.scan(files=files)

    def _scan_file(self, path: Path, file_col: str | None) -> pl.LazyFrame:
        literal = self.extra.get(path, {})
        header = self.headers[path]
        lf = pl.scan_csv(path, schema={c: self.types.get(c, pl.String()) for c in header})
        parsed = [
            _parse(pl.col(c), fmt, date=date).alias(c)
            for c, (fmt, date, _) in self.formats.items()
            if c in header
        ]
        lf = lf.with_columns(parsed) if parsed else lf
        lf = lf.with_columns(pl.lit(v, dtype=pl.String).alias(k) for k, v in literal.items())
        columns = list(self.columns)
        if file_col is not None:
            lf = lf.with_columns(pl.lit(str(path), dtype=pl.String).alias(file_col))
            columns.append(file_col)
        return lf.select(columns)

    # ------------------------------------------------------------ errors

    def locate(self) -> str | None:
        """The first value of a time or number column that does not parse, as a message."""
        for path in self.files:
            header = self.headers[path]
            checks = {c: self._unparsed(c) for c in (*self.formats, *self.numbers) if c in header}
            if not checks:
                continue
            flags = [e.alias(f"__bad_{c}") for c, e in checks.items()]
            bad = (
                pl.scan_csv(path, infer_schema=False)
                .with_row_index(ROW)
                .select(ROW, *checks, *flags)
                .filter(pl.any_horizontal(f"__bad_{c}" for c in checks))
                .collect()
            )
            if bad.height:
                return self._message(path, bad, list(checks))
        return None

    def _unparsed(self, col: str) -> pl.Expr:
        raw = pl.col(col)
        if col in self.formats:
            fmt, date, _ = self.formats[col]
            return raw.is_not_null() & _parse(raw, fmt, date=date, strict=False).is_null()
        if self.types[col] == pl.Boolean:
            return raw.is_not_null() & ~raw.str.to_lowercase().is_in(["true", "false"])
        return raw.is_not_null() & raw.cast(pl.Float64, strict=False).is_null()

    def _message(self, path: Path, bad: pl.DataFrame, columns: list[str]) -> str:
        col = next(c for c in columns if bad[f"__bad_{c}"][0])
        row = int(bad[ROW][0])
        count = int(bad[f"__bad_{col}"].sum())
        value = bad[col][0]
        where = (
            f"column {col!r} in {self.role} file {path}, row {row + 1} (line {row + 2}): {value!r}"
        )
        key = config_key(self.role)
        if col in self.formats:
            fmt, _, detected = self.formats[col]
            how = " (ISO-8601, detected from the first value)" if detected else ""
            return (
                f"rule bad_timestamp: {where} does not match the time format {fmt!r}{how}; "
                f"{count} row(s) of this file in all; fix: set {key}.timestamp_format to "
                "the file's strftime format, or correct the rows"
            )
        kind = "true or false" if self.types[col] == pl.Boolean else "a number"
        return (
            f"rule bad_value: {where} is not {kind} (the column is read as "
            f"{self.types[col]}); {count} row(s) of this file in all; fix: correct the "
            "values, or leave the cells empty (null: validation reports it, or a repair drops it)"
        )


def _parse(expr: pl.Expr, fmt: str, *, date: bool, strict: bool = True) -> pl.Expr:
    if date:
        return expr.str.to_date(fmt, strict=strict)
    return expr.str.to_datetime(fmt, time_unit="us", strict=strict)
