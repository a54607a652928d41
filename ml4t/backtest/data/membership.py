"""The point-in-time universe: which symbols a strategy may see, and from when.

The file (parquet or CSV, by extension) has one row per membership interval:

=========  ==========================================================
``symbol`` a symbol of the market data (required)
``start``  the interval's first instant: a date or a timestamp (required)
``end``    the instant it ends, exclusive; empty = still a member
=========  ==========================================================

An interval ``[start, end)`` uses the time rule of the corporate-action file (see
:mod:`ml4t.backtest.data.actions`: a date is local midnight in the file's zone): the
symbol is a member from the first bar known after ``start`` up to, not including, the
first bar known after ``end``. For a bar known at ``t`` that is ``start < t <= end``:
with dates, ``start: 2023-03-01, end: 2023-04-03`` covers the daily bars of March 1st
to April 2nd (whether known at the close or at 00:00 of the next day). A symbol may have
several intervals (it left and was added again); they may neither overlap nor touch (two
touching intervals are one: merge them). A symbol of the market data that the file never
names is never a member.

:func:`load_universe` validates every rule in one pass (one
:class:`~ml4t.backtest.data._tabular.TableRuleViolation` listing ``file: row N, column
C: what; fix``) and returns a :class:`Membership`: the members at the data's first bar
(``initial``) and every later change, grouped by instant (``changes``), which the feed
publishes as ``UniverseChanged`` before the first bar after each instant.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection

import msgspec
import polars as pl

from ml4t.backtest.data._tabular import (
    Problem,
    TableRuleViolation,
    instants,
    new_problems,
    read_table,
    texts,
)
from ml4t.backtest.data._timeline import Due
from ml4t.backtest.data.config import UniverseSourceConfig

__all__ = ["Membership", "MembershipChange", "load_universe", "parse_universe"]

KIND = "universe"
COLUMNS = ("symbol", "start", "end")


class MembershipChange(msgspec.Struct, frozen=True, kw_only=True):
    """From the first bar known after ``effective_ns`` on, ``added`` are members and
    ``removed`` are not (each list sorted; a symbol is never in both)."""

    effective_ns: int
    added: list[str] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)


def _effective(change: MembershipChange) -> int:
    return change.effective_ns


class Membership(msgspec.Struct, frozen=True, kw_only=True):
    """Members at ``start_ns`` (the data's first bar) and the changes after it, sorted."""

    start_ns: int
    initial: list[str] = msgspec.field(default_factory=list)
    changes: tuple[MembershipChange, ...] = ()
    source: str = ""

    def cursor(self) -> Due[MembershipChange]:
        """``cursor.due(t)``: the changes with ``effective_ns < t`` not returned before
        (one comparison when nothing is due; call it once per timestamp)."""
        return Due(self.changes, time=_effective)

    def members_at(self, t: int) -> list[str]:
        """The sorted members for a bar known at ``t >= start_ns``: ``initial`` replayed
        with every change before ``t`` (O(changes); for checks, not the hot loop)."""
        members = set(self.initial)
        for change in self.changes[: bisect_left(self.changes, t, key=_effective)]:
            members.difference_update(change.removed)
            members.update(change.added)
        return sorted(members)


def load_universe(
    config: UniverseSourceConfig,
    *,
    symbols: Collection[str] | None,
    timezone: str,
    start_ns: int,
) -> Membership:
    """Read and validate ``config.path``. ``timezone`` is the zone of its dates when the
    config sets none (the asset data's, else ``"UTC"``); ``symbols`` the market data's
    symbols (None skips that rule); ``start_ns`` the data's first bar."""
    frame = read_table(config.path, kind=KIND)
    return parse_universe(
        frame,
        symbols=symbols,
        timezone=config.timezone or timezone,
        start_ns=start_ns,
        name=config.path,
    )


def parse_universe(
    frame: pl.DataFrame,
    *,
    symbols: Collection[str] | None,
    timezone: str,
    start_ns: int,
    name: str = "<universe frame>",
) -> Membership:
    """Validate a frame shaped like the file into a :class:`Membership`."""
    problems = [
        Problem(
            row=None,
            column=c,
            what=f"required column is missing (columns: {', '.join(frame.columns) or 'none'})",
            fix="add it (an empty end means still a member)",
        )
        for c in COLUMNS
        if c not in frame.columns
    ]
    problems += [
        Problem(
            row=None,
            column=c,
            what="is not a universe column",
            fix="rename or drop it (the columns are symbol, start, end)",
        )
        for c in frame.columns
        if c not in COLUMNS
    ]
    if any(p.column in COLUMNS for p in problems):
        raise TableRuleViolation(name, KIND, problems, COLUMNS)
    p = pl.DataFrame(
        {
            "row": pl.int_range(1, frame.height + 1, eager=True),
            "symbol": texts(frame, "symbol", problems, required=True),
            "start": instants(frame, "start", timezone, problems, required=True),
            "end": instants(frame, "end", timezone, problems, required=False),
            "start_text": frame.get_column("start").cast(pl.String),
            "end_text": frame.get_column("end").cast(pl.String),
        }
    )
    problems += new_problems(_interval_problems(p, symbols), problems)
    if problems:
        raise TableRuleViolation(name, KIND, problems, COLUMNS)
    return _membership(p, start_ns, name)


def _interval_problems(p: pl.DataFrame, symbols: Collection[str] | None) -> list[Problem]:
    out: list[Problem] = []
    if symbols is not None:
        known = set(symbols)
        out += [
            Problem(
                row=r,
                column="symbol",
                what=f"{s!r} is not a symbol of the market data",
                fix=f"correct the symbol (the market data has {len(known)}), or remove the row",
            )
            for r, s in p.select("row", "symbol").iter_rows()
            if s is not None and s not in known
        ]
    sound = p.filter(pl.col("symbol").is_not_null() & pl.col("start").is_not_null())
    backwards = sound.filter(pl.col("end") <= pl.col("start"))
    out += [
        Problem(
            row=r["row"],
            column="end",
            what=f"{r['end_text']} is not after the start {r['start_text']}",
            fix="give an end after the start, or leave it empty (still a member)",
        )
        for r in backwards.iter_rows(named=True)
    ]
    ordered = sound.filter(pl.col("end").is_null() | (pl.col("end") > pl.col("start")))
    return out + _overlaps(ordered.sort("symbol", "start", "row"))


def _overlaps(p: pl.DataFrame) -> list[Problem]:
    """Intervals of one symbol that overlap or touch an earlier one (``p`` sorted by
    symbol, then start). ``reach`` is the furthest end so far (None: no end)."""
    out: list[Problem] = []
    symbol: str | None = None
    reach: int | None = None
    reach_row, reach_text = 0, ""
    for r in p.iter_rows(named=True):
        if r["symbol"] == symbol:
            if reach is None or r["start"] < reach:
                ends = "has no end" if reach is None else f"ends {reach_text}"
                out.append(
                    Problem(
                        row=r["row"],
                        column="start",
                        what=f"{symbol} starts {r['start_text']} inside the interval of row "
                        f"{reach_row}, which {ends}",
                        fix="the intervals of a symbol must not overlap: correct or merge them",
                    )
                )
            elif r["start"] == reach:
                out.append(
                    Problem(
                        row=r["row"],
                        column="start",
                        what=f"{symbol} starts {r['start_text']}, where the interval of row "
                        f"{reach_row} ends",
                        fix=f"merge them: one row from row {reach_row}'s start to this row's end",
                    )
                )
            if reach is None or (r["end"] is not None and r["end"] <= reach):
                continue  # the earlier interval reaches further
        symbol, reach, reach_row, reach_text = r["symbol"], r["end"], r["row"], r["end_text"]
    return out


def _membership(p: pl.DataFrame, start_ns: int, name: str) -> Membership:
    initial: list[str] = []
    added: dict[int, list[str]] = defaultdict(list)
    removed: dict[int, list[str]] = defaultdict(list)
    for symbol, start, end in p.select("symbol", "start", "end").iter_rows():
        if start < start_ns and (end is None or start_ns <= end):
            initial.append(symbol)
        if start >= start_ns:
            added[start].append(symbol)
        if end is not None and end >= start_ns:
            removed[end].append(symbol)
    changes = tuple(
        MembershipChange(
            effective_ns=t, added=sorted(added.get(t, [])), removed=sorted(removed.get(t, []))
        )
        for t in sorted({*added, *removed})
    )
    return Membership(start_ns=start_ns, initial=sorted(initial), changes=changes, source=name)
