"""Where a sweep's tasks run: a local process pool (default) or a Ray cluster.

An executor takes the tasks' payloads (plain data) and calls ``on_result`` in the
driver's thread with each task's result as it finishes, in completion order. On Ctrl-C
(``KeyboardInterrupt`` in the driver) it cancels what has not started, interrupts what is
running (those runs flush their results marked incomplete), hands over any result that
still arrives within ``grace`` seconds, and re-raises.

- :class:`LocalExecutor`: a ``ProcessPoolExecutor`` with the *spawn* start method
  (no forked copies of the driver's threads or locks), ``workers`` processes (default:
  the CPU count).
- :class:`RayExecutor`: one Ray task per backtest (``num_cpus=1``, no retries, spread
  over the nodes). It joins the cluster at ``address`` (``"auto"``, ``"HEAD:6379"``,
  ``"ray://head:10001"``), or starts Ray locally with ``workers`` CPUs; a Ray instance
  the caller already started is used as it is and left running. A task on another node
  than the driver's sends its run directory back (:mod:`~ml4t.backtest.sweep.remote`),
  which the driver writes under ``out_dir``. Ray is imported only here, only when asked
  for (``pip install 'ml4t-backtest[ray]'``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from queue import Empty
from typing import Any, Protocol

from ml4t.backtest.errors import ConfigError, ML4TError
from ml4t.backtest.sweep.remote import run_ray_task, unpack_run_dir
from ml4t.backtest.sweep.task import CANCELLED, FAILED, init_pool_worker, run_pool_task

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor"]

Payload = dict[str, Any]
OnResult = Callable[[dict[str, Any]], None]
GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.25
_ECHO_SECONDS = 1.0


class Executor(Protocol):
    """Runs task payloads, calling ``on_result(result)`` in the caller's thread as each
    finishes; on ``KeyboardInterrupt`` it cancels the rest and re-raises."""

    name: str

    def run(self, payloads: Sequence[Payload], on_result: OnResult) -> None: ...


def make_executor(
    name: str,
    *,
    workers: int | None = None,
    address: str | None = None,
    runtime_env: dict[str, Any] | None = None,
) -> Executor:
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if name == "local":
        if address is not None:
            raise ConfigError("--address is for the ray executor; the local one has no cluster")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, address=address, runtime_env=runtime_env)
    raise ConfigError(f"unknown executor {name!r}; use 'local' or 'ray'")


def _pool_function(payload: Payload) -> Callable[[Payload], Any]:
    """What a pool worker runs for ``payload``: one task, or a group sharing a data pass
    (:mod:`ml4t.backtest.sweep.shared`), whose result is one per task."""
    if "group" in payload:
        from ml4t.backtest.sweep.shared import run_pool_group

        return run_pool_group
    return run_pool_task


def _failure(payload: Payload, error: str) -> dict[str, Any]:
    return {
        "run_id": payload["run_id"],
        "status": FAILED,
        "error": error,
        "metrics": None,
        "duration_s": 0.0,
        "path": payload["run_dir"],
    }


class LocalExecutor:
    """A process pool on this machine, sized to the CPU count by default."""

    name = "local"

    def __init__(self, workers: int | None = None, *, grace: float = GRACE_SECONDS) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.grace = grace

    def run(self, payloads: Sequence[Payload], on_result: OnResult) -> None:
        if not payloads:
            return
        context = multiprocessing.get_context("spawn")
        pids, stop = context.Queue(), context.Event()
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(payloads)),
            mp_context=context,
            initializer=init_pool_worker,
            initargs=(pids, stop),
        )
        futures = {pool.submit(_pool_function(p), p): p for p in payloads}
        pending = set(futures)
        try:
            while pending:
                # a timeout, so that a Ctrl-C taken by another thread still reaches us
                done, _ = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    for result in self._results(future, futures[future]):
                        on_result(result)
        except KeyboardInterrupt:
            stop.set()  # tasks already queued in the pool return without running
            pool.shutdown(wait=False, cancel_futures=True)
            self._stop_running(pending, pids)
            for future in pending:
                if future.done() and not future.cancelled():
                    for result in self._results(future, futures[future]):
                        on_result(result)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            pids.close()
            pids.join_thread()

    def _stop_running(self, pending: set[Future[dict[str, Any]]], pids: Any) -> None:
        """Interrupt the running tasks and wait (``grace`` seconds at most) for them.

        A Ctrl-C at a terminal reached the workers too; a SIGINT sent to the driver alone
        did not, so after a moment we pass it on. A task still running after ``grace``
        seconds is killed: its directory then says ``"complete": false`` (``running``).
        """
        _, running = wait(pending, timeout=_ECHO_SECONDS)
        if not running:
            return
        workers = self._signal_workers(pids, signal.SIGINT)
        _, stuck = wait(running, timeout=self.grace)
        if stuck:
            self._signal_workers(workers, signal.SIGKILL)

    @staticmethod
    def _result(future: Future[dict[str, Any]], payload: Payload) -> dict[str, Any]:
        try:
            return future.result()
        except KeyboardInterrupt:
            return {**_failure(payload, "cancelled"), "status": CANCELLED}
        except Exception as exc:  # a worker died (BrokenProcessPool) or could not start
            return _failure(payload, f"{type(exc).__name__}: {exc}")

    @classmethod
    def _results(cls, future: Future[Any], payload: Payload) -> list[dict[str, Any]]:
        """The results of a task, or of each task of a group sharing a data pass."""
        if "group" not in payload:
            return [cls._result(future, payload)]
        try:
            return list(future.result())
        except KeyboardInterrupt:
            return [{**_failure(p, "cancelled"), "status": CANCELLED} for p in payload["group"]]
        except Exception as exc:  # the worker died: every run of the group with it
            return [_failure(p, f"{type(exc).__name__}: {exc}") for p in payload["group"]]

    @staticmethod
    def _signal_workers(pids: Any, signum: int) -> list[int]:
        """Signal every worker (a queue of pids as they started, or a list).

        SIGINT stops a running task, which flushes its results; idle workers ignore it.
        """
        found = list(pids) if isinstance(pids, list) else []
        while not isinstance(pids, list):
            try:
                found.append(pids.get_nowait())
            except (Empty, OSError, ValueError):
                break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        return found


class RayExecutor:
    """One Ray task per backtest, on a cluster (``address``) or a local Ray."""

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        grace: float = GRACE_SECONDS,
    ) -> None:
        self.workers = workers
        self.address = address
        self.runtime_env = runtime_env
        self.grace = grace

    def run(self, payloads: Sequence[Payload], on_result: OnResult) -> None:
        if not payloads:
            return
        ray = _import_ray()
        owned = not ray.is_initialized()
        if owned:
            self._init(ray)
        try:
            # SPREAD: backtests are CPU- and memory-bound and read their own data, so
            # they go to every node rather than filling the driver's first
            remote = ray.remote(num_cpus=1, max_retries=0, scheduling_strategy="SPREAD")
            driver_node = _driver_node(ray)
            refs = {remote(run_ray_task).remote(p, driver_node): p for p in payloads}
            pending = list(refs)
            try:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1, timeout=_POLL_SECONDS)
                    for ref in done:
                        on_result(self._result(ray, ref, refs[ref]))
            except KeyboardInterrupt:
                for ref in pending:
                    ray.cancel(ref)  # queued: dropped; running: KeyboardInterrupt in the task
                done = []
                if pending:
                    done, _ = ray.wait(pending, num_returns=len(pending), timeout=self.grace)
                for ref in done:
                    result = self._result(ray, ref, refs[ref])
                    if result["status"] != CANCELLED:
                        on_result(result)
                raise
        finally:
            if owned:
                ray.shutdown()

    def _init(self, ray: Any) -> None:
        kwargs: dict[str, Any] = {"runtime_env": self.runtime_env, "logging_level": logging.WARNING}
        if self.address is not None:
            ray.init(address=self.address, **kwargs)
        else:
            ray.init(num_cpus=self.workers, include_dashboard=False, **kwargs)

    @staticmethod
    def _result(ray: Any, ref: Any, payload: Payload) -> dict[str, Any]:
        try:
            result: dict[str, Any] = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return {**_failure(payload, "cancelled"), "status": CANCELLED}
        except ray.exceptions.RayError as exc:  # the worker died, or could not import
            return _failure(payload, f"{type(exc).__name__}: {exc}")
        files = result.pop("files", None)
        result["shipped"] = files is not None
        if files is not None:
            try:
                unpack_run_dir(files, Path(payload["run_dir"]))
            except (OSError, ML4TError) as exc:
                error = f"the run's files from node {result.get('node')} were not written: {exc}"
                return _failure(payload, error)
        return result


def _driver_node(ray: Any) -> str | None:
    """The Ray node id of the driver's machine; ``None`` through Ray Client (the driver
    is outside the cluster, so no node shares its disk)."""
    if ray.util.client.ray.is_connected():
        return None
    node: str = ray.get_runtime_context().get_node_id()
    return node


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "the ray executor needs Ray: pip install 'ml4t-backtest[ray]' (or use the "
            "default local executor)"
        ) from exc
    return ray
