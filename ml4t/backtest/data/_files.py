"""From a path to files: listing, the format of each file, and one schema for all.

:func:`source_files` is the one place a path, glob or directory becomes files. Validation,
the run and the data fingerprint all read exactly its list. It decides the format
(``parquet`` or ``csv``: given, or by file extension), rejects a set of files that mixes
the two, and checks every file readable and sharing the first file's columns (parquet: the
footer's schema; CSV: the header's names) before any row is read.

For per-symbol files (``symbol_from: filename``) the file names give the symbols: one
file per symbol, and a symbol column a file carries anyway must agree with its name.
"""

from __future__ import annotations

import glob as globlib
from pathlib import Path

import polars as pl

from ml4t.backtest.errors import DataValidationError

__all__ = [
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "check_symbol_columns",
    "config_key",
    "csv_header",
    "detect_symbol_from",
    "file_format",
    "listing",
    "parquet_schema",
    "resolve_files",
    "schema_differences",
    "source_files",
    "stem",
    "symbols_by_file",
]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv.gz", ".csv")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_LISTED = 10
ROW = "__ml4t_row"


def config_key(role: str) -> str:
    """The config section of a source, for messages: ``data.asset``, ``data.context``."""
    return f"data.{role}"


def file_format(path: Path) -> str | None:
    """``"parquet"`` or ``"csv"`` by the file's extension (any case), else None."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def stem(path: Path) -> str:
    """The name without its format extension: ``BRK.B.csv.gz`` -> ``BRK.B``."""
    name = path.name
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def listing(files: list[Path]) -> str:
    shown = ", ".join(str(p) for p in files[:_MAX_LISTED])
    more = len(files) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def source_files(
    where: str | Path, *, role: str, format: str = "auto", except_column: str | None = None
) -> list[Path]:
    """The files a path, glob or directory stands for, each checked readable.

    A directory is walked recursively; names starting with ``.`` or ``_`` (``_SUCCESS``,
    ``.crc`` files) are skipped, any other file must be of the source's format. A
    zero-byte or unreadable file is a ``DataValidationError`` naming it, as is a set of
    files whose schemas differ (``except_column`` is left out of the comparison: the
    symbol column of per-symbol files, which only some files may carry).
    """
    return resolve_files(where, role=role, format=format, except_column=except_column)[0]


def resolve_files(
    where: str | Path,
    *,
    role: str,
    format: str = "auto",
    except_column: str | None = None,
    compare: bool = True,
) -> tuple[list[Path], str]:
    """:func:`source_files` and the format they are read in (``parquet`` or ``csv``).

    ``compare=False`` lists the files and decides the format without reading them.
    """
    files, is_dir = _list(where, role)
    fmt = _decide_format(files, str(where), role, format, is_dir=is_dir)
    if not compare:
        return files, fmt
    if fmt == "parquet":
        schemas = [parquet_schema(p, role) for p in files]
    else:
        schemas = [pl.Schema(dict.fromkeys(csv_header(p, role), pl.String())) for p in files]
    _check_schemas(files, schemas, str(where), role, except_column, fmt)
    return files, fmt


def _list(where: str | Path, role: str) -> tuple[list[Path], bool]:
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
                f"rule missing_source: directory {text} ({role} data) holds no data files"
            )
        return files, True
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise DataValidationError(
                f"rule missing_source: no file matches {text!r} ({role} data)"
            )
        return files, False
    if path.is_file():
        return [path], False
    raise DataValidationError(f"rule missing_source: {role} file {text} does not exist")


def _decide_format(files: list[Path], text: str, role: str, given: str, *, is_dir: bool) -> str:
    """The one format of ``files``: ``given``, or each file's extension (``auto``)."""
    key = config_key(role)
    if given != "auto":
        # a file or glob is read as told (its content is checked); a directory by extension
        wrong = [p for p in files if file_format(p) != given] if is_dir else []
        if wrong:
            raise DataValidationError(
                f"rule unreadable_source: directory {text} ({role} data) holds "
                f"{len(wrong)} file(s) that are not {given} ({listing(wrong)}) but {key}.format "
                f"is {given}; move them out, or point the path at a glob such as "
                f"{text.rstrip('/')}/**/*{'.csv' if given == 'csv' else '.parquet'}"
            )
        return given
    by_format: dict[str, list[Path]] = {}
    for p in files:
        fmt = file_format(p) or ("unknown" if is_dir else _sniff(p, role))
        by_format.setdefault(fmt, []).append(p)
    if "unknown" in by_format:
        others = by_format["unknown"]
        raise DataValidationError(
            f"rule unreadable_source: directory {text} ({role} data) holds {len(others)} "
            f"file(s) that are neither parquet nor CSV ({listing(others)}); move them out, or "
            f"point the path at a glob such as {text}/**/*.parquet"
        )
    if len(by_format) > 1:
        pq_file, csv_file = by_format["parquet"][0], by_format["csv"][0]
        raise DataValidationError(
            f"rule mixed_formats: {text} ({role} data) mixes parquet and CSV files, e.g. "
            f"{pq_file} and {csv_file}; keep one format per source (convert the CSV files, or "
            f"point the path at a glob such as {text.rstrip('/')}/**/*.csv)"
        )
    return next(iter(by_format))


def _head(path: Path, n: int = 512) -> bytes:
    with path.open("rb") as handle:
        return handle.read(n)


def _sniff(path: Path, role: str) -> str:
    """The format of a file whose name does not tell it: parquet by its magic, else an error."""
    head = _head(path)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    hint = _looks_like(head)
    what = f"it {hint}: set {config_key(role)}.format: csv" if hint else "set format:"
    raise DataValidationError(
        f"rule unreadable_source: cannot tell the format of {role} file {path} from its name "
        f"(expected .parquet or .csv); {what} (parquet or csv), or rename it"
    )


