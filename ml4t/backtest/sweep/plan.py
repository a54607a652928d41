"""A sweep's tasks: one resolved config per (parameter point, window, role).

Each task is keyed by the hash of its resolved config (without ``reporting.output_dir``,
which the sweep sets to the run's own directory): ``run_id`` is the first 16 hex digits
of :func:`~ml4t.backtest.config.config_hash`, so identical configs share a key and a
directory, whichever sweep asked for them. A point whose config does not resolve (a bad
value for a typed key) becomes a failed task carrying the error; it never runs.

What travels to a worker is plain data: the base config as YAML text, the task's
``key=value`` overrides, the run id and the directory to write to.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import msgspec
import yaml

from ml4t.backtest.config import RunConfig, config_hash, dump_config, load_config
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.logging import get_logger
from ml4t.backtest.sweep.grid import SweepSpec, expand_points, format_override
from ml4t.backtest.sweep.walkforward import Window, window_bounds, windows

__all__ = ["RUN_ID_LENGTH", "Task", "base_text", "is_complete", "plan_tasks", "resolve_task"]

RUN_ID_LENGTH = 16
_log = get_logger("ml4t.backtest.sweep")


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """One backtest of a sweep (``error`` set: its config did not resolve)."""

    run_id: str
    config_hash: str
    params: dict[str, Any]
    overrides: list[str]
    window: Window | None = None
    role: str | None = None
    error: str | None = None

    def payload(self, base: str, runs_dir: Path, log_level: str) -> dict[str, Any]:
        """What a worker gets: plain data only."""
        return {
            "run_id": self.run_id,
            "config_hash": self.config_hash,
            "config": base,
            "overrides": list(self.overrides),
            "run_dir": str(runs_dir / self.run_id),
            "log_level": log_level,
        }


def base_text(base: RunConfig) -> str:
    """The resolved base config as YAML (absolute paths, no output directory)."""
    return dump_config(_without_output(base))


def sweep_hash(config: RunConfig) -> str:
    """The key of a resolved run config: its hash without ``reporting.output_dir``."""
    return config_hash(_without_output(config))


def _without_output(config: RunConfig) -> RunConfig:
    reporting = msgspec.structs.replace(config.reporting, output_dir=None)
    return msgspec.structs.replace(config, reporting=reporting)


def resolve_task(base: str, overrides: list[str]) -> RunConfig:
    """The run config of a task: the base YAML with the overrides applied."""
    return load_config(yaml.safe_load(base), overrides=overrides)


def plan_tasks(base: RunConfig, spec: SweepSpec) -> list[Task]:
    """Every task of a sweep, in a stable order: points, then windows, then roles."""
    if spec.walk_forward is not None and (base.data.start or base.data.end):
        raise ConfigError(
            "walk_forward sets backtest.start_date/end_date for each window; remove "
            "data.start/data.end from the config"
        )
    text = base_text(base)
    splits: list[tuple[Window | None, str | None]] = [(None, None)]
    wf = spec.walk_forward
    if wf is not None:
        roles = ("train", "test") if wf.train_runs else ("test",)
        splits = [(w, role) for w in windows(wf) for role in roles]
    tasks: list[Task] = []
    seen: set[str] = set()
    for point in expand_points(spec):
        point_overrides = [format_override(k, v) for k, v in point.items()]
        for window, role in splits:
            overrides = list(point_overrides)
            if window is not None and wf is not None:
                first, last = (
                    (window.train_start, window.train_end)
                    if role == "train"
                    else (window.test_start, window.test_end)
                )
                start, end = window_bounds(wf, first, last)
                overrides += [
                    format_override("backtest.start_date", start),
                    format_override("backtest.end_date", end),
                ]
            task = _task(text, point, overrides, window, role)
            if task.run_id in seen:
                _log.warning("sweep_duplicate_point", run_id=task.run_id, params=point)
                continue
            seen.add(task.run_id)
            tasks.append(task)
    if tasks and all(t.error is not None for t in tasks):
        raise ConfigError(
            f"no point of the sweep gives a valid config; the first: {tasks[0].error}"
        )
    return tasks


def _task(
    text: str, point: dict[str, Any], overrides: list[str], window: Window | None, role: str | None
) -> Task:
    try:
        digest = sweep_hash(resolve_task(text, overrides))
    except ConfigError as exc:
        key = hashlib.sha256(json.dumps(overrides).encode()).hexdigest()
        return Task(
            run_id=f"invalid-{key[: RUN_ID_LENGTH - 8]}",
            config_hash="",
            params=point,
            overrides=overrides,
            window=window,
            role=role,
            error=f"ConfigError: {exc}",
        )
    return Task(
        run_id=digest[:RUN_ID_LENGTH],
        config_hash=digest,
        params=point,
        overrides=overrides,
        window=window,
        role=role,
    )


def is_complete(run_dir: Path) -> bool:
    """True if the run's manifest says it finished (``"complete": true``)."""
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("complete") is True
