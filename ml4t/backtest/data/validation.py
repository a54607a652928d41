"""Validation rules for asset, signal and context data, and the error they raise.

Every rule has a name (``high_below_low``, ``duplicate``...). Schema rules are checked on
the scan's schema; row rules run chunk by chunk over the whole data (never a sample),
so validation keeps memory flat. All failures are gathered and raised as one
:class:`DataRuleViolation` (a :class:`~ml4t.backtest.errors.DataValidationError`) whose
message names, for each broken rule, the source (and the file of the first offending row
when it can be found), the column, the count of offending rows and the first rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import msgspec
import numpy as np
import polars as pl

from ml4t.backtest._time import from_ns
from ml4t.backtest.data._repair import OHLCV, PRICES, order_counts, order_problems
from ml4t.backtest.data._source import TS, Source
from ml4t.backtest.errors import DataValidationError

__all__ = [
    "MAX_EXAMPLES",
    "DataRuleViolation",
    "RowChecker",
    "ValidationReport",
    "Violation",
    "check_schema",
    "format_examples",
    "out_of_range_times",
    "raise_violations",
]

MAX_EXAMPLES = 5

HINTS = {
    "missing_column": "add the column to the data, or remove it from the config",
    "wrong_type": "cast the column in the source data to the expected type",
    "naive_timestamp": "store timezone-aware timestamps, or set timezone: (e.g. America/New_York)",
    "empty": "check the path and the start/end range",
    "null_key": "every row needs a timestamp and a symbol",
    "null_ohlcv": "fill or drop the rows, or add 'drop_null_ohlcv' to repair:",
    "duplicate": "keep one row per key, or add 'drop_duplicates' to repair:",
    "unsorted": "sort the data by (timestamp, symbol) (per-symbol files: each by timestamp), "
    "or add 'sort' to repair:",
    "high_below_low": "correct the bars, or add 'clip_ohlc' to repair:",
    "outside_range": "correct the bars, or add 'clip_ohlc' to repair:",
    "non_finite": "correct the bars, or add 'drop_non_finite' to repair:",
    "negative": "correct the bars, or add 'drop_negative' to repair:",
    "zero_price": "a price must be positive: correct the bars, or add 'drop_zero_price' to repair:",
    "symbol_without_rows": "remove the symbol from asset.symbols, or check the time range",
    "outside_session": "set outside_session: drop (or keep), or fix the timestamps",
    "timestamp_out_of_range": "correct or drop the rows (a far-future placeholder is no time)",
}


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken rule: where, how many rows, and the first offending rows."""

    rule: str
    source: str
    column: str
    count: int
    detail: str
    examples: list[str] = msgspec.field(default_factory=list)
    file: str | None = None

    def render(self) -> str:
        where = self.file or self.source
        rows = "".join(f"\n      {row}" for row in self.examples)
        first = f"; first {len(self.examples)}:" if self.examples else ""
        hint = HINTS.get(self.rule)
        fix = f"\n    fix: {hint}" if hint else ""
        return (
            f"  [{self.rule}] column {self.column!r} in {where}: {self.count} row(s) "
            f"{self.detail}{first}{rows}{fix}"
        )


