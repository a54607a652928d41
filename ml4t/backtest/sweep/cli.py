"""``ml4t sweep CONFIG --grid GRID.yaml``: the command line of a sweep.

:func:`add_cli` adds the ``sweep`` subcommand to the ``ml4t`` parser's subcommands. It
exits 0 when every run succeeded, 1 when some failed (the table and summary are written
either way), 2 for a bad config or sweep file, and 130 on Ctrl-C (the finished runs are
in the table; run the same command again to resume).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

__all__ = ["add_cli"]


def add_cli(commands: Any) -> argparse.ArgumentParser:
    """Add ``sweep`` to an argparse subparsers object (``parser.add_subparsers()``)."""
    sweep = commands.add_parser(
        "sweep",
        help="run a parameter sweep or walk-forward over a config",
        description="Run one backtest per grid point (and walk-forward window) of GRID.yaml "
        "on a local process pool or on Ray; gather the results in one parquet table.",
    )
    sweep.add_argument("config", help="the base run's YAML file (with a strategy section)")
    sweep.add_argument("--grid", required=True, metavar="GRID.yaml", help="the sweep file")
    sweep.add_argument(
        "--executor",
        choices=("local", "ray"),
        help="local process pool (default) or ray (default with --address)",
    )
    sweep.add_argument("--workers", type=int, help="parallel runs (default: the CPU count)")
    sweep.add_argument("--address", help="Ray cluster address (auto, ray://host:10001)")
    sweep.add_argument("--out", help="sweep directory (default: sweeps/<config>-<grid>)")
    sweep.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="run every point again, even those already complete",
    )
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    sweep.add_argument("--metric", help="rank runs by this metric (default: the sweep file's)")
    sweep.add_argument(
        "--maximize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="higher metric is better (--no-maximize: lower is better)",
    )
    sweep.add_argument("--top", type=int, default=10, help="best runs to print")
    sweep.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: only on a terminal)",
    )
    sweep.set_defaults(func=_sweep)
    return sweep


def _sweep(args: argparse.Namespace) -> int:
    from ml4t.backtest.sweep.grid import load_spec
    from ml4t.backtest.sweep.runner import RESULTS_FILE, SUMMARY_FILE, run_sweep
    from ml4t.backtest.sweep.summary import best_runs, param_columns

    spec = load_spec(args.grid)
    changes = {
        k: v for k, v in (("metric", args.metric), ("maximize", args.maximize)) if v is not None
    }
    spec = msgspec.structs.replace(spec, **changes) if changes else spec
    out = Path(args.out or f"sweeps/{Path(args.config).stem}-{Path(args.grid).stem}")
    console = Console(highlight=False, soft_wrap=True)
    try:
        table = run_sweep(
            args.config,
            spec,
            out_dir=out,
            executor=args.executor or ("ray" if args.address else "local"),
            workers=args.workers,
            address=args.address,
            resume=args.resume,
            overrides=args.set or [],
            progress=args.progress,
            log_level=getattr(args, "log_level", "warning"),
        )
    except KeyboardInterrupt:
        console.print(
            f"[bold red]interrupted[/]: finished runs are in {out / RESULTS_FILE}; run the "
            "same command again to resume"
        )
        return 130
    failed = table.filter(table["status"] == "failed")
    console.print(f"{table.height} runs: {table.height - failed.height} ok, {failed.height} failed")
    if spec.metric in table.columns:
        best = best_runs(table, spec.metric, maximize=spec.maximize, n=args.top)
        shown = ["run_id", *param_columns(table)]
        shown += [c for c in ("window", "role", spec.metric, "total_return") if c in best.columns]
        console.print(_rich_table(best.select(list(dict.fromkeys(shown))), spec.metric))
    for row in failed.select("run_id", "error").head(args.top).iter_rows():
        console.print(f"[red]failed[/] {row[0]}: {row[1]}")
    console.print(f"results: {out / RESULTS_FILE}\nsummary: {out / SUMMARY_FILE}")
    return 1 if failed.height else 0


def _rich_table(frame: Any, metric: str) -> Table:
    table = Table(title=f"Best runs by {metric}")
    for name in frame.columns:
        table.add_column(name, justify="right")
    for row in frame.iter_rows():
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    return table
