"""Small event tables (corporate actions, universe intervals): reading, parsing, problems.

Both files are read whole (they are small: one row per action or membership interval),
from parquet or CSV by extension, and checked in one pass: every problem becomes a
:class:`Problem` naming the 1-based data row (the header of a CSV is not a row) and
the column, and all of them are raised together as one :class:`TableRuleViolation`.

Times follow one rule, shared by both files (docs/data.md, "Corporate actions"): a
**date** ``d`` stands for the first instant of ``d`` in the file's time zone (local
midnight; on a day whose midnight is skipped by a DST change, the instant the day
begins), a **timestamp with a zone** for itself, and a **naive timestamp** for that
wall-clock time in the file's zone (a time skipped or repeated by a DST change is a
problem, never guessed). CSV cells are text: ``2023-03-13`` is a date,
``2023-03-13T09:30:00-04:00`` (or with a space, or ``Z``) a timestamp.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import polars as pl

from ml4t.backtest._time import to_ns
from ml4t.backtest.errors import DataValidationError

__all__ = [
    "MAX_LISTED",
    "Problem",
    "TableRuleViolation",
    "instants",
    "new_problems",
    "numbers",
    "read_table",
    "texts",
]

MAX_LISTED = 20
"""Problems listed in a message; the rest are counted."""

_PARQUET = (".parquet", ".pq", ".parq")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One broken rule: where (row is 1-based, None for the whole file), what, the fix."""

    row: int | None
    column: str | None
    what: str
    fix: str

    def render(self, file: str) -> str:
        where = [file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        head = ", ".join(where[1:])
        return f"{file}: {head}: {self.what}; {self.fix}" if head else f"{file}: {self.what}"


class TableRuleViolation(DataValidationError):
    """A corporate-action or universe file broke rules; ``problems`` lists every one."""

    def __init__(
        self, file: str, kind: str, problems: Sequence[Problem], columns: Sequence[str] = ()
    ) -> None:
        """``problems`` are listed file-wide first, then by row, then in ``columns`` order."""
        self.file = file
        place = {c: i for i, c in enumerate(columns)}

        def key(p: Problem) -> tuple[bool, int, int, str]:
            column = p.column or ""
            return (p.row is not None, p.row or 0, place.get(column, len(place)), column)

        self.problems = tuple(sorted(problems, key=key))
        lines = [p.render(file) for p in self.problems[:MAX_LISTED]]
        rest = len(self.problems) - len(lines)
        if rest > 0:
            lines.append(f"... and {rest} more problem(s)")
        head = f"{kind} file {file}: {len(self.problems)} problem(s)"
        super().__init__("\n".join([head, *(f"  {line}" for line in lines)]))


def new_problems(found: Iterable[Problem], reported: Sequence[Problem]) -> list[Problem]:
    """``found`` less those about a cell, or a whole column, already ``reported``: a cell
    that did not parse is reported once, not again by every rule that needs its value."""
    cells = {(p.row, p.column) for p in reported}
    columns = {p.column for p in reported if p.row is None}
    return [p for p in found if p.column not in columns and (p.row, p.column) not in cells]


def read_table(path: str | Path, *, kind: str) -> pl.DataFrame:
    """The whole file: parquet as stored, CSV with every column as text."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataValidationError(f"rule missing_source: {kind} file {path} does not exist")
    if suffix not in (*_PARQUET, ".csv"):
        raise DataValidationError(
            f"{kind} file {path}: neither parquet nor CSV; name it *.parquet or *.csv"
        )
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(
            f"rule unreadable_source: {kind} file {path} cannot be read ({exc}); write it again"
        ) from exc


def _rows(mask: pl.Series) -> list[int]:
    """1-based data rows where ``mask`` is true."""
    return [i + 1 for i in mask.fill_null(False).arg_true().to_list()]


def texts(
    frame: pl.DataFrame, column: str, problems: list[Problem], *, required: bool
) -> pl.Series:
    """``column`` as stripped text (empty -> null); a null in a required column is a problem."""
    raw = frame.get_column(column)
    if not isinstance(raw.dtype, _TEXT_TYPES) and raw.dtype != pl.Null:
        problems.append(
            Problem(
                row=None,
                column=column,
                what=f"is {raw.dtype}, expected text",
                fix="store it as strings",
            )
        )
        return pl.Series(column, [None] * frame.height, dtype=pl.String)
    out = raw.cast(pl.String).str.strip_chars().replace("", None)
    if required:
        problems.extend(
            Problem(row=r, column=column, what="is empty", fix=f"every row needs a {column}")
            for r in _rows(out.is_null())
        )
    return out


def numbers(frame: pl.DataFrame, column: str, problems: list[Problem]) -> pl.Series:
    """``column`` as Float64; a cell that is not a number is a problem (and becomes null)."""
    raw = frame.get_column(column)
    if raw.dtype.is_numeric():
        return raw.cast(pl.Float64)
    if not isinstance(raw.dtype, _TEXT_TYPES) and raw.dtype != pl.Null:
        problems.append(
            Problem(
                row=None,
                column=column,
                what=f"is {raw.dtype}, expected numbers",
                fix="store it as a number column",
            )
        )
        return pl.Series(column, [None] * frame.height, dtype=pl.Float64)
    text = raw.cast(pl.String).str.strip_chars().replace("", None)
    out = text.cast(pl.Float64, strict=False)
    for r in _rows(text.is_not_null() & out.is_null()):
        problems.append(
            Problem(
                row=r,
                column=column,
                what=f"{text[r - 1]!r} is not a number",
                fix="write a plain number such as 4.0 or 0.25",
            )
        )
    return out


def instants(
    frame: pl.DataFrame, column: str, tz: str, problems: list[Problem], *, required: bool
) -> pl.Series:
    """``column`` as Int64 UTC ns under the time rule of this module (null where empty)."""
    raw = frame.get_column(column)
    dtype = raw.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        out = raw.dt.convert_time_zone("UTC").dt.cast_time_unit("ns").to_physical()
    elif isinstance(dtype, pl.Datetime):
        local = raw.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
        for r in _rows(raw.is_not_null() & local.is_null()):
            problems.append(_not_wall_clock(r, column, str(raw[r - 1]), tz))
        out = local.dt.convert_time_zone("UTC").dt.cast_time_unit("ns").to_physical()
    elif isinstance(dtype, pl.Date | pl.String | pl.Categorical | pl.Enum | pl.Null):
        out = _parsed(raw, column, tz, problems)
    else:
        problems.append(
            Problem(
                row=None,
                column=column,
                what=f"is {dtype}, expected dates or timestamps",
                fix="store a Date, a Datetime with a time zone, or ISO-8601 text",
            )
        )
        return pl.Series(column, [None] * frame.height, dtype=pl.Int64)
    if required:
        empty = raw.is_null()
        if isinstance(dtype, _TEXT_TYPES):
            empty = raw.cast(pl.String).str.strip_chars().replace("", None).is_null()
        problems.extend(
            Problem(row=r, column=column, what="is empty", fix=f"every row needs a {column}")
            for r in _rows(empty)
        )
    return out.rename(column)


def _parsed(raw: pl.Series, column: str, tz: str, problems: list[Problem]) -> pl.Series:
    """Dates and ISO-8601 text, converted once per distinct value."""
    zone = zoneinfo.ZoneInfo(tz)
    values = raw.cast(pl.String).str.strip_chars().to_list() if raw.dtype != pl.Date else None
    cells = values if values is not None else raw.to_list()
    cache: dict[object, int | str | None] = {}
    out: list[int | None] = []
    for row, cell in enumerate(cells, start=1):
        if cell not in cache:
            cache[cell] = _instant(cell, zone)
        got = cache[cell]
        if isinstance(got, str):
            problems.append(Problem(row=row, column=column, what=f"{cell!r} {got}", fix=_FIX_TIME))
            got = None
        out.append(got)
    return pl.Series(column, out, dtype=pl.Int64)


_FIX_TIME = (
    "write a date (2023-03-13) or an ISO-8601 timestamp with an offset (2023-03-13T09:30:00-04:00)"
)


def _instant(cell: object, zone: zoneinfo.ZoneInfo) -> int | str | None:
    """UTC ns of one cell, None when empty, or what is wrong with it (a str)."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, date):
        return _midnight(cell, zone)
    text = str(cell)
    try:
        if _DATE.fullmatch(text):
            return _midnight(date.fromisoformat(text), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "is not a date (YYYY-MM-DD) or an ISO-8601 timestamp"
    if moment.tzinfo is not None:
        return to_ns(moment)
    local = moment.replace(tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != moment or local.utcoffset() != local.replace(fold=1).utcoffset():
        return f"is not a single wall-clock time in {zone.key} (a DST gap or repeated hour)"
    return to_ns(local)


def _midnight(day: date, zone: zoneinfo.ZoneInfo) -> int:
    """The first instant of ``day`` in ``zone`` (fold=0: before any change at midnight)."""
    return to_ns(datetime(day.year, day.month, day.day, tzinfo=zone))


def _not_wall_clock(row: int, column: str, value: str, tz: str) -> Problem:
    return Problem(
        row=row,
        column=column,
        what=f"{value} is not a single wall-clock time in {tz} (a DST gap or repeated hour)",
        fix="store timestamps with a time zone",
    )
