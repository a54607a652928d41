"""Run a sweep: plan the tasks, skip the finished ones, execute the rest, gather a table.

Everything a sweep writes lives under ``out_dir``::

    out_dir/
      sweep.json          the plan: spec, base config, every task's parameters and key
      runs/<run_id>/      one run's results (the recorder's files), keyed by config hash
      results.parquet     one row per finished run: parameters, metrics, status, path
      summary.html        best runs, failures, heatmap

``results.parquet`` is written atomically when the sweep ends, and also when it is
interrupted (with the runs that finished). Resuming (the default) skips every run whose
``manifest.json`` says ``"complete": true``; failed and interrupted runs run again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ml4t.backtest.config import RunConfig, load_config, load_strategy_class
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record.outputs import atomic_open, atomic_write_json
from ml4t.backtest.sweep.executors import Executor, make_executor
from ml4t.backtest.sweep.grid import SweepSpec, load_spec
from ml4t.backtest.sweep.plan import Task, base_text, is_complete, plan_tasks
from ml4t.backtest.sweep.shared import share_groups
from ml4t.backtest.sweep.summary import write_summary
from ml4t.backtest.sweep.task import CANCELLED, FAILED, OK

__all__ = ["RESULTS_FILE", "SUMMARY_FILE", "run_sweep"]

RESULTS_FILE = "results.parquet"
SUMMARY_FILE = "summary.html"
PLAN_FILE = "sweep.json"
_WINDOW_COLUMNS = ("train_start", "train_end", "test_start", "test_end")


def run_sweep(
    config: RunConfig | str | Path | dict[str, Any],
    spec: SweepSpec | str | Path | dict[str, Any],
    *,
    out_dir: str | Path = "sweep",
    executor: str | Executor = "local",
    workers: int | None = None,
    address: str | None = None,
    resume: bool = True,
    overrides: Iterable[str] = (),
    progress: bool | None = None,
    runtime_env: dict[str, Any] | None = None,
    log_level: str = "warning",
    share_data: bool = False,
) -> pl.DataFrame:
    """Run every backtest of a sweep and return the results table (also on disk).

    ``config`` is the base run config (a YAML path, a dict or a :class:`RunConfig`), with
    ``overrides`` (``key=value``) applied to every run; ``spec`` is the sweep
    (``GRID.yaml``, a dict or a :class:`SweepSpec`). ``executor`` is ``"local"`` (a
    process pool of ``workers``, default the CPU count) or ``"ray"`` (``address`` of a
    cluster, else a local Ray); ``progress`` shows a bar (default: on a terminal).
    Ctrl-C cancels the outstanding runs, writes the table of those that finished and
    re-raises ``KeyboardInterrupt``.

    ``share_data`` (local executor only) runs the points that read the same data on one
    shared data pass per worker: the data is read and validated once per worker, not
    once per point, and each run writes what it would alone (see
    :mod:`ml4t.backtest.sweep.shared`).
    """
    spec = load_spec(spec)
    base = _base_config(config, list(overrides))
    tasks = plan_tasks(base, spec)
    if isinstance(executor, str):
        executor = make_executor(
            executor, workers=workers, address=address, runtime_env=runtime_env
        )
    if share_data and executor.name != "local":
        raise ConfigError(
            f"share_data runs on the local executor, not {executor.name!r}; drop "
            "--share-data or use --executor local"
        )
    out = Path(out_dir).resolve()
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = base_text(base)
    plan = _plan_record(spec, text, tasks, executor.name)
    atomic_write_json(out / PLAN_FILE, plan)
    results, todo = _settled(tasks, runs_dir, resume=resume)
    interrupted = False
    try:
        with _progress(len(tasks), _counts(results), progress) as advance:

            def on_result(result: dict[str, Any]) -> None:
                if result["status"] != CANCELLED:
                    results[result["run_id"]] = {**result, "resumed": False}
                advance(result["status"])

            executor.run(
                _payloads(todo, text, runs_dir, log_level, executor, share_data), on_result
            )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        table = build_table(tasks, results, walk_forward=spec.walk_forward is not None)
        with atomic_open(out / RESULTS_FILE) as handle:
            table.write_parquet(handle)
        write_summary(out / SUMMARY_FILE, table, metric=spec.metric, maximize=spec.maximize)
        finished = datetime.now(UTC).isoformat()
        plan.update(finished_at=finished, interrupted=interrupted, counts=_counts(results))
        placement = _placement(results)
        if placement:
            plan["placement"] = placement
        atomic_write_json(out / PLAN_FILE, plan)
    return table


def _payloads(
    todo: list[Task], text: str, runs_dir: Path, log_level: str, executor: Executor, share: bool
) -> list[dict[str, Any]]:
    """One payload per task, or with ``share`` a group payload per part of the points
    that can share a data pass (split over the executor's workers)."""
    if not share:
        return [t.payload(text, runs_dir, log_level) for t in todo]
    workers = getattr(executor, "workers", None) or 1
    return share_groups(todo, text, runs_dir, log_level, workers=workers)


def _settled(
    tasks: list[Task], runs_dir: Path, *, resume: bool
) -> tuple[dict[str, dict[str, Any]], list[Task]]:
    """Results known before running (invalid configs, complete runs) and the tasks to run."""
    results: dict[str, dict[str, Any]] = {}
    todo: list[Task] = []
    for task in tasks:
        run_dir = runs_dir / task.run_id
        if task.error is not None:
            results[task.run_id] = _planned_failure(task)
        elif resume and is_complete(run_dir):
            results[task.run_id] = _finished(task, run_dir)
        else:
            todo.append(task)
    return results, todo


def _placement(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Which cluster node ran each run of this invocation, and whether its files were
    sent back to the driver (Ray only: the local pool runs everything here)."""
    return {
        run_id: {"node": r["node"], "shipped": bool(r.get("shipped"))}
        for run_id, r in results.items()
        if r.get("node") is not None
    }


def _counts(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {s: sum(r["status"] == s for r in results.values()) for s in (OK, FAILED)}


def _base_config(
    config: RunConfig | str | Path | dict[str, Any], overrides: list[str]
) -> RunConfig:
    if isinstance(config, RunConfig):
        config = msgspec.to_builtins(config) if overrides else config
    base = config if isinstance(config, RunConfig) else load_config(config, overrides=overrides)
    if base.strategy is None:
        raise ConfigError(
            "a sweep needs the strategy in the config: a 'strategy' section with path or "
            "module and class (each run imports it by that path)"
        )
    load_strategy_class(base.strategy)  # a wrong path or class fails here, not in every task
    return base


def _plan_record(spec: SweepSpec, text: str, tasks: list[Task], executor: str) -> dict[str, Any]:
    return {
        "started_at": datetime.now(UTC).isoformat(),
        "finished_at": None,
        "executor": executor,
        "spec": msgspec.to_builtins(spec),
        "base_config": text,
        "tasks": msgspec.to_builtins(tasks),
    }


def _planned_failure(task: Task) -> dict[str, Any]:
    return {
        "run_id": task.run_id,
        "status": FAILED,
        "error": task.error,
        "metrics": None,
        "duration_s": 0.0,
        "path": None,
        "resumed": False,
    }


def _finished(task: Task, run_dir: Path) -> dict[str, Any]:
    """The result of a run a previous invocation completed, read from its directory."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    return {
        "run_id": task.run_id,
        "status": OK,
        "error": None,
        "metrics": metrics,
        "duration_s": float(manifest.get("wall_time_seconds") or 0.0),
        "path": str(run_dir),
        "resumed": True,
    }


def build_table(
    tasks: list[Task], results: dict[str, dict[str, Any]], *, walk_forward: bool
) -> pl.DataFrame:
    """One row per finished task, in plan order: parameters, metrics, status, path."""
    done = [(t, results[t.run_id]) for t in tasks if t.run_id in results]
    keys = list(dict.fromkeys(k for t in tasks for k in t.params))
    fixed = ["run_id", "status"]
    columns: dict[str, list[Any]] = {c: [] for c in fixed}
    columns.update({k: [] for k in keys})
    if walk_forward:
        columns.update({c: [] for c in ("window", "role", *_WINDOW_COLUMNS)})
    names = list(dict.fromkeys(m for _, r in done for m in (r["metrics"] or {})))
    metric_columns = {m: (m if m not in columns and "." not in m else f"metric_{m}") for m in names}
    columns.update({c: [] for c in metric_columns.values()})
    tail = ["error", "duration_s", "path", "config_hash", "resumed"]
    columns.update({c: [] for c in tail})
    for task, result in done:
        row: dict[str, Any] = {
            "run_id": task.run_id,
            "status": result["status"],
            "error": result["error"],
            "duration_s": float(result["duration_s"]),
            "path": result["path"],
            "config_hash": task.config_hash or None,
            "resumed": bool(result.get("resumed")),
        }
        row.update({k: task.params.get(k) for k in keys})
        if walk_forward and task.window is not None:
            window = task.window
            row.update(window=window.index, role=task.role)
            row.update({c: getattr(window, c) for c in _WINDOW_COLUMNS})
        metrics = result["metrics"] if result["status"] == OK else None
        for name, column in metric_columns.items():
            row[column] = (metrics or {}).get(name)
        for column, values in columns.items():
            values.append(row.get(column))
    return pl.DataFrame([_series(name, values) for name, values in columns.items()])


_DTYPES: dict[str, Any] = {
    "run_id": pl.String,
    "status": pl.String,
    "window": pl.Int64,
    "role": pl.String,
    **dict.fromkeys(_WINDOW_COLUMNS, pl.Date),
    "error": pl.String,
    "duration_s": pl.Float64,
    "path": pl.String,
    "config_hash": pl.String,
    "resumed": pl.Boolean,
}


def _series(name: str, values: list[Any]) -> pl.Series:
    """A column of one type: mixed ints and floats become floats, other mixes strings."""
    dtype = _DTYPES.get(name)
    if dtype is not None:
        return pl.Series(name, values, dtype)
    try:
        return pl.Series(name, values)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int, float}:
            return pl.Series(name, [None if v is None else float(v) for v in values], pl.Float64)
        return pl.Series(name, [None if v is None else str(v) for v in values], pl.String)


@contextmanager
def _progress(total: int, done: dict[str, int], enabled: bool | None) -> Iterator[Any]:
    """A rich progress bar over tasks (quiet off a terminal); yields ``advance(status)``.

    ``done`` counts the tasks settled before any ran (resumed, or invalid configs).
    """
    show = sys.stderr.isatty() if enabled is None else enabled
    counts = dict(done)
    if not show:
        yield lambda status: None
        return
    columns = (
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[ok]} ok, {task.fields[failed]} failed"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr)) as bar:
        task = bar.add_task(
            "sweep", total=total, completed=sum(done.values()), ok=done[OK], failed=done[FAILED]
        )

        def advance(status: str) -> None:
            counts[status] = counts.get(status, 0) + 1
            bar.update(task, advance=1, ok=counts[OK], failed=counts[FAILED])

        yield advance
