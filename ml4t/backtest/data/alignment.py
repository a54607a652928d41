"""Point-in-time alignment: as-of joins on availability time, and a look-ahead check.

A value becomes usable when it is *available*, which may be later than its label: a
daily prediction labelled with the session's close but published the next morning
(``available_lag="16h"``), or a VIX close known at 16:15 (an ``available_at`` column).
:func:`asof_join` gives each left row the last right row (per symbol) whose availability
is at or before the left row's time, never after; ``tolerance`` leaves values older than
that null instead of stale. :func:`align` builds asset data from separate price,
indicator and signal frames; :func:`check_lookahead` proves no value was used before it
was available.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import polars as pl

from ml4t.backtest._time import parse_duration
from ml4t.backtest.data.validation import Violation, format_examples, raise_violations
from ml4t.backtest.errors import DataValidationError

__all__ = ["AsofSource", "align", "asof_join", "check_lookahead", "to_ns_expr"]

F = TypeVar("F", pl.DataFrame, pl.LazyFrame)

_KEY = "__ml4t_key"
_AVAIL = "__ml4t_available"
_ROW = "__ml4t_row"

Duration = str | int | timedelta


def to_ns_expr(col: str, dtype: pl.DataType, *, timezone: str | None = None) -> pl.Expr:
    """``col`` as Int64 UTC nanoseconds; naive times need ``timezone`` (never guessed)."""
    if dtype.is_integer():
        return pl.col(col).cast(pl.Int64)
    if not isinstance(dtype, pl.Datetime | pl.Date):
        raise DataValidationError(
            f"rule wrong_type: column {col!r} has type {dtype}, expected a Datetime, a Date "
            "or Int64 nanoseconds"
        )
    expr = pl.col(col).cast(pl.Datetime("ns")) if isinstance(dtype, pl.Date) else pl.col(col)
    if isinstance(dtype, pl.Date) or dtype.time_zone is None:
        if timezone is None:
            raise DataValidationError(
                f"rule naive_timestamp: column {col!r} has no timezone ({dtype}); pass "
                "timezone= to say which zone it is in"
            )
        expr = expr.dt.replace_time_zone(timezone, ambiguous="raise", non_existent="raise")
    return expr.dt.cast_time_unit("ns").dt.convert_time_zone("UTC").to_physical()


@dataclass(frozen=True, slots=True)
class AsofSource:
    """A frame to join as of availability time, with its columns and timing."""

    frame: pl.DataFrame | pl.LazyFrame
    columns: Sequence[str] | None = None
    available_lag: Duration = 0
    available_at: str | None = None
    tolerance: Duration | None = None
    stamp: str | None = None
    timezone: str | None = field(default=None)


def asof_join(
    left: F,
    right: pl.DataFrame | pl.LazyFrame,
    *,
    on: str = "timestamp",
    by: str | None = "symbol",
    columns: Sequence[str] | None = None,
    available_lag: Duration = 0,
    available_at: str | None = None,
    tolerance: Duration | None = None,
    stamp: str | None = None,
    timezone: str | None = None,
) -> F:
    """Add ``right``'s ``columns`` to ``left`` as of each left row's time (backward).

    Availability of a right row is ``right[available_at]`` if given, else
    ``right[on] + available_lag``. A left row at time t gets the right row (same ``by``
    value) with the greatest availability <= t; among rows available at the same time
    the last one wins (sorted by label). With ``tolerance``, a value older than that at
    t is null. ``stamp`` names an extra column holding the availability (UTC ns) of the
    value used, for :func:`check_lookahead`. Left rows keep their order.
    """
    lazy_left = left.lazy()
    rlf = right.lazy()
    lschema, rschema = lazy_left.collect_schema(), rlf.collect_schema()
    keys = {on, *([by] if by else []), *([available_at] if available_at else [])}
    cols = list(columns) if columns is not None else [c for c in rschema.names() if c not in keys]
    lag = parse_duration(available_lag)
    avail = (
        to_ns_expr(available_at, rschema[available_at], timezone=timezone)
        if available_at
        else to_ns_expr(on, rschema[on], timezone=timezone) + lag
    )
    rsorted = (
        rlf.select(
            *([pl.col(by)] if by else []),
            avail.alias(_AVAIL),
            to_ns_expr(on, rschema[on], timezone=timezone).alias("__label"),
            *cols,
        )
        .drop_nulls(_AVAIL)
        .sort([_AVAIL, "__label"], maintain_order=True)
        .unique(subset=[*([by] if by else []), _AVAIL], keep="last", maintain_order=True)
        .drop("__label")
    )
    if stamp:
        rsorted = rsorted.with_columns(pl.col(_AVAIL).alias(stamp))
    lkeyed = (
        lazy_left.with_row_index(_ROW)
        .with_columns(to_ns_expr(on, lschema[on], timezone=timezone).alias(_KEY))
        .sort(_KEY, maintain_order=True)
    )
    if by and lschema[by] != rschema[by]:
        rsorted = rsorted.with_columns(pl.col(by).cast(pl.String).cast(lschema[by]))
    joined = lkeyed.join_asof(
        rsorted,
        left_on=_KEY,
        right_on=_AVAIL,
        by=by,
        strategy="backward",
        tolerance=parse_duration(tolerance) if tolerance is not None else None,
        check_sortedness=False,
    )
    out = joined.sort(_ROW).drop(_ROW, _KEY, _AVAIL, strict=False)
    return out.collect() if isinstance(left, pl.DataFrame) else out


def align(prices: F, *sources: AsofSource, on: str = "timestamp", by: str = "symbol") -> F:
    """Asset data from ``prices`` plus each source joined as of availability, per symbol.

    Use it for indicators (``available_lag=0``: a value labelled t is usable at t) and
    for slower signals (``available_lag="16h"`` for a prediction published the morning
    after the close it is labelled with).
    """
    out = prices
    for src in sources:
        out = asof_join(
            out,
            src.frame,
            on=on,
            by=by,
            columns=src.columns,
            available_lag=src.available_lag,
            available_at=src.available_at,
            tolerance=src.tolerance,
            stamp=src.stamp,
            timezone=src.timezone,
        )
    return out


def check_lookahead(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    available: str | Sequence[str],
    on: str = "timestamp",
    by: str | None = "symbol",
    name: str = "<frame>",
) -> None:
    """Raise a rule ``lookahead`` error for any row using a value before it was available.

    ``available`` names column(s) holding availability times (UTC ns or Datetime), e.g.
    the ``stamp`` columns :func:`asof_join` adds.
    """
    lf = frame.lazy()
    schema = lf.collect_schema()
    t = to_ns_expr(on, schema[on])
    violations = []
    for col in [available] if isinstance(available, str) else list(available):
        used_early = to_ns_expr(col, schema[col]) > t
        n = lf.select(used_early.fill_null(False).sum()).collect().item()
        if not n:
            continue
        show = [pl.col(c) for c in ([by] if by else [])]
        bad = (
            lf.filter(used_early.fill_null(False))
            .select(t.alias("__ts"), *show, pl.col(col))
            .head(5)
            .collect()
        )
        violations.append(
            Violation(
                rule="lookahead",
                source=name,
                column=col,
                count=int(n),
                detail=f"use a value before its availability time ({col} > {on})",
                examples=format_examples(bad, [col]),
            )
        )
    raise_violations(violations)
