"""The parity suite's comparison machinery, without the peers installed."""

from __future__ import annotations

import math
from dataclasses import replace

import polars as pl
import pytest

from validation.compare import (
    MONEY,
    PRICE,
    RunOutput,
    canonical,
    compare_runs,
    compare_tables,
    negative_controls,
    trades_from_fills,
)

T0 = 1_700_000_000_000_000_000


def fills(*rows: tuple[int, str, str, float, float, float]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "timestamp": pl.Int64,
            "symbol": pl.String,
            "side": pl.String,
            "quantity": pl.Float64,
            "price": pl.Float64,
            "commission": pl.Float64,
        },
        orient="row",
    )


BASE = fills(
    (T0, "AAA", "buy", 100.0, 101.123456789, 1.0),
    (T0 + 1, "AAA", "sell", 100.0, 103.5, 1.0),
    (T0 + 2, "BBB", "sell", 50.0, 20.25, 0.5),
    (T0 + 3, "BBB", "buy", 50.0, 19.75, 0.5),
)


def output(table: pl.DataFrame = BASE, cash: float = 1_000_123.456789) -> RunOutput:
    equity = pl.DataFrame(
        {"timestamp": [T0, T0 + 1, T0 + 2], "cash": [cash] * 3, "equity": [1e6, 1.5e6, cash]}
    )
    return RunOutput("x", table, table, trades_from_fills(table), equity, cash, 0.0)


def test_canonical_rounds_prices_to_1e_8_and_money_to_1e_6() -> None:
    out = canonical(BASE, "fills")
    assert out["price"][0] == round(101.123456789 / PRICE)
    assert out["commission"][0] == round(1.0 / MONEY)
    assert out["price__raw"][0] == 101.123456789


def test_float_noise_below_the_unit_compares_equal() -> None:
    noisy = BASE.with_columns(pl.col("price") * (1 + 1e-15))
    result = compare_tables(BASE, noisy, "fills")
    assert result.ok
    assert result.matched == 4
    assert 0 < result.max_diff["price"] < 1e-12


@pytest.mark.parametrize(
    ("column", "unit"), [("price", PRICE), ("quantity", PRICE), ("commission", MONEY)]
)
def test_one_unit_of_difference_is_detected(column: str, unit: float) -> None:
    moved = BASE.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.col(column) + unit).otherwise(pl.col(column))
    )
    result = compare_tables(BASE, moved, "fills")
    assert not result.ok
    assert result.matched == 3
    assert result.first_difference is not None and "row" in result.first_difference


def test_a_straddle_of_a_rounding_boundary_counts_as_equal_and_is_reported() -> None:
    below = fills((T0, "AAA", "buy", 1.0, 10.000000004999, 0.0))
    above = fills((T0, "AAA", "buy", 1.0, 10.000000005001, 0.0))
    result = compare_tables(below, above, "fills")
    assert result.ok
    assert result.straddles == 1


def test_a_missing_row_is_a_difference() -> None:
    result = compare_tables(BASE, BASE.head(3), "fills")
    assert not result.ok
    assert result.first_difference is not None and "extra rows" in result.first_difference


def test_row_order_does_not_matter_but_values_do() -> None:
    assert compare_tables(BASE, BASE.reverse(), "fills").ok
    swapped = BASE.with_columns(pl.Series("side", ["sell", "sell", "sell", "buy"]))
    assert not compare_tables(BASE, swapped, "fills").ok


def test_identical_runs_match_and_every_negative_control_is_detected() -> None:
    a, b = output(), output()
    assert all(c.ok for c in compare_runs(a, b))
    controls = negative_controls(a, b)
    assert set(controls) == {"orders", "fills", "trades", "equity", "final_cash"}
    assert all(controls.values())


def test_a_negative_control_that_goes_undetected_is_reported() -> None:
    """If the peer already differs by exactly the perturbation, the bump hides it: the
    control reports False, so a check that cannot fail would be caught."""
    a = output()
    b = replace(output(), final_cash=a.final_cash + MONEY)
    assert negative_controls(a, b)["final_cash"] is False


def test_final_cash_differs_by_one_money_unit() -> None:
    results = {c.table: c for c in compare_runs(output(cash=100.0), output(cash=100.0 + MONEY))}
    assert not results["final_cash"].ok
    assert results["final_cash"].max_diff["cash"] == pytest.approx(MONEY)


def test_trades_from_fills_closes_fifo_lots_and_splits_a_reversal() -> None:
    table = fills(
        (T0, "AAA", "buy", 100.0, 10.0, 1.0),
        (T0 + 1, "AAA", "buy", 50.0, 12.0, 0.5),
        (T0 + 2, "AAA", "sell", 200.0, 11.0, 4.0),  # closes 100 then 50, opens 50 short
        (T0 + 3, "AAA", "buy", 50.0, 9.0, 0.5),
    )
    trades = trades_from_fills(table)
    rows = trades.select("side", "quantity", "entry_price", "exit_price", "exit_commission")
    assert rows.rows() == [
        ("long", 100.0, 10.0, 11.0, 2.0),
        ("long", 50.0, 12.0, 11.0, 1.0),
        ("short", 50.0, 11.0, 9.0, 0.5),
    ]
    assert trades["entry_commission"].to_list() == [1.0, 0.5, 1.0]


def test_trades_from_fills_partial_exit_keeps_the_rest_of_the_lot() -> None:
    table = fills(
        (T0, "AAA", "buy", 100.0, 10.0, 1.0),
        (T0 + 1, "AAA", "sell", 40.0, 11.0, 0.4),
        (T0 + 2, "AAA", "sell", 60.0, 12.0, 0.6),
    )
    trades = trades_from_fills(table)
    assert trades["quantity"].to_list() == [40.0, 60.0]
    assert math.isclose(sum(trades["entry_commission"].to_list()), 1.0)
