"""What ``ml4t run`` and ``ml4t demo`` say when a run ends: the headline figures, what
happened to the orders, and what went wrong without stopping the run.

A run that rejected 1,497 orders is not a quiet success: :func:`run_summary` counts the
orders table by status (rejected ones by ``reject_rule``), the refused cancels and
modifies in the order history, the orders still working when the data ended, the data
repairs and an incomplete outcome, and turns each into a warning. :func:`summary_table`
is the text a person reads; the dict itself is the ``--json`` summary.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.table import Table

if TYPE_CHECKING:
    from ml4t.backtest.engine import BacktestEngine, BacktestResults

__all__ = ["run_summary", "summary_table"]

_WORKING = ("submitted", "accepted", "partially_filled")
"""Order statuses of an order that was still working when the run ended."""

_HEADLINE_METRICS = (
    ("sharpe_ratio", "{:.2f}"),
    ("max_drawdown", "{:.2%}"),
    ("win_rate", "{:.1%}"),
    ("total_commission", "{:,.2f}"),
    ("total_slippage", "{:,.2f}"),
)


def order_counts(orders: pl.DataFrame, history: pl.DataFrame) -> dict[str, Any]:
    """Orders by outcome: ``total``, ``filled``, ``rejected`` (and ``rejected_by_rule``,
    most frequent first), ``expired``, ``cancelled``, ``open_at_end`` (still working when
    the data ended) and ``refused_amendments`` (cancel or modify requests the venue
    refused; the order kept working)."""
    status = orders.get_column("status")
    count = {s: int((status == s).sum()) for s in ("filled", "rejected", "expired", "cancelled")}
    rules = (
        orders.filter(pl.col("status") == "rejected")
        .group_by(pl.col("reject_rule").fill_null("unknown"), maintain_order=True)
        .agg(pl.len().alias("n"), pl.col("reject_reason").first().alias("reason"))
        .sort(["n", "reject_rule"], descending=[True, False])
    )
    by_rule = {str(rule): int(n) for rule, n, _ in rules.iter_rows()}
    example = {str(rule): str(reason or "") for rule, _, reason in rules.iter_rows()}
    refused = history.get_column("event").is_in(["cancel_rejected", "modify_rejected"]).sum()
    return {
        "total": orders.height,
        **count,
        "rejected_by_rule": by_rule,
        "rejected_example": example,
        "open_at_end": int(status.is_in(list(_WORKING)).sum()),
        "refused_amendments": int(refused),
    }


def _warnings(
    results: BacktestResults, orders: dict[str, Any], repairs: dict[str, int]
) -> list[str]:
    warnings: list[str] = []
    if not results.complete:
        why = results.manifest.get("incomplete_reason") or results.outcome.value
        warnings.append(f"the run did not complete: {why}")
    if orders["rejected"]:
        rule = next(iter(orders["rejected_by_rule"]))
        warnings.append(
            f"{orders['rejected']:,} of {orders['total']:,} orders were rejected; most by "
            f"{rule}, e.g. {orders['rejected_example'][rule]!r} (orders.parquet: "
            "reject_rule, reject_reason)"
        )
    if orders["open_at_end"]:
        warnings.append(
            f"{orders['open_at_end']:,} order(s) were still working when the data ended "
            "(never filled, cancelled or expired)"
        )
    if orders["refused_amendments"]:
        warnings.append(
            f"{orders['refused_amendments']:,} cancel/modify request(s) were refused "
            "(order_history.parquet: event cancel_rejected, modify_rejected)"
        )
    for rule, rows in sorted(repairs.items()):
        if rows:
            warnings.append(f"data repaired by {rule}: {rows:,} row(s)")
    return warnings


def run_summary(results: BacktestResults, engine: BacktestEngine | None = None) -> dict[str, Any]:
    """The summary of a finished run: :meth:`BacktestResults.summary`, every metric, the
    order counts, the warnings and where the results are. ``engine`` (the one that ran)
    adds the data repairs and whether the orders table was recorded."""
    recorded = engine is None or "orders" in engine.config.reporting.tables
    orders = order_counts(results.orders, results.order_history) if recorded else None
    repairs = dict(getattr(engine.feed, "repairs", {}) or {}) if engine is not None else {}
    warnings = _warnings(results, orders, repairs) if orders is not None else []
    if orders is not None:
        orders = {k: v for k, v in orders.items() if k != "rejected_example"}
    return {
        **results.summary(),
        "complete": results.complete,
        "events_per_second": results.events_per_second,
        "metrics": results.metrics,
        "orders": orders,
        "warnings": warnings,
        "results": str(results.output_dir) if results.output_dir is not None else None,
    }


def summary_table(summary: dict[str, Any]) -> Table:
    """The summary as the two-column table a person reads."""
    table = Table(title="Backtest summary", show_header=False)
    rows = [
        ("outcome", summary["outcome"]),
        ("bar-events", f"{summary['bar_events']:,}"),
        ("wall time", f"{summary['elapsed_s']:.2f} s ({summary['events_per_second']:,.0f}/s)"),
        ("final equity", f"{summary['final_equity']:,.2f}"),
        ("total return", f"{summary['total_return']:.2%}"),
        ("trades", f"{summary['trades']:,}"),
    ]
    metrics = summary["metrics"]
    for key, fmt in _HEADLINE_METRICS:
        value = metrics.get(key)
        if isinstance(value, int | float):
            shown = fmt.format(value) if math.isfinite(value) else "n/a"  # no trades: no rate
            rows.append((key.replace("_", " "), shown))
    orders = summary["orders"]
    if orders is None:
        rows.append(("orders", "not recorded (reporting.tables)"))
    else:
        rows.append(("orders", f"{orders['total']:,} ({orders['filled']:,} filled)"))
        by_rule = ", ".join(f"{rule} {n:,}" for rule, n in orders["rejected_by_rule"].items())
        rows.append(("rejected", f"{orders['rejected']:,}" + (f" ({by_rule})" if by_rule else "")))
        rows.append(("expired", f"{orders['expired']:,}"))
        rows.append(("cancelled", f"{orders['cancelled']:,}"))
        if orders["open_at_end"]:
            rows.append(("open at end", f"{orders['open_at_end']:,}"))
    for key, value in rows:
        table.add_row(key, value)
    return table
