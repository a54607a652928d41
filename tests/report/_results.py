"""A results directory for the report tests, written by the real recorder.

:func:`write_results` runs the recorder on a scripted random world
(``tests/record/_world.py``: a toy strategy on random-walk bars, consistent fills and
snapshots), with a few orders the risk manager rejects, then adds a benchmark file as the
benchmark helper of a run would (``benchmark_returns.parquet``: ``date``, ``return``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ml4t.backtest import OrderRejected, OrderSide, SubmitOrder
from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.report import BENCHMARK_FILE
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import ORDER_EVENTS, ORDER_REQUESTS
from tests.record._world import random_world

# (rule, how many, the reason's text)
REJECTIONS = (
    ("max_position", 7, "position would be 12.0% of equity, above max_position_pct 10%"),
    ("buying_power", 3, "insufficient cash: order costs 10,500.00 but only 9,800.00 is free"),
)


def write_results(
    out: Path,
    *,
    days: int = 300,
    bars_per_day: int = 2,
    symbols: int = 6,
    seed: int = 11,
    benchmark: bool = True,
) -> Path:
    """Run the recorder into ``out`` (``html_report: true``) and return ``out``. Two bars
    a day (13:00 and 21:00 UTC) by default, so daily figures differ from per-state ones."""
    tape = random_world(days=days, symbols=symbols, seed=seed, bars_per_day=bars_per_day)
    times = sorted({ts for ts, _, _ in tape.steps})
    n = 0
    for rule, count, reason in REJECTIONS:
        for k in range(count):
            n += 1
            ts = times[(n * 23) % len(times)]
            symbol = tape.symbols[k % len(tape.symbols)]
            order = SubmitOrder(
                ts_event=ts,
                ts_init=ts,
                order_id=f"rej{n}",
                strategy_id="s",
                symbol=symbol,
                side=OrderSide.BUY,
                quantity=100.0,
            )
            refusal = OrderRejected(
                ts_event=ts,
                order_id=order.order_id,
                strategy_id="s",
                symbol=symbol,
                rule=rule,
                reason=reason,
            )
            tape.steps += [(ts, ORDER_REQUESTS, order), (ts, ORDER_EVENTS, refusal)]
    config = ReportingConfig(output_dir=str(out), html_report=True)
    run_components(Script(tape.steps), Recorder(config, initial_equity=100_000.0), strict=False)
    if benchmark:
        write_benchmark(out, seed=seed)
    return out


def write_benchmark(out: Path, *, seed: int = 11) -> pl.DataFrame:
    """A random benchmark over the run's dates (one return per portfolio date)."""
    dates = (
        pl.read_parquet(out / "portfolio.parquet", columns=["timestamp"])
        .select(pl.col("timestamp").dt.date().unique(maintain_order=True).alias("date"))
        .get_column("date")
    )
    rng = np.random.default_rng(seed + 1)
    frame = pl.DataFrame({"date": dates, "return": rng.normal(0.0003, 0.01, dates.len())})
    frame.write_parquet(out / BENCHMARK_FILE)
    return frame


def hand_trades(**columns: list) -> pl.DataFrame:
    """A trades table with every column the report reads: ``columns`` given, the others
    filled with plausible values (one row per value of the first column given)."""
    n = len(next(iter(columns.values())))
    t0 = pl.datetime(2024, 1, 2, 14, 30, time_zone="UTC")
    defaults: dict[str, pl.Expr] = {
        "trade_id": pl.format("T{}", pl.int_range(1, n + 1)),
        "symbol": pl.lit("AAA"),
        "side": pl.lit("long"),
        "quantity": pl.lit(10.0),
        "entry_timestamp": t0 + pl.duration(days=pl.int_range(0, n)),
        "exit_timestamp": t0 + pl.duration(days=pl.int_range(1, n + 1)),
        "entry_price": pl.lit(100.0),
        "exit_price": pl.lit(101.0),
        "pnl_gross": pl.lit(10.0),
        "pnl_net": pl.lit(9.0),
        "pnl_percent": pl.lit(0.9),
        "total_cost": pl.lit(1.0),
        "holding_period_bars": pl.lit(1, dtype=pl.Int64),
        "exit_reason": pl.lit("signal"),
        "max_favorable_pct": pl.lit(2.0),
        "max_adverse_pct": pl.lit(1.0),
    }
    frame = pl.select(pl.int_range(0, n).alias("_row"))
    frame = frame.with_columns(
        pl.Series(name, columns[name]) if name in columns else expr.alias(name)
        for name, expr in defaults.items()
    )
    return frame.drop("_row")
