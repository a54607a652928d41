"""The rules of the corporate-action file, as polars masks over the parsed rows.

The parsed frame ``p`` (see :func:`ml4t.backtest.data.actions.parse_corporate_actions`)
has one row per data row: ``row`` (1-based), ``symbol``, ``action``, ``ex`` and ``pay``
(UTC ns), ``ratio``, ``amount``, ``price``, ``new_symbol``, and the time cells as text
(``ex_text``, ``pay_text``) for messages. Each rule gives a
:class:`~ml4t.backtest.data._tabular.Problem` per offending row; the row rules judge a
row alone, the cross rules compare rows whose keys are sound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

import polars as pl

from ml4t.backtest.data._tabular import Problem

__all__ = [
    "COLUMNS",
    "OPTIONAL",
    "REQUIRED",
    "USES",
    "column_problems",
    "cross_problems",
    "row_problems",
]

REQUIRED = ("symbol", "ex_date", "action")
OPTIONAL = ("ratio", "amount", "pay_date", "price", "new_symbol")
USES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "split": ("ratio",),
        "dividend": ("amount", "pay_date"),
        "delisting": ("price",),
        "symbol_change": ("new_symbol",),
    }
)
"""The optional columns each action uses; any other must be empty on its rows."""
KINDS = ", ".join(USES)
COLUMNS = (*REQUIRED, *OPTIONAL)


def column_problems(frame: pl.DataFrame) -> list[Problem]:
    """Required columns that are missing, and columns that are not the file's."""
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
            fix=f"rename or drop it (the columns are {', '.join(COLUMNS)})",
        )
        for c in frame.columns
        if c not in COLUMNS
    ]
    return out


def flag(
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


def row_problems(p: pl.DataFrame, symbols: Collection[str] | None) -> list[Problem]:
    """Each row alone: its action, its values, its symbols (when ``symbols`` is given)."""
    action = pl.col("action")
    split, dividend = action == "split", action == "dividend"
    delisting, change = action == "delisting", action == "symbol_change"
    ratio, amount, price = pl.col("ratio"), pl.col("amount"), pl.col("price")
    new = pl.col("new_symbol")
    out = flag(
        p,
        action.is_not_null() & ~action.is_in(list(USES)),
        "action",
        lambda r: f"unknown action {r['action']!r}",
        f"use one of {KINDS}",
    )
    out += flag(
        p,
        split & ratio.is_null(),
        "ratio",
        lambda r: "a split needs a ratio",
        "give new shares per old share (4.0 for 4:1, 0.1 for 1:10)",
    )
    out += flag(
        p,
        split & ~(ratio.is_finite() & (ratio > 0)),
        "ratio",
        lambda r: f"{r['ratio']} is not a finite number > 0",
        "give new shares per old share (4.0 for 4:1, 0.1 for 1:10)",
    )
    out += flag(
        p,
        split & (ratio == 1.0),
        "ratio",
        lambda r: "a split of ratio 1 changes nothing",
        "remove the row, or correct the ratio",
    )
    out += flag(
        p,
        dividend & amount.is_null(),
        "amount",
        lambda r: "a dividend needs an amount",
        "give the cash paid per share",
    )
    out += flag(
        p,
        dividend & ~(amount.is_finite() & (amount > 0)),
        "amount",
        lambda r: f"{r['amount']} is not a finite amount > 0",
        "give the cash paid per share",
    )
    out += flag(
        p,
        delisting & ~(price.is_finite() & (price >= 0)),
        "price",
        lambda r: f"{r['price']} is not a finite price >= 0",
        "give the cash paid per share (0 if worthless), or leave it empty for the last close",
    )
    out += flag(
        p,
        change & new.is_null(),
        "new_symbol",
        lambda r: "a symbol_change needs a new_symbol",
        "give the symbol the market data uses from the ex date on",
    )
    out += flag(
        p,
        change & (new == pl.col("symbol")),
        "new_symbol",
        lambda r: f"{r['new_symbol']!r} is the row's own symbol",
        "give the new symbol, or remove the row",
    )
    if symbols is not None:
        known = sorted(set(symbols))
        fix = f"correct the symbol (the market data has {len(known)}), or remove the row"
        out += flag(
            p,
            ~pl.col("symbol").is_in(known),
            "symbol",
            lambda r: f"{r['symbol']!r} is not a symbol of the market data",
            fix,
        )
        out += flag(
            p,
            change & ~new.is_in(known),
            "new_symbol",
            lambda r: f"{r['new_symbol']!r} is not a symbol of the market data",
            fix,
        )
    for column in OPTIONAL:
        users = [kind for kind, used in USES.items() if column in used]
        out += flag(
            p,
            action.is_in(list(USES)) & ~action.is_in(users) & given(p, column),
            column,
            lambda r: f"is set on a {r['action']} row, which does not use it",
            f"leave it empty ({column} belongs to {' and '.join(users)} rows)",
        )
    out += flag(
        p,
        pl.col("pay") < pl.col("ex"),
        "pay_date",
        lambda r: f"{r['pay_text']} is before the ex_date {r['ex_text']}",
        "give a pay_date on or after the ex_date, or leave it empty",
    )
    return out


def given(p: pl.DataFrame, column: str) -> pl.Expr:
    """The cell holds a value (a time column is judged on its text, so a cell that did
    not parse still counts as given)."""
    return pl.col("pay_text" if column == "pay_date" else column).is_not_null()


def cross_problems(p: pl.DataFrame) -> list[Problem]:
    """Rules between rows, on the rows whose keys are sound."""
    ok = p.filter(
        pl.col("symbol").is_not_null()
        & pl.col("ex").is_not_null()
        & pl.col("action").is_in(list(USES))
    ).select("row", "symbol", "action", "ex", "ex_text", "new_symbol")
    first = pl.col("row").min()
    out = flag(
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
    out += flag(
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
    out += flag(
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
    out += flag(
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
    out += flag(
        changes.join(renamed, on=["ex", "new_symbol"]),
        pl.col("row") != pl.col("renamed_row"),
        "new_symbol",
        lambda r: f"{r['new_symbol']!r} is itself renamed at this instant (row {r['renamed_row']})",
        "give chained renames different times",
    )
    return out
