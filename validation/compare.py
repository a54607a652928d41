"""Exact comparison of two runs after canonical rounding, with negative controls.

Every framework's output is reduced to the same canonical tables (:class:`RunOutput`):

- ``orders``: one row per filled order: symbol, timestamp, side, quantity, average
  price, commission;
- ``fills``: one row per fill, same columns;
- ``trades``: one row per closed round trip: symbol, side, quantity, entry and exit
  timestamps and prices, entry and exit commission;
- ``equity``: one row per bar: timestamp, cash and equity (marked at the close);
- ``final_cash``.

Values are compared as integers after **canonical rounding**: prices and quantities to
1e-8, money (commission, cash, equity) to 1e-6. Two tables match only if they have the
same number of rows and every rounded value is equal; there is no percentage
tolerance. Rounding absorbs float noise only (two frameworks computing ``c * (1 - p)``
and ``c - c * p`` differ in the last bit; a cash balance summed over thousands of fills
in a different order drifts by a few 1e-9), never a modelling difference. The one
artefact of rounding, two raw values a hair apart on either side of a rounding boundary,
is counted as equal only when they differ by less than half a unit, and every such
*straddle* is counted and reported.

A comparison that cannot fail proves nothing, so each one carries a **negative
control** (:func:`negative_controls`): the ml4t side is perturbed by one rounding unit
(a fill price by 1e-8, the final cash and one equity value by 1e-6) and the comparison
must report the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

__all__ = [
    "MONEY",
    "PRICE",
    "TABLES",
    "Comparison",
    "RunOutput",
    "canonical",
    "compare_runs",
    "compare_tables",
    "negative_controls",
    "trades_from_fills",
]

PRICE = 1e-8
"""Canonical unit of prices and quantities."""
MONEY = 1e-6
"""Canonical unit of money: commission, cash, equity."""

UNITS: dict[str, float] = {
    "quantity": PRICE,
    "price": PRICE,
    "entry_price": PRICE,
    "exit_price": PRICE,
    "commission": MONEY,
    "entry_commission": MONEY,
    "exit_commission": MONEY,
    "cash": MONEY,
    "equity": MONEY,
}
"""Columns compared after rounding to their unit; every other column compares as is."""

KEYS: dict[str, list[str]] = {
    "orders": ["timestamp", "symbol", "side", "quantity", "price", "commission"],
    "fills": ["timestamp", "symbol", "side", "quantity", "price", "commission"],
    "trades": [
        "symbol",
        "side",
        "quantity",
        "entry_timestamp",
        "entry_price",
        "entry_commission",
        "exit_timestamp",
        "exit_price",
        "exit_commission",
    ],
    "equity": ["timestamp", "cash", "equity"],
}
"""The columns of each canonical table, in sort order."""

TABLES = ("orders", "fills", "trades", "equity")


@dataclass(frozen=True)
class RunOutput:
    """One framework's run of one scenario, in canonical form, and how long it took."""

    framework: str
    orders: pl.DataFrame
    fills: pl.DataFrame
    trades: pl.DataFrame
    equity: pl.DataFrame
    final_cash: float
    seconds: float
    notes: list[str] = field(default_factory=list)

    def table(self, name: str) -> pl.DataFrame:
        return getattr(self, name)


