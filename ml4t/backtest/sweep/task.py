"""The worker side of a sweep: run one backtest from plain data, return plain data.

:func:`run_task` is what every executor calls in its workers. It resolves the config
from the base YAML and the overrides, checks that it hashes to the run id the driver
computed (a relative path in an override, resolved against a different working
directory, would not), points ``reporting.output_dir`` at the run's directory, runs the
engine, and returns the status, metrics, error and duration. It never raises for a run
that fails: the error is the result. A run that fails part-way leaves its results
flushed and its manifest ``"complete": false``, with the traceback in ``error.txt``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ml4t.backtest.errors import ML4TError

if TYPE_CHECKING:
    from ml4t.backtest.config import RunConfig
    from ml4t.backtest.engine import BacktestResults

__all__ = [
    "CANCELLED",
    "ERROR_FILE",
    "FAILED",
    "OK",
    "cancelled_result",
    "execute_task",
    "init_pool_worker",
    "interruptible",
    "run_pool_task",
    "run_task",
    "sweep_cancelled",
]

OK, FAILED, CANCELLED = "ok", "failed", "cancelled"
ERROR_FILE = "error.txt"


def run_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one task (see :meth:`~ml4t.backtest.sweep.plan.Task.payload`)."""
    from ml4t.backtest.logging import configure_logging

    configure_logging(payload.get("log_level", "warning"))
    return execute_task(payload, _run_alone)


def _run_alone(config: RunConfig) -> BacktestResults:
    from ml4t.backtest.engine import BacktestEngine

    return BacktestEngine(config).run()


def execute_task(
    payload: dict[str, Any], run: Callable[[RunConfig], BacktestResults | None]
) -> dict[str, Any]:
    """Resolve the task's config, ``run`` it, and return its result (never raising for a
    run that fails). ``run`` returning None, or raising ``KeyboardInterrupt``, is a
    cancelled task."""
    from ml4t.backtest.record.outputs import json_safe
    from ml4t.backtest.sweep.plan import resolve_task, sweep_hash

    run_dir = Path(payload["run_dir"])
    started = time.perf_counter()
    result: dict[str, Any] = {
        "run_id": payload["run_id"],
        "status": FAILED,
        "error": None,
        "metrics": None,
        "duration_s": 0.0,
        "path": str(run_dir),
    }
    try:
        (run_dir / ERROR_FILE).unlink(missing_ok=True)  # from an earlier, failed attempt
        config = resolve_task(payload["config"], payload["overrides"])
        digest = sweep_hash(config)
        if digest != payload["config_hash"]:
            raise ML4TError(
                f"the config resolved to hash {digest[:16]} on the worker, not "
                f"{payload['config_hash'][:16]} as on the driver; give absolute paths in "
                "sweep parameters (relative ones resolve against each process's directory)"
            )
        reporting = msgspec.structs.replace(config.reporting, output_dir=str(run_dir))
        config = msgspec.structs.replace(config, reporting=reporting)
        results = run(config)
        if results is None:  # cancelled by its caller (a shared pass's Ctrl-C)
            result.update(status=CANCELLED, error="cancelled")
        elif results.complete:
            result.update(status=OK, metrics=json_safe(results.metrics))
        else:
            reason = results.manifest.get("incomplete_reason") or results.outcome.value
            result.update(error=f"incomplete: {reason}")
    except KeyboardInterrupt:
        result.update(status=CANCELLED, error="cancelled")
    except Exception as exc:
        result.update(error=_describe(exc))
        _write_traceback(run_dir, exc)
    result["duration_s"] = time.perf_counter() - started
    return result


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and not isinstance(exc, ML4TError | ValueError):
        text += f" (caused by {type(cause).__name__}: {cause})"
    return text


def _write_traceback(run_dir: Path, exc: BaseException) -> None:
    from ml4t.backtest.record.outputs import atomic_write_bytes

    text = "".join(traceback.format_exception(exc))
    cause = exc.__cause__
    if cause is not None and cause.__traceback__ is not None and cause is not exc:
        text += "\n" + "".join(traceback.format_exception(cause))
    with contextlib.suppress(OSError):
        atomic_write_bytes(run_dir / ERROR_FILE, text.encode())


# ------------------------------------------------------------------ local process pool


_stop: Any = None  # the pool's "sweep cancelled" event, in a pool worker process


def init_pool_worker(pids: Any, stop: Any) -> None:
    """Pool initializer: ignore Ctrl-C between tasks, tell the driver our pid, and keep
    the event the driver sets when the sweep is cancelled.

    The driver interrupts running tasks itself (SIGINT to these pids), so a Ctrl-C that
    reaches the whole process group cannot kill an idle worker and break the pool; tasks
    already handed to the pool see the event and return at once.
    """
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pids.put(os.getpid())


def sweep_cancelled() -> bool:
    """True in a pool worker once the driver has cancelled the sweep."""
    return _stop is not None and _stop.is_set()


def cancelled_result(payload: dict[str, Any]) -> dict[str, Any]:
    """The result of a task that never ran because the sweep was cancelled."""
    return {
        "run_id": payload["run_id"],
        "status": CANCELLED,
        "error": "cancelled",
        "metrics": None,
        "duration_s": 0.0,
        "path": payload["run_dir"],
    }


def run_pool_task(payload: dict[str, Any]) -> dict[str, Any]:
    """:func:`run_task` with Ctrl-C enabled while it runs (in a pool worker)."""
    if sweep_cancelled():
        return cancelled_result(payload)
    with interruptible():
        return run_task(payload)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` inside the block (a pool worker ignores it
    between tasks)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
