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

from bisect import bisect_left
from collections.abc import Collection
from typing import Any

import msgspec
import polars as pl

from ml4t.backtest.data._action_rules import (
    COLUMNS,
    OPTIONAL,
    REQUIRED,
    column_problems,
    cross_problems,
    row_problems,
)
from ml4t.backtest.data._tabular import (
    TableRuleViolation,
    instants,
    new_problems,
    numbers,
    read_table,
    texts,
)
from ml4t.backtest.data._timeline import Due
from ml4t.backtest.data.config import ActionsSourceConfig
from ml4t.backtest.events import ActionKind

__all__ = [
    "APPLICATION_ORDER",
    "ActionKind",
    "ActionSchedule",
    "CorporateActionRow",
    "load_corporate_actions",
    "parse_corporate_actions",
]

KIND = "corporate actions"


APPLICATION_ORDER: tuple[ActionKind, ...] = (
    ActionKind.DIVIDEND,
    ActionKind.SPLIT,
    ActionKind.SYMBOL_CHANGE,
    ActionKind.DELISTING,
)
"""How the actions of one instant are applied (see the module docstring)."""


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
    problems = column_problems(frame)
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
    problems += new_problems([*row_problems(p, symbols), *cross_problems(p)], problems)
    if problems:
        raise TableRuleViolation(name, KIND, problems, COLUMNS)
    return ActionSchedule(rows=_sorted_rows(p), source=name)


def _sorted_rows(p: pl.DataFrame) -> tuple[CorporateActionRow, ...]:
    rank = {str(kind): i for i, kind in enumerate(APPLICATION_ORDER)}
    ordered = p.with_columns(rank=pl.col("action").replace_strict(rank)).sort(
        "ex", "rank", "symbol", "row"
    )
    rows = []
    for r in ordered.iter_rows(named=True):
        kind = ActionKind(r["action"])
        pay = r["pay"] if r["pay"] is not None else r["ex"]  # a dividend pays on ex by default
        rows.append(
            CorporateActionRow(
                symbol=r["symbol"],
                action=kind,
                effective_ns=r["ex"],
                pay_ns=pay if kind is ActionKind.DIVIDEND else None,
                ratio=r["ratio"],
                amount=r["amount"],
                price=r["price"],
                new_symbol=r["new_symbol"],
                source_row=r["row"],
            )
        )
    return tuple(rows)