def canonical(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """``frame`` reduced to the canonical columns of table ``name``, every float column
    of a known unit rounded to an integer count of that unit, sorted; the raw values
    ride along as ``<column>__raw``."""
    cols = KEYS[name]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}; has {frame.columns}")
    units = [c for c in cols if c in UNITS]
    out = frame.select(
        *cols, *[pl.col(c).cast(pl.Float64).alias(f"{c}__raw") for c in units]
    ).with_columns(
        [(pl.col(c).cast(pl.Float64) / UNITS[c]).round(0).cast(pl.Int64).alias(c) for c in units]
    )
    return out.sort(cols, maintain_order=True)


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one table (or the final cash) of two runs.

    ``straddles`` counts values that round to neighbouring units only because float
    noise put the two raw values on either side of a rounding boundary (they differ by
    less than half a unit); they count as equal and are reported.
    """

    table: str
    rows_left: int
    rows_right: int
    matched: int
    max_diff: dict[str, float]
    first_difference: str | None = None
    straddles: int = 0

    @property
    def ok(self) -> bool:
        return self.first_difference is None and self.rows_left == self.rows_right == self.matched


def compare_tables(left: pl.DataFrame, right: pl.DataFrame, name: str) -> Comparison:
    """Compare table ``name`` of two runs exactly after canonical rounding.

    Rows are paired by position after sorting; ``matched`` counts rows equal in every
    column; ``max_diff`` is the largest absolute raw difference per rounded column, in
    the column's own units (prices, money), over the paired rows.
    """
    a, b = canonical(left, name), canonical(right, name)
    n = min(a.height, b.height)
    equal = np.ones(n, dtype=bool)
    max_diff: dict[str, float] = {}
    straddles = 0
    for col in KEYS[name]:
        x = a.get_column(col).head(n)
        y = b.get_column(col).head(n)
        same = (x == y).fill_null(False).to_numpy()
        if col in UNITS:
            raw = np.abs(
                a.get_column(f"{col}__raw").head(n).to_numpy()
                - b.get_column(f"{col}__raw").head(n).to_numpy()
            )
            noise = ~same & (raw < UNITS[col] / 2)
            straddles += int(noise.sum())
            same |= noise
            max_diff[col] = float(np.nanmax(raw)) if n else 0.0
        equal &= same
    first: str | None = None
    if not equal.all():
        i = int(np.flatnonzero(~equal)[0])
        first = f"row {i}: {_row(a, i)} != {_row(b, i)}"
    elif a.height != b.height:
        longer, side = (a, "left") if a.height > b.height else (b, "right")
        first = f"{side} has {longer.height - n} extra rows, first: {_row(longer, n)}"
    return Comparison(name, a.height, b.height, int(equal.sum()), max_diff, first, straddles)


def _row(frame: pl.DataFrame, i: int) -> dict[str, object]:
    row = frame.row(i, named=True)
    return {k: v for k, v in row.items() if k.endswith("__raw") or f"{k}__raw" not in row}


def compare_cash(left: float, right: float) -> Comparison:
    """The final cash of two runs: equal after rounding to 1e-6 (or a straddle)."""
    rounded = round(left / MONEY) == round(right / MONEY)
    straddle = not rounded and abs(left - right) < MONEY / 2
    same = rounded or straddle
    return Comparison(
        "final_cash",
        1,
        1,
        int(same),
        {"cash": abs(left - right)},
        None if same else f"{left!r} != {right!r}",
        int(straddle),
    )


def compare_runs(ml4t: RunOutput, peer: RunOutput) -> list[Comparison]:
    """Every table and the final cash of ``ml4t`` against ``peer``."""
    out = [compare_tables(ml4t.table(t), peer.table(t), t) for t in TABLES]
    out.append(compare_cash(ml4t.final_cash, peer.final_cash))
    return out


def _bump(frame: pl.DataFrame, column: str, amount: float) -> pl.DataFrame:
    """``frame`` with ``amount`` added to ``column`` in its middle row."""
    i = frame.height // 2
    values = frame.get_column(column).cast(pl.Float64).to_numpy().copy()
    values[i] += amount
    return frame.with_columns(pl.Series(column, values))


def negative_controls(ml4t: RunOutput, peer: RunOutput) -> dict[str, bool]:
    """For each comparison, whether a one-unit perturbation of the ml4t side is
    detected (True = the check can fail, as it must). Empty tables have nothing to
    perturb and are reported as None-free omissions."""
    detected: dict[str, bool] = {}
    for name, column, unit in (
        ("orders", "price", PRICE),
        ("fills", "price", PRICE),
        ("trades", "exit_price", PRICE),
        ("equity", "equity", MONEY),
    ):
        table = ml4t.table(name)
        if table.height == 0:
            continue
        bumped = replace(ml4t, **{name: _bump(table, column, unit)})
        detected[name] = not compare_tables(bumped.table(name), peer.table(name), name).ok
    detected["final_cash"] = not compare_cash(ml4t.final_cash + MONEY, peer.final_cash).ok
    return detected


def trades_from_fills(fills: pl.DataFrame) -> pl.DataFrame:
    """Closed round trips rebuilt from a fills table as FIFO lots, the way ml4t records
    trades (for a framework without a trade table of its own, or whose trades average
    the entry over lots).

    Each fill that opens or adds to a position is a lot; a fill against the position
    closes the oldest lots first, one trade row per (closing fill, lot) pair; a fill
    larger than the position closes it and opens the rest the other way (a reversal).
    Commissions are split in proportion to quantities: a lot carries its share of its
    opening fill's commission, a closing fill's commission is shared by the lots it
    closes.
    """
    lots: dict[str, list[list]] = {}  # symbol -> FIFO of [sign, qty, ts, price, comm]
    rows: list[dict[str, object]] = []
    for ts, symbol, side, qty, price, comm in fills.select(KEYS["fills"]).iter_rows():
        sign = 1 if side == "buy" else -1
        book = lots.setdefault(symbol, [])
        left = qty
        while left > 1e-12 and book and book[0][0] != sign:
            lot = book[0]
            closed = min(lot[1], left)
            share = closed / lot[1]
            rows.append(
                {
                    "symbol": symbol,
                    "side": "long" if lot[0] > 0 else "short",
                    "quantity": closed,
                    "entry_timestamp": lot[2],
                    "entry_price": lot[3],
                    "entry_commission": lot[4] * share,
                    "exit_timestamp": ts,
                    "exit_price": price,
                    "exit_commission": comm * closed / qty,
                }
            )
            lot[4] -= lot[4] * share
            lot[1] -= closed
            left -= closed
            if lot[1] <= 1e-12 * max(1.0, qty):
                book.pop(0)
        if left > 1e-12 * max(1.0, qty):
            book.append([sign, left, ts, price, comm * left / qty])
    schema = {
        "symbol": pl.String,
        "side": pl.String,
        "quantity": pl.Float64,
        "entry_timestamp": pl.Int64,
        "entry_price": pl.Float64,
        "entry_commission": pl.Float64,
        "exit_timestamp": pl.Int64,
        "exit_price": pl.Float64,
        "exit_commission": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
