"""Corporate actions: the file of splits, dividends, delistings and symbol changes.

One row per action, in parquet or CSV (by extension):

=============  ==============================================================
``symbol``     the symbol as in the market data (required)
``ex_date``    when the action takes effect: a date, or a timestamp (required)
``action``     ``split``, ``dividend``, ``delisting`` or ``symbol_change`` (required)
``ratio``      split: new shares per old share (4.0 for 4:1, 0.1 for 1:10)
``amount``     dividend: cash per share
``pay_date``   dividend: when the cash arrives (empty: on the ex date)
``price``      delisting: cash paid per share (0: worthless; empty: the last close)
``new_symbol`` symbol_change: the symbol from the ex date on
=============  ==============================================================

Only these columns are allowed, and a column an action does not use must be empty on
its rows (``ratio`` on a dividend is a mistake, not a no-op).

**Time rule.** Bars are stamped with the time they are known (DESIGN.md section 2). A
*date* ``d`` means "before the first bar known after 00:00 of ``d``" in the file's
zone, so ``effective_ns`` is the UTC ns of local midnight of ``d``; a *timestamp*
means "before the first bar known after it", and ``effective_ns`` is its UTC ns (a
naive one is a wall-clock time in the zone). A minute bar of day ``d`` and a daily bar
of ``d`` (known at its close, or at 00:00 of ``d + 1`` when labelled end-of-day) both
come after midnight of ``d``: a date lands before day ``d``'s first bar either way.
The feed publishes, before the batch at time ``t``, every action with
``effective_ns < t`` not published yet. ``pay_date`` follows the same rule
(``pay_ns``) and must not be before the ex date.

**Order within one instant** (:data:`APPLICATION_ORDER`): dividends, then splits,
then symbol changes, then delistings. A dividend is paid on the shares held before the
instant (a pre-split share when both share an instant), a symbol change renames what
the splits left, and a delisting comes last. Within one kind rows go by symbol.

Every broken rule is gathered in one pass and raised as one
:class:`~ml4t.backtest.data._tabular.TableRuleViolation` (a ``DataValidationError``)
listing ``file: row N, column C: what was wrong; how to fix`` (rows are 1-based data
rows). The rules are listed in docs/data.md, "Corporate actions".
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections.abc import Callable, Collection
from typing import Any

import msgspec
import polars as pl

from ml4t.backtest.data._tabular import (
    Problem,
    TableRuleViolation,
    instants,
    numbers,
    read_table,
    texts,
)
from ml4t.backtest.data._timeline import Due
from ml4t.backtest.data.config import ActionsSourceConfig

__all__ = [
    "APPLICATION_ORDER",
    "ActionKind",
    "ActionSchedule",
    "CorporateActionRow",
    "load_corporate_actions",
    "parse_corporate_actions",
]

KIND = "corporate actions"


class ActionKind(enum.StrEnum):
    SPLIT = "split"
    DIVIDEND = "dividend"
    SYMBOL_CHANGE = "symbol_change"
    DELISTING = "delisting"


APPLICATION_ORDER: tuple[ActionKind, ...] = (
    ActionKind.DIVIDEND,
    ActionKind.SPLIT,
    ActionKind.SYMBOL_CHANGE,
    ActionKind.DELISTING,
)
"""How the actions of one instant are applied (see the module docstring)."""

REQUIRED = ("symbol", "ex_date", "action")
OPTIONAL = ("ratio", "amount", "pay_date", "price", "new_symbol")
USES: dict[str, tuple[str, ...]] = {
    "split": ("ratio",),
    "dividend": ("amount", "pay_date"),
    "delisting": ("price",),
    "symbol_change": ("new_symbol",),
}
_KINDS = ", ".join(USES)
COLUMNS = (*REQUIRED, *OPTIONAL)


class CorporateActionRow(msgspec.Struct, frozen=True, kw_only=True):
    """One validated action. Fields an action does not use are None.

    ``effective_ns``: the action applies before the first bar known after it.
    ``pay_ns``: a dividend's payment time (its ex time when the file gives none).
    ``price``: a delisting's cash per share; None means the last close.
    ``source_row``: the 1-based data row of the file.
    """

    symbol: str
    action: ActionKind
    effective_ns: int
    pay_ns: int | None = None
    ratio: float | None = None
    amount: float | None = None
    price: float | None = None
    new_symbol: str | None = None
    source_row: int = 0


def _effective(row: CorporateActionRow) -> int:
    return row.effective_ns


class ActionSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """The actions of a run, sorted by ``effective_ns``, then :data:`APPLICATION_ORDER`,
    then symbol. ``cursor()`` hands them out per timestamp; ``between`` bisects."""

    rows: tuple[CorporateActionRow, ...] = ()
    source: str = ""

    def cursor(self) -> Due[CorporateActionRow]:
        """``cursor.due(t)``: the actions with ``effective_ns < t`` not returned before
        (one comparison when nothing is due; call it once per timestamp)."""
        return Due(self.rows, time=_effective)

    def between(self, lo: int, hi: int) -> tuple[CorporateActionRow, ...]:
        """The actions with ``lo <= effective_ns < hi`` (O(log n))."""
        i = bisect_left(self.rows, lo, key=_effective)
        j = bisect_left(self.rows, hi, lo=i, key=_effective)
        return self.rows[i:j]

    def frame(self) -> pl.DataFrame:
        """The rows as a DataFrame (``action`` as text), for joins and reports."""
        schema: dict[str, Any] = {
            "symbol": pl.String,
            "action": pl.String,
            "effective_ns": pl.Int64,
            "pay_ns": pl.Int64,
            "ratio": pl.Float64,
            "amount": pl.Float64,
            "price": pl.Float64,
            "new_symbol": pl.String,
            "source_row": pl.Int64,
        }
        return pl.DataFrame([msgspec.to_builtins(r) for r in self.rows], schema=schema)


def load_corporate_actions(
    config: ActionsSourceConfig, *, symbols: Collection[str] | None, timezone: str
) -> ActionSchedule:
    """Read and validate ``config.path``; ``timezone`` is the zone of its dates when the
    config sets none (pass the asset data's ``timezone``, else ``"UTC"``). ``symbols`` are
    the market data's symbols (None skips the symbol rules, for a file checked alone)."""
    frame = read_table(config.path, kind=KIND)
    return parse_corporate_actions(
        frame, symbols=symbols, timezone=config.timezone or timezone, name=config.path
    )


def parse_corporate_actions(
    frame: pl.DataFrame,
    *,
    symbols: Collection[str] | None,
    timezone: str,
    name: str = "<corporate actions frame>",
) -> ActionSchedule:
    """Validate a frame shaped like the file (see the module docstring) into a schedule."""
    problems = _column_problems(frame)
    if any(p.column in REQUIRED for p in problems):
        raise TableRuleViolation(name, KIND, problems, COLUMNS)
    for column in OPTIONAL:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None).alias(column))
    p = pl.DataFrame(
        {
            "row": pl.int_range(1, frame.height + 1, eager=True),
            "symbol": texts(frame, "symbol", problems, required=True),
            "action": texts(frame, "action", problems, required=True),
            "ex": instants(frame, "ex_date", timezone, problems, required=True),
            "pay": instants(frame, "pay_date", timezone, problems, required=False),
            "ratio": numbers(frame, "ratio", problems),
            "amount": numbers(frame, "amount", problems),
            "price": numbers(frame, "price", problems),
            "new_symbol": texts(frame, "new_symbol", problems, required=False),
            "ex_text": frame.get_column("ex_date").cast(pl.String),
            "pay_text": frame.get_column("pay_date").cast(pl.String),
        }
    )
    # a cell that did not parse is reported once, not again by the rules that need it
    unparsed = {(q.row, q.column) for q in problems}
    problems += [
        q
        for q in [*_row_problems(p, symbols), *_cross_problems(p)]
        if (q.row, q.column) not in unparsed
    ]
    if problems:
        raise TableRuleViolation(name, KIND, problems, COLUMNS)
    return ActionSchedule(rows=_sorted_rows(p), source=name)


