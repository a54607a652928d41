"""``ml4t sweep CONFIG --grid GRID.yaml``: the command line of a sweep.

:func:`add_cli` adds the ``sweep`` subcommand to the ``ml4t`` parser's subcommands. It
exits 0 when every run succeeded, 1 when some failed (the table and summary are written
either way), 2 for a bad config or sweep file, and 130 on Ctrl-C (the finished runs are
in the table; run the same command again to resume).

A second invocation with the same ``--output`` resumes: complete runs are skipped, and
the summary says how many. ``-q``, ``-v`` and ``--json`` mean what they mean for every
``ml4t`` subcommand (:mod:`ml4t.backtest._commandline`); ``--out`` is the old spelling of
``--output``, kept as a hidden alias that says it is deprecated.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from rich.markup import escape
from rich.table import Table

from ml4t.backtest._commandline import (
    DeprecatedAlias,
    Output,
    add_output_flags,
    log_level,
    positive_int,
)
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.sweep.summary import best_runs, param_columns

__all__ = ["add_cli", "sweep_summary"]


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
    sweep.add_argument("--address", help="Ray cluster address (HEAD:6379, auto, ray://HEAD:10001)")
    sweep.add_argument(
        "--share-data",
        action="store_true",
        help="local executor: points that read the same data share one data pass per "
        "worker (read and validated once, each run's results as if run alone)",
    )
    sweep.add_argument(
        "--output", metavar="DIR", help="sweep directory (default: sweeps/<config>-<grid>)"
    )
    sweep.add_argument(  # the old spelling, before one flag named every output directory
        "--out", dest="output", action=DeprecatedAlias, new="--output", help=argparse.SUPPRESS
    )
    sweep.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="run every point again, even those already complete (by default a "
        "complete run in DIR is skipped, and the summary says how many were)",
    )
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key")
    sweep.add_argument("--metric", help="rank runs by this metric (default: the sweep file's)")
    sweep.add_argument(
        "--maximize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="higher metric is better (--no-maximize: lower is better)",
    )
    sweep.add_argument("--top", type=positive_int, default=10, help="best runs to print")
    sweep.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: only on a terminal, not with -q or --json)",
    )
    add_output_flags(sweep)
    sweep.set_defaults(func=_sweep)
    return sweep


def _sweep(args: argparse.Namespace) -> int:
    from ml4t.backtest.sweep.grid import load_spec
    from ml4t.backtest.sweep.runner import RESULTS_FILE, SUMMARY_FILE, run_sweep

    if not Path(args.grid).is_file():
        raise ConfigError(f"--grid {args.grid}: no such sweep file")
    spec = load_spec(args.grid)
    changes = {
        k: v for k, v in (("metric", args.metric), ("maximize", args.maximize)) if v is not None
    }
    spec = msgspec.structs.replace(spec, **changes) if changes else spec
    out_dir = Path(args.output or f"sweeps/{Path(args.config).stem}-{Path(args.grid).stem}")
    out = Output.of(args)
    progress = args.progress if args.progress is not None else (None if out.text else False)
    try:
        table = run_sweep(
            args.config,
            spec,
            out_dir=out_dir,
            executor=args.executor or ("ray" if args.address else "local"),
            workers=args.workers,
            address=args.address,
            resume=args.resume,
            overrides=args.set or [],
            progress=progress,
            log_level=log_level(args),
            share_data=args.share_data,
        )
    except KeyboardInterrupt:
        out.say(
            f"[bold red]interrupted[/]: finished runs are in {out_dir / RESULTS_FILE}; run "
            "the same command again to resume"
        )
        return 130
    summary = sweep_summary(table, spec.metric, maximize=spec.maximize, top=args.top)
    _print(out, summary, table, spec.metric)
    paths = {"results": str(out_dir / RESULTS_FILE), "summary": str(out_dir / SUMMARY_FILE)}
    out.say(f"results: {paths['results']}\nsummary: {paths['summary']}", markup=False)
    out.summary({"command": "sweep", **summary, **paths})
    return 1 if summary["failed"] else 0


def sweep_summary(
    table: pl.DataFrame, metric: str, *, maximize: bool = True, top: int = 10
) -> dict[str, Any]:
    """What the sweep command reports: runs ``ok``/``failed``, ``skipped`` (complete
    before this invocation, so resumed, not run), the ``best`` runs by ``metric``
    (parameters, metric, total return) and the first failures."""
    failed = table.filter(pl.col("status") == "failed")
    best: list[dict[str, Any]] = []
    if metric in table.columns:
        shown = ["run_id", *param_columns(table)]
        shown += [c for c in ("window", "role", metric, "total_return") if c in table.columns]
        ranked = best_runs(table, metric, maximize=maximize, n=top)
        best = ranked.select(list(dict.fromkeys(shown))).to_dicts()
    return {
        "runs": table.height,
        "ok": table.height - failed.height,
        "failed": failed.height,
        "skipped": int(table["resumed"].sum()),
        "metric": metric,
        "best": best,
        "failures": failed.select("run_id", "error").head(top).to_dicts(),
    }


def _print(out: Output, summary: dict[str, Any], table: pl.DataFrame, metric: str) -> None:
    skipped = summary["skipped"]
    resumed = (
        f"; {skipped} skipped: complete from an earlier run (--no-resume runs them again)"
        if skipped
        else ""
    )
    out.say(f"{summary['runs']} runs: {summary['ok']} ok, {summary['failed']} failed{resumed}")
    if summary["best"]:
        out.show(_best_table(summary["best"], metric, param_columns(table)), whole=True)
    for failure in summary["failures"]:
        out.say(f"[red]failed[/] {failure['run_id']}: {escape(str(failure['error']))}")


def _best_table(rows: list[dict[str, Any]], metric: str, params: list[str]) -> Table:
    """The best runs, every column name whole: the parameters' common prefix
    (``strategy.params.``) goes into the caption instead of every header."""
    prefix = _common_prefix(params)
    table = Table(
        title=f"Best runs by {metric}",
        caption=f"parameters under {prefix}" if prefix else None,
    )
    for name in rows[0]:
        header = name.removeprefix(prefix) if name in params else name
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    return table


def _common_prefix(names: list[str]) -> str:
    """The dotted prefix every name shares (``strategy.params.``), or ""."""
    if not names:
        return ""
    parts = [name.split(".")[:-1] for name in names]
    shared: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        shared.append(level[0])
    return ".".join(shared) + "." if shared else ""