class DataRuleViolation(DataValidationError):
    """Data broke one or more validation rules; ``violations`` lists them all."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        rules = sorted({v.rule for v in self.violations})
        head = (
            f"data validation failed: {len(self.violations)} problem(s), rule(s) "
            f"{', '.join(rules)} (timestamps are known-at times, UTC)"
        )
        super().__init__("\n".join([head, *(v.render() for v in self.violations)]))


def raise_violations(violations: Sequence[Violation]) -> None:
    if violations:
        raise DataRuleViolation(violations)


class ValidationReport(msgspec.Struct, kw_only=True):
    """What validation saw and what repairs did; pass it to a feed to skip re-validating."""

    rows: int = 0
    timestamps: int = 0
    symbols: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    chunks: int = 0
    repairs: dict[str, int] = msgspec.field(default_factory=dict)
    dropped_outside_session: int = 0


# --------------------------------------------------------------------------- formatting


def format_examples(df: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """``timestamp=... symbol=... col=value`` lines for the first rows of ``df``."""
    lines: list[str] = []
    keep = [c for c in columns if c in df.columns and c not in (TS, "symbol")]
    for row in df.head(MAX_EXAMPLES).iter_rows(named=True):
        parts = []
        if TS in row:
            ts = row[TS]
            parts.append(f"timestamp={from_ns(ts).isoformat() if ts is not None else None}")
        if "symbol" in row:
            parts.append(f"symbol={row['symbol']}")
        parts.extend(f"{c}={row[c]!r}" for c in keep)
        lines.append(" ".join(parts))
    return lines


# --------------------------------------------------------------------------- schema rules

_SYMBOL_TYPES = (pl.String, pl.Categorical, pl.Enum)


def _is_number(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def check_schema(
    source: Source,
    *,
    numeric: Sequence[str],
    flags: Sequence[str] = (),
    symbol: str | None = None,
    extra_times: Sequence[str] = (),
) -> list[Violation]:
    """Missing columns, wrong types and naive timestamps of one source.

    ``numeric`` columns must be numbers; ``flags`` numbers or booleans; the timestamp
    column (and ``extra_times``) Datetime or Date, with a timezone unless the source
    says which zone to assume.
    """
    schema = source.schema
    out: list[Violation] = []
    wanted = [source.ts_column, *extra_times, *([symbol] if symbol else []), *numeric, *flags]
    for col in wanted:
        if col not in schema:
            have = ", ".join(schema.names())
            hint = ""
            if col == symbol and source.rescan is not None:
                hint = "; one file per symbol? set symbol_from: filename"
            out.append(
                _schema_violation(
                    "missing_column", source, col, f"(no such column; the data has: {have}{hint})"
                )
            )
    if out:
        return out
    for col in (source.ts_column, *extra_times):
        out.extend(_check_time_column(source, col))
    if symbol and not isinstance(schema[symbol], _SYMBOL_TYPES):
        out.append(_wrong_type(source, symbol, "String, Categorical or Enum"))
    out.extend(_wrong_type(source, c, "a number") for c in numeric if not _is_number(schema[c]))
    out.extend(
        _wrong_type(source, c, "a number or Boolean")
        for c in flags
        if not (_is_number(schema[c]) or isinstance(schema[c], pl.Boolean))
    )
    return out


def _check_time_column(source: Source, col: str) -> list[Violation]:
    dtype = source.schema[col]
    if not isinstance(dtype, pl.Datetime | pl.Date):
        return [_wrong_type(source, col, "Datetime (timezone-aware) or Date")]
    naive = isinstance(dtype, pl.Date) or dtype.time_zone is None
    if naive and source.tz is None:
        return [
            _schema_violation(
                "naive_timestamp",
                source,
                col,
                f"have no timezone (dtype {dtype}); ml4t never guesses one",
                sample=[col],
            )
        ]
    return []


def _wrong_type(source: Source, col: str, expected: str) -> Violation:
    return _schema_violation(
        "wrong_type",
        source,
        col,
        f"have type {source.schema[col]}, expected {expected}",
        sample=[col],
    )


def _schema_violation(
    rule: str, source: Source, col: str, detail: str, *, sample: Sequence[str] = ()
) -> Violation:
    n = source.collect(source.frame.select(pl.len())).item()
    examples: list[str] = []
    if sample:
        head = source.collect(source.frame.select(sample).head(3))
        examples = [
            " ".join(f"{k}={v!r}" for k, v in row.items()) for row in head.iter_rows(named=True)
        ]
    return Violation(
        rule=rule, source=source.name, column=col, count=n, detail=detail, examples=examples
    )


_DAY_NS = 86_400 * 10**9
_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_TIME_LIMITS = "1677-09-22 to 2262-04-10 UTC"


def out_of_range_times(source: Source, columns: Sequence[str]) -> list[Violation]:
    """Times that UTC nanoseconds (int64) cannot hold, e.g. a year-2300 placeholder.

    Checked on the raw column's integer value, with a day's margin at each end so that a
    time zone or a bar shift cannot overflow either.
    """
    out = []
    for col in columns:
        dtype = source.schema[col]
        if isinstance(dtype, pl.Datetime):
            per = _PER_UNIT[dtype.time_unit or "us"]
        elif isinstance(dtype, pl.Date):
            per = _DAY_NS
        else:
            continue
        lo, hi = -(2**63 - _DAY_NS) // per, (2**63 - _DAY_NS) // per
        raw = pl.col(col).to_physical()
        bad = source.frame.filter((raw < lo) | (raw > hi))
        n = source.collect(bad.select(pl.len())).item()
        if not n:
            continue
        shown = [c for c in (source.symbol_column, col) if c]
        rows = source.collect(bad.select(shown).head(MAX_EXAMPLES))
        out.append(
            Violation(
                rule="timestamp_out_of_range",
                source=source.name,
                column=col,
                count=n,
                detail=f"lie outside the times ml4t can represent ({_TIME_LIMITS})",
                examples=[
                    " ".join(f"{k}={v}" for k, v in row.items())
                    for row in rows.iter_rows(named=True)
                ],
            )
        )
    return out


# --------------------------------------------------------------------------- row rules


def _row_rules() -> list[tuple[str, str, pl.Expr, str, tuple[str, ...]]]:
    """(rule, column, offending-row mask, detail, columns to show) of the row rules."""
    rules: list[tuple[str, str, pl.Expr, str, tuple[str, ...]]] = []
    for c in OHLCV:
        rules.append(
            ("null_ohlcv", c, pl.col(c).is_null() | pl.col(c).is_nan(), "are null or NaN", OHLCV)
        )
    for c in OHLCV:
        rules.append(("non_finite", c, pl.col(c).is_infinite(), "are inf or -inf", OHLCV))
    for c in OHLCV:
        rules.append(("negative", c, pl.col(c) < 0, "are negative", (c,)))
    for c in PRICES:
        rules.append(("zero_price", c, pl.col(c) == 0, "are zero", (c,)))
    rules.append(
        ("high_below_low", "high", pl.col("high") < pl.col("low"), "have high < low", PRICES)
    )
    for c in ("open", "close"):
        outside = (pl.col(c) < pl.col("low")) | (pl.col(c) > pl.col("high"))
        rules.append(("outside_range", c, outside, "lie outside [low, high]", PRICES))
    return rules


class RowChecker:
    """Accumulates row-rule violations of an asset source over its chunks."""

    def __init__(self, source: Source, *, check_sessions: bool = False) -> None:
        self.source = source
        self.check_sessions = check_sessions
        self._rules = _row_rules()
        self._counts: dict[tuple[str, str], int] = {}
        self._examples: dict[tuple[str, str], list[str]] = {}
        self._details: dict[tuple[str, str], str] = {}
        self._first: dict[tuple[str, str], tuple[int, str]] = {}

    def check(
        self,
        df: pl.DataFrame,
        outside_session: np.ndarray | None = None,
        disorder: np.ndarray | None = None,
    ) -> None:
        """Check one chunk (normalised, already repaired).

        ``disorder`` marks rows of a per-symbol layout that were out of time order in
        their file (the chunk itself was merged into order: see ``merge_files``).
        """
        if df.height == 0:
            return
        masks = [
            mask.fill_null(False).sum().alias(str(i))
            for i, (*_, mask, _, _) in enumerate(self._rules)
        ]
        # the adjacent order tests ride in the same pass; masks are made only if they fail
        *sums, unsorted_n, repeated_n = df.select(*masks, *order_counts(df.schema["symbol"])).row(0)
        for (rule, col, mask, detail, show), n in zip(self._rules, sums, strict=True):
            if n:
                rows = partial(df.filter, mask.fill_null(False))
                self._add(rule, col, detail, int(n), rows, show)
        if unsorted_n or repeated_n:
            unsorted, dup = order_problems(df)
            self._add_mask("unsorted", TS, "are out of (timestamp, symbol) order", df, unsorted, ())
            self._add_mask(
                "duplicate", "symbol", "repeat a (timestamp, symbol) pair", df, dup, OHLCV
            )
        if disorder is not None:
            self._add_mask(
                "unsorted", TS, "are out of time order within their file", df, disorder, ()
            )
        if outside_session is not None:
            self._add_mask(
                "outside_session",
                TS,
                "lie outside the calendar's sessions",
                df,
                outside_session,
                (),
            )

    def _add_mask(
        self,
        rule: str,
        col: str,
        detail: str,
        df: pl.DataFrame,
        mask: np.ndarray,
        show: Sequence[str],
    ) -> None:
        n = int(mask.sum())
        if n:
            self._add(rule, col, detail, n, lambda: df.filter(pl.Series(mask)), show)

    def _add(
        self,
        rule: str,
        col: str,
        detail: str,
        n: int,
        rows: Callable[[], pl.DataFrame],
        show: Sequence[str],
    ) -> None:
        key = (rule, col)
        self._counts[key] = self._counts.get(key, 0) + n
        self._details[key] = detail
        examples = self._examples.setdefault(key, [])
        if len(examples) < MAX_EXAMPLES:
            bad = rows().head(MAX_EXAMPLES - len(examples))
            if key not in self._first and bad.height:
                self._first[key] = (int(bad[TS][0]), str(bad["symbol"][0]))
            examples.extend(format_examples(bad, show))

    def violations(self) -> list[Violation]:
        out = []
        for key, n in self._counts.items():
            rule, col = key
            first = self._first.get(key)
            column = "timestamp" if col == TS else col
            out.append(
                Violation(
                    rule=rule,
                    source=self.source.name,
                    column=column,
                    count=n,
                    detail=self._details[key],
                    examples=self._examples[key],
                    file=locate_file(self.source, *first, every=rule == "duplicate")
                    if first
                    else None,
                )
            )
        return out


def locate_file(source: Source, ts_ns: int, symbol: str, *, every: bool = False) -> str | None:
    """The file holding the row (``ts_ns``, ``symbol``), if the source is made of files.

    With ``every``, all the files holding that row, joined by "and" (a duplicate that
    comes from two overlapping files names both).
    """
    if source.rescan is None:
        return None
    assert source.symbol_column is not None  # every validated source has one
    try:
        found = (
            source.rescan("__ml4t_file")
            .filter(
                source.ts_expr() == ts_ns, pl.col(source.symbol_column).cast(pl.String) == symbol
            )
            .select(pl.col("__ml4t_file").unique(maintain_order=True))
            .collect()
        )
    except pl.exceptions.PolarsError as exc:  # the message still names the source
        return f"{source.name} (file lookup failed: {exc})"
    files = [str(f) for f in found["__ml4t_file"]]
    if not files:
        return None
    return " and ".join(files) if every else files[0]


def session_mask(ts: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """True where a known-at time lies outside every session (open, close]."""
    i = np.searchsorted(closes, ts, side="left")
    inside = np.zeros(len(ts), dtype=bool)
    ok = i < len(closes)
    inside[ok] = opens[i[ok]] < ts[ok]
    return ~inside