# --------------------------------------------------------------------------- rules


def _column_problems(frame: pl.DataFrame) -> list[Problem]:
    known = COLUMNS
    out = [
        Problem(
            row=None,
            column=c,
            what=f"required column is missing (columns: {', '.join(frame.columns) or 'none'})",
            fix="add it",
        )
        for c in REQUIRED
        if c not in frame.columns
    ]
    out += [
        Problem(
            row=None,
            column=c,
            what="is not a corporate-action column",
            fix=f"rename or drop it (the columns are {', '.join(known)})",
        )
        for c in frame.columns
        if c not in known
    ]
    return out


def _flag(
    p: pl.DataFrame,
    mask: pl.Expr,
    column: str,
    what: Callable[[dict[str, Any]], str],
    fix: str,
) -> list[Problem]:
    """A problem for each row of ``p`` where ``mask`` holds (null counts as false)."""
    bad = p.filter(mask.fill_null(False))
    return [
        Problem(row=r["row"], column=column, what=what(r), fix=fix)
        for r in bad.iter_rows(named=True)
    ]


def _row_problems(p: pl.DataFrame, symbols: Collection[str] | None) -> list[Problem]:
    action = pl.col("action")
    split, dividend = action == "split", action == "dividend"
    delisting, change = action == "delisting", action == "symbol_change"
    ratio, amount, price = pl.col("ratio"), pl.col("amount"), pl.col("price")
    new = pl.col("new_symbol")
    out = _flag(
        p,
        action.is_not_null() & ~action.is_in(list(USES)),
        "action",
        lambda r: f"unknown action {r['action']!r}",
        f"use one of {_KINDS}",
    )
    out += _flag(
        p,
        split & ratio.is_null(),
        "ratio",
        lambda r: "a split needs a ratio",
        "give new shares per old share (4.0 for 4:1, 0.1 for 1:10)",
    )
    out += _flag(
        p,
        split & ~(ratio.is_finite() & (ratio > 0)),
        "ratio",
        lambda r: f"{r['ratio']} is not a finite number > 0",
        "give new shares per old share (4.0 for 4:1, 0.1 for 1:10)",
    )
    out += _flag(
        p,
        split & (ratio == 1.0),
        "ratio",
        lambda r: "a split of ratio 1 changes nothing",
        "remove the row, or correct the ratio",
    )
    out += _flag(
        p,
        dividend & amount.is_null(),
        "amount",
        lambda r: "a dividend needs an amount",
        "give the cash paid per share",
    )
    out += _flag(
        p,
        dividend & ~(amount.is_finite() & (amount > 0)),
        "amount",
        lambda r: f"{r['amount']} is not a finite amount > 0",
        "give the cash paid per share",
    )
    out += _flag(
        p,
        delisting & ~(price.is_finite() & (price >= 0)),
        "price",
        lambda r: f"{r['price']} is not a finite price >= 0",
        "give the cash paid per share (0 if worthless), or leave it empty for the last close",
    )
    out += _flag(
        p,
        change & new.is_null(),
        "new_symbol",
        lambda r: "a symbol_change needs a new_symbol",
        "give the symbol the market data uses from the ex date on",
    )
    out += _flag(
        p,
        change & (new == pl.col("symbol")),
        "new_symbol",
        lambda r: f"{r['new_symbol']!r} is the row's own symbol",
        "give the new symbol, or remove the row",
    )
    if symbols is not None:
        known = sorted(set(symbols))
        fix = f"correct the symbol (the market data has {len(known)}), or remove the row"
        out += _flag(
            p,
            ~pl.col("symbol").is_in(known),
            "symbol",
            lambda r: f"{r['symbol']!r} is not a symbol of the market data",
            fix,
        )
        out += _flag(
            p,
            change & ~new.is_in(known),
            "new_symbol",
            lambda r: f"{r['new_symbol']!r} is not a symbol of the market data",
            fix,
        )
    for column in OPTIONAL:
        users = [kind for kind, used in USES.items() if column in used]
        out += _flag(
            p,
            action.is_in(list(USES)) & ~action.is_in(users) & _given(p, column),
            column,
            lambda r: f"is set on a {r['action']} row, which does not use it",
            f"leave it empty ({column} belongs to {' and '.join(users)} rows)",
        )
    out += _flag(
        p,
        pl.col("pay") < pl.col("ex"),
        "pay_date",
        lambda r: f"{r['pay_text']} is before the ex_date {r['ex_text']}",
        "give a pay_date on or after the ex_date, or leave it empty",
    )
    return out


