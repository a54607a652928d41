"""The plain signal strategy in vectorbt's vectorised ``Portfolio.from_signals``, on the
headline data set, for the comparison DESIGN §9 asks for (ml4t's side is the
``signal_batch`` row of ``benchmarks.engine``).

The same rule as ml4t's benchmark: enter 10 shares on ``signal_entry``, exit on
``signal_exit``, fills at the next bar's open. vectorbt needs wide (time x symbol)
matrices, so the measured time includes loading the parquet and pivoting it, as a user
would have to. Needs ``pip install -e .[validate]`` (vectorbt); without it the row says so.

    python -m benchmarks.vectorbt_signals
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ._harness import machine, machine_line, peak_rss_mb, run_child, write_section
from .engine import dataset


def measure() -> dict[str, Any]:
    try:
        import vectorbt as vbt
    except ImportError as exc:
        return {"framework": "vectorbt", "error": f"not installed ({exc})"}
    import polars as pl

    root = dataset(250, 252)
    start = time.perf_counter()
    asset = pl.read_parquet(root / "asset", columns=["timestamp", "symbol", "open", "close"])
    # daily signals as of the time they become known (16 h after their label), forward-
    # filled onto minute bars: the join ml4t's feed does
    signals = pl.read_parquet(root / "signals")
    asset = asset.sort("timestamp").join_asof(
        signals.select("symbol", "available_at", "signal_entry", "signal_exit").sort(
            "available_at"
        ),
        left_on="timestamp",
        right_on="available_at",
        by="symbol",
        strategy="backward",
    )

    def wide(column: str) -> Any:
        return (
            asset.pivot(on="symbol", index="timestamp", values=column)
            .sort("timestamp")
            .to_pandas()
            .set_index("timestamp")
        )

    close, open_ = wide("close"), wide("open")
    entries = wide("signal_entry").fillna(0).astype(bool)
    exits = wide("signal_exit").fillna(0).astype(bool)
    loaded = time.perf_counter()
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries.shift(1, fill_value=False),
        exits.shift(1, fill_value=False),
        price=open_,
        size=10.0,
        init_cash=10_000_000.0,
        cash_sharing=True,
        group_by=True,
        freq="1min",
    )
    trades = int(portfolio.trades.count().sum())
    done = time.perf_counter()
    return {
        "framework": "vectorbt",
        "version": vbt.__version__,
        "bar_events": int(asset.height),
        "wall_s": round(done - start, 2),
        "load_and_pivot_s": round(loaded - start, 2),
        "simulate_s": round(done - loaded, 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "trades": trades,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    dataset(250, 252)
    vbt_row = run_child("benchmarks.vectorbt_signals")
    ml4t_row = run_child("benchmarks.engine", "signal_batch", "250", "252", "12")
    info = machine()
    lines = [
        "## ml4t beside vectorbt: the plain signal strategy on the headline year",
        "",
        "`python -m benchmarks.vectorbt_signals` (each side in a fresh child process): enter",
        "10 shares on `signal_entry`, exit on `signal_exit`, next-open fills, 250 symbols x",
        "252 sessions of one-minute bars. vectorbt's time includes reading the parquet and",
        "pivoting it to the wide matrices it needs; ml4t's includes validating every row",
        "and writing trades, fills, orders and portfolio states to parquet.",
        "",
        "| framework | wall s | peak RSS MiB | trades | notes |",
        "|---|---:|---:|---:|---|",
    ]
    if "error" in vbt_row:
        lines.append(f"| vectorbt | - | - | - | {vbt_row['error']} |")
    else:
        lines.append(
            f"| vectorbt {vbt_row['version']} | {vbt_row['wall_s']} | {vbt_row['peak_rss_mb']} | "
            f"{vbt_row['trades']:,} | load+pivot {vbt_row['load_and_pivot_s']} s, "
            f"simulate {vbt_row['simulate_s']} s |"
        )
    lines.append(
        f"| ml4t (batch API, full graph) | {ml4t_row['wall_s']} | {ml4t_row['peak_rss_mb']} | "
        f"{ml4t_row['trades']:,} | first event {ml4t_row['first_event_s']} s |"
    )
    lines += ["", machine_line(info)]
    write_section("vs-vectorbt", "\n".join(lines), {"vectorbt": vbt_row, "ml4t": ml4t_row})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