def _looks_like(head: bytes) -> str | None:
    """``"looks like CSV"`` when the bytes read as a text header with separators."""
    if head.startswith(_GZIP_MAGIC):
        return "is gzip-compressed (a .csv.gz?)"
    try:
        first = head.decode("utf-8").splitlines()[0] if head else ""
    except (UnicodeDecodeError, IndexError):
        return None
    return "looks like CSV" if ("," in first or ";" in first or "\t" in first) else None


def parquet_schema(path: Path, role: str) -> pl.Schema:
    """The parquet schema of one file (its footer only), or an error naming the file."""
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is empty (0 bytes); "
            "remove it or write it again"
        )
    try:
        return pl.Schema(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:
        hint = _looks_like(_head(path))
        fix = (
            f"it {hint}: set {config_key(role)}.format: csv (or name it .csv, format auto)"
            if hint
            else "remove it or write it again"
        )
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is not a readable parquet file "
            f"({exc}); {fix}"
        ) from exc


def csv_header(path: Path, role: str) -> list[str]:
    """The column names of a CSV file's header, or an error naming the file."""
    if path.stat().st_size == 0:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is empty (0 bytes); "
            "remove it or write it again"
        )
    if _head(path, 4) == _PARQUET_MAGIC:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is a parquet file, not CSV: set "
            f"{config_key(role)}.format: parquet (or auto, and name it .parquet)"
        )
    try:
        return pl.scan_csv(path, infer_schema=False).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(
            f"rule unreadable_source: {role} file {path} is not a readable CSV file ({exc}); "
            "remove it or write it again"
        ) from exc


def _check_schemas(
    files: list[Path],
    schemas: list[pl.Schema],
    name: str,
    role: str,
    except_column: str | None,
    fmt: str,
) -> None:
    """Every file with the first file's schema, else one error naming each difference."""

    def comparable(schema: pl.Schema) -> pl.Schema:
        return pl.Schema({c: t for c, t in schema.items() if c != except_column})

    first = comparable(schemas[0])
    lines: list[str] = []
    for path, schema in zip(files[1:], schemas[1:], strict=True):
        lines.extend(f"    {path}: {d}" for d in schema_differences(comparable(schema), first))
    if not lines:
        return
    shown = lines[: _MAX_LISTED * 2]
    if len(lines) > len(shown):
        shown.append(f"    ... and {len(lines) - len(shown)} more difference(s)")
    body = "\n".join(shown)
    fix = (
        "write every file with the same header (the columns may come in any order)"
        if fmt == "csv"
        else "write every file with the same columns and types (timestamps all "
        "timezone-aware, or all naive with timezone: set; symbol all String or all Categorical)"
    )
    raise DataValidationError(
        f"rule schema_mismatch: the files of {name} ({role} data) do not share one schema; "
        f"compared with {files[0]}:\n{body}\n    fix: {fix}"
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


# --------------------------------------------------------------------------- per-symbol files


def symbols_by_file(files: list[Path], role: str) -> dict[Path, str]:
    """Each per-symbol file's symbol (its name without the extension); one file per symbol."""
    symbols: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    for path in files:
        symbol = stem(path)
        if symbol in seen:
            raise DataValidationError(
                f"rule duplicate_symbol_file: {role} files {seen[symbol]} and {path} both hold "
                f"symbol {symbol!r} (symbol_from: filename takes the symbol from the file name); "
                "keep one file per symbol"
            )
        seen[symbol] = path
        symbols[path] = symbol
    return symbols


def check_symbol_columns(
    files: list[Path], symbols: dict[Path, str], fmt: str, column: str, role: str
) -> None:
    """A per-symbol file may carry the symbol column only if every value is its name."""
    for path in files:
        if fmt == "csv":
            if column not in csv_header(path, role):
                continue
            lf = pl.scan_csv(path, infer_schema=False, schema_overrides={column: pl.String})
        else:
            if column not in pl.read_parquet_schema(path):
                continue
            lf = pl.scan_parquet(path)
        name = symbols[path]
        sym = pl.col(column).cast(pl.String)
        bad = (
            lf.with_row_index(ROW)
            .select(ROW, sym.alias(column))
            .filter(sym.ne_missing(name))
            .collect()
        )
        if bad.height == 0:
            continue
        row = int(bad[ROW][0])
        line = f" (line {row + 2})" if fmt == "csv" else ""
        raise DataValidationError(
            f"rule symbol_conflict: {role} file {path} has a {column!r} column that disagrees "
            f"with its name ({config_key(role)}.symbol_from: filename gives {name!r}): row "
            f"{row + 1}{line} holds {bad[column][0]!r}, {bad.height} row(s) in all; fix: remove "
            "the column from the file, rename the file, or set symbol_from: column"
        )


def detect_symbol_from(
    where: str | Path, *, role: str = "asset", format: str = "auto", symbol_column: str = "symbol"
) -> str:
    """``filename`` when the first file of a directory or glob has no symbol column.

    Only ``ml4t validate PATH`` guesses (a config says ``symbol_from``); a hive key named
    like the symbol column counts as the column.
    """
    text = str(where)
    if not (Path(text).is_dir() or any(ch in text for ch in "*?[")):
        return "column"
    files, fmt = resolve_files(where, role=role, format=format, compare=False)
    first = files[0]
    names = csv_header(first, role) if fmt == "csv" else parquet_schema(first, role).names()
    hive = f"{symbol_column}=" in first.as_posix()
    return "column" if symbol_column in names or hive else "filename"