def _given(p: pl.DataFrame, column: str) -> pl.Expr:
    """The cell holds a value (a time column is judged on its text, so a cell that did
    not parse still counts as given)."""
    return pl.col("pay_text" if column == "pay_date" else column).is_not_null()


def _cross_problems(p: pl.DataFrame) -> list[Problem]:
    """Rules between rows, on the rows whose keys are sound."""
    ok = p.filter(
        pl.col("symbol").is_not_null()
        & pl.col("ex").is_not_null()
        & pl.col("action").is_in(list(USES))
    ).select("row", "symbol", "action", "ex", "ex_text", "new_symbol")
    first = pl.col("row").min()
    out = _flag(
        ok.with_columns(first=first.over("symbol", "ex", "action")),
        pl.col("row") != pl.col("first"),
        "ex_date",
        lambda r: f"repeats row {r['first']} (same symbol, ex_date and action)",
        "keep one of the rows",
    )
    delisted = (
        ok.filter(pl.col("action") == "delisting")
        .group_by("symbol")
        .agg(gone=pl.col("ex").min(), gone_row=pl.col("row").sort_by("ex").first())
    )
    out += _flag(
        ok.join(delisted, on="symbol"),
        pl.col("ex") > pl.col("gone"),
        "ex_date",
        lambda r: f"{r['symbol']} was delisted before (row {r['gone_row']})",
        "remove the row, or correct the dates",
    )
    both = (
        ok.filter(pl.col("action").is_in(["delisting", "symbol_change"]))
        .with_columns(
            kinds=pl.col("action").n_unique().over("symbol", "ex"),
            first=first.over("symbol", "ex"),
        )
        .filter(pl.col("kinds") > 1)
    )
    out += _flag(
        both,
        pl.col("row") != pl.col("first"),
        "action",
        lambda r: (
            f"{r['symbol']} also has a symbol_change or delisting at this instant "
            f"(row {r['first']})"
        ),
        "a symbol cannot be renamed and delisted at once: give them different times",
    )
    changes = ok.filter(pl.col("action") == "symbol_change")
    out += _flag(
        changes.with_columns(
            first=first.over("ex", "new_symbol"),
            first_symbol=pl.col("symbol").sort_by("row").first().over("ex", "new_symbol"),
        ),
        pl.col("symbol") != pl.col("first_symbol"),
        "new_symbol",
        lambda r: f"row {r['first']} renames another symbol to {r['new_symbol']!r} at this instant",
        "two symbols cannot take one name at once: correct one of the rows",
    )
    renamed = changes.select("ex", new_symbol=pl.col("symbol"), renamed_row=pl.col("row")).unique(
        ["ex", "new_symbol"]
    )
    out += _flag(
        changes.join(renamed, on=["ex", "new_symbol"]),
        pl.col("row") != pl.col("renamed_row"),
        "new_symbol",
        lambda r: f"{r['new_symbol']!r} is itself renamed at this instant (row {r['renamed_row']})",
        "give chained renames different times",
    )
    return out


def _sorted_rows(p: pl.DataFrame) -> tuple[CorporateActionRow, ...]:
    rank = {str(kind): i for i, kind in enumerate(APPLICATION_ORDER)}
    ordered = p.with_columns(rank=pl.col("action").replace_strict(rank)).sort(
        "ex", "rank", "symbol", "row"
    )
    rows = []
    for r in ordered.iter_rows(named=True):
        kind = ActionKind(r["action"])
        rows.append(
            CorporateActionRow(
                symbol=r["symbol"],
                action=kind,
                effective_ns=r["ex"],
                pay_ns=(r["pay"] if r["pay"] is not None else r["ex"])
                if kind is ActionKind.DIVIDEND
                else None,
                ratio=r["ratio"],
                amount=r["amount"],
                price=r["price"],
                new_symbol=r["new_symbol"],
                source_row=r["row"],
            )
        )
    return tuple(rows)
