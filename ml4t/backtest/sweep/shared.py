"""Sweep points that share one data pass: read and validate the data once per worker.

Points whose runs read exactly the same batches (equal :func:`feed_key`: the feed config
with the backtest's dates and calendar applied) form a group; :func:`share_groups` splits
each group over the workers, round-robin in plan order (a 16-point grid on 2 workers: two
processes of 8 points, so both cores work and each reads the data once, not 8 times;
round-robin, because neighbouring grid points often cost alike and a contiguous split
would leave one worker with the heavy half). A part of one point, and every point of a
run with a feed plugin, runs alone as before.

In the worker, :func:`run_group` prepares one
:class:`~ml4t.backtest.data._shared.SharedPass` and runs each point's engine in its own
thread and event loop, fed the same batch objects in lock-step; each run has its own
broker, portfolio, risk manager, strategy and recorder, writes its own run directory and
returns the result :func:`~ml4t.backtest.sweep.task.run_task` would. A point that fails
fails alone: it leaves the pass and the others go on. Ctrl-C cancels every run of the
group (each flushes its results marked incomplete) and the group returns their results.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ml4t.backtest.sweep.plan import Task, resolve_task
from ml4t.backtest.sweep.task import (
    cancelled_result,
    execute_task,
    interruptible,
    run_task,
    sweep_cancelled,
)

if TYPE_CHECKING:
    from ml4t.backtest.config import RunConfig
    from ml4t.backtest.data._shared import SharedPass
    from ml4t.backtest.engine import BacktestResults

__all__ = ["feed_key", "run_group", "run_pool_group", "share_groups"]

Payload = dict[str, Any]
_JOIN_SECONDS = 0.25


def feed_key(config: RunConfig) -> bytes | None:
    """What a run's feed depends on, as bytes; None when the run cannot share (a feed
    plugin reads the data its own way)."""
    from ml4t.backtest.engine import feed_config

    if config.plugins.feed:
        return None
    return msgspec.json.encode([feed_config(config), config.backtest.calendar])


def share_groups(
    tasks: Sequence[Task], base: str, runs_dir: Path, log_level: str, *, workers: int
) -> list[Payload]:
    """The payloads of ``tasks`` with the points that can share a data pass grouped:
    a group payload (``{"group": [payload, ...]}``) per part of at least two points."""
    groups: dict[bytes | None, list[Task]] = {}
    for task in tasks:
        groups.setdefault(feed_key(resolve_task(base, task.overrides)), []).append(task)
    payloads: list[Payload] = []
    for key, members in groups.items():
        if key is None:
            payloads += [t.payload(base, runs_dir, log_level) for t in members]
            continue
        parts = max(1, min(workers, len(members)))
        for part in range(parts):
            chosen = [t.payload(base, runs_dir, log_level) for t in members[part::parts]]
            payloads.append(_group(chosen) if len(chosen) > 1 else chosen[0])
    return payloads


def _group(members: list[Payload]) -> Payload:
    return {"group": members, "run_id": members[0]["run_id"], "run_dir": members[0]["run_dir"]}


def run_pool_group(payload: Payload) -> list[dict[str, Any]]:
    """:func:`run_group` in a pool worker: Ctrl-C enabled while it runs."""
    members = payload["group"]
    if sweep_cancelled():
        return [cancelled_result(p) for p in members]
    with interruptible():
        return run_group(members)


def run_group(members: Sequence[Payload]) -> list[dict[str, Any]]:
    """Run every task of ``members`` on one shared data pass; one result per task, in
    order. A ``KeyboardInterrupt`` while they run cancels them all (their results say
    ``cancelled``, unless they had finished)."""
    from ml4t.backtest.data._shared import SharedPass
    from ml4t.backtest.data.calendar import SessionCalendar
    from ml4t.backtest.engine import feed_config
    from ml4t.backtest.logging import configure_logging

    configure_logging(members[0].get("log_level", "warning"))
    try:
        config = resolve_task(members[0]["config"], members[0]["overrides"])
    except Exception:  # each task alone then reports why its config does not resolve
        return [run_task(p) for p in members]
    calendar = SessionCalendar(config.backtest.calendar) if config.backtest.calendar else None
    shared = SharedPass(feed_config(config), calendar=calendar)
    cancel = _Cancel(shared)
    results: list[dict[str, Any] | None] = [None] * len(members)
    tokens = [shared.join() for _ in members]  # all join before any reads a chunk
    finished = [threading.Event() for _ in members]
    threads = [
        threading.Thread(
            target=_member,
            args=(payload, shared, token, cancel, results, finished[i], i),
            name=f"ml4t-sweep-{payload['run_id']}",
            daemon=True,
        )
        for i, (payload, token) in enumerate(zip(members, tokens, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        _join(finished)
    except KeyboardInterrupt:
        cancel.cancel()
        _join_flushing(finished)
    return [
        r if r is not None else cancelled_result(p) for r, p in zip(results, members, strict=True)
    ]


def _join(finished: list[threading.Event]) -> None:
    """Wait until every run has set its event. Not ``Thread.join``: a Ctrl-C that
    interrupts it can leave a running thread marked stopped (CPython before 3.13)."""
    for event in finished:
        while not event.wait(_JOIN_SECONDS):  # a timeout, so that Ctrl-C reaches us
            pass


def _join_flushing(finished: list[threading.Event]) -> None:
    """Wait for the cancelled runs to flush their results. A further interrupt (the driver
    passes Ctrl-C on to its workers) changes nothing: they are already stopping, and the
    driver kills a worker that takes longer than its grace period."""
    while True:
        try:
            _join(finished)
            return
        except KeyboardInterrupt:
            continue


def _member(
    payload: Payload,
    shared: SharedPass,
    token: int,
    cancel: _Cancel,
    results: list[dict[str, Any] | None],
    finished: threading.Event,
    index: int,
) -> None:
    """One task of the group, in its own thread (the result goes to ``results[index]``)."""

    def run(config: RunConfig) -> BacktestResults | None:
        from ml4t.backtest.engine import BacktestEngine, run_session

        feed = shared.feed(token, run_session(config))
        return _run_cancellable(BacktestEngine(config, feed=feed), cancel)

    try:
        results[index] = execute_task(payload, run)
    finally:
        shared.leave(token)  # also when the run never got as far as starting its feed
        finished.set()


def _run_cancellable(engine: Any, cancel: _Cancel) -> BacktestResults | None:
    """Run ``engine`` on a fresh event loop of this thread; :meth:`_Cancel.cancel` (from
    the group's thread) cancels it as Ctrl-C cancels a run alone."""
    import anyio

    async def main() -> BacktestResults | None:
        with anyio.CancelScope() as scope:
            cancel.watch(asyncio.get_running_loop(), scope)
            return await engine.run_async()
        return None

    return anyio.run(main)  # None: cancelled, its results flushed marked incomplete


class _Cancel:
    """Cancels every run of a group, each on its own loop (thread-safe)."""

    def __init__(self, shared: SharedPass) -> None:
        self._shared = shared
        self._lock = threading.Lock()
        self._scopes: list[tuple[asyncio.AbstractEventLoop, Any]] = []
        self.cancelled = False

    def watch(self, loop: asyncio.AbstractEventLoop, scope: Any) -> None:
        with self._lock:
            self._scopes.append((loop, scope))
            if self.cancelled:
                scope.cancel()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            scopes = list(self._scopes)
        self._shared.release()  # a run waiting for the slowest one must get to its checkpoint
        for loop, scope in scopes:
            with contextlib.suppress(RuntimeError):  # that run's loop has already closed
                loop.call_soon_threadsafe(scope.cancel)
