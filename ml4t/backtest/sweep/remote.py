"""A run on another machine: its directory travels back to the driver as plain data.

A Ray task may run on a node whose disk is not the driver's. Whatever it wrote to
``out/runs/<run_id>/`` there would be invisible to the driver: no resume, no files to
open, a table whose ``path`` points at nothing. So a task that finds itself on a node
other than the driver's (:func:`run_ray_task`) writes its run where the driver would
(the same absolute path, so ``config.yaml`` reads as it would locally; a private
directory of the node's temp dir if that path cannot be created there), reads every file
back as ``{relative path: bytes}``, deletes its copy, and returns the files with its
result. The driver writes them to the run's directory (:func:`unpack_run_dir`), replacing
what an earlier attempt left there. A task on the driver's node writes in place.

The files are bytes in a dict, carried by Ray like the rest of the result; nothing of
ours is pickled. They are held in memory on both sides: a run of a few hundred MB is
better written to storage every node mounts (the task then still ships it, and the
driver rewrites it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from ml4t.backtest.errors import ML4TError
from ml4t.backtest.sweep.task import run_task

__all__ = ["RunFiles", "pack_run_dir", "run_ray_task", "unpack_run_dir"]

RunFiles = dict[str, bytes]
_INCOMING = ".incoming"


def run_ray_task(payload: dict[str, Any], driver_node: str | None) -> dict[str, Any]:
    """:func:`~ml4t.backtest.sweep.task.run_task` inside a Ray task.

    ``driver_node`` is the Ray node id of the driver's machine (``None`` when the driver
    is outside the cluster, through Ray Client: then every task ships its files). The
    result says which node ran the task (``node``) and, from another node, carries the
    run's files (``files``).
    """
    import ray

    node = ray.get_runtime_context().get_node_id()
    if node == driver_node:
        return {**run_task(payload), "node": node}
    run_dir = Path(payload["run_dir"])
    local = _writable_run_dir(run_dir, payload["run_id"])
    try:
        result = run_task({**payload, "run_dir": str(local)})
        files = pack_run_dir(local)
    finally:
        shutil.rmtree(local, ignore_errors=True)
    return {**result, "path": str(run_dir), "node": node, "files": files}


def _writable_run_dir(run_dir: Path, run_id: str) -> Path:
    """The driver's path for the run if this node can create it, else a temp directory."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return Path(tempfile.mkdtemp(prefix=f"ml4t-run-{run_id}-"))
    return run_dir


def pack_run_dir(run_dir: Path) -> RunFiles:
    """Every file under ``run_dir`` as ``{posix relative path: bytes}`` (none if absent)."""
    if not run_dir.is_dir():
        return {}
    return {
        path.relative_to(run_dir).as_posix(): path.read_bytes()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


def unpack_run_dir(files: RunFiles, run_dir: Path) -> None:
    """Make ``run_dir`` hold exactly ``files`` (from :func:`pack_run_dir` on a worker).

    The files are written beside it first and swapped in, so that a driver stopped
    half-way leaves the old directory or the new one, never a mixture. A path that
    would land outside ``run_dir`` (absolute, or with ``..``) is refused.
    """
    incoming = run_dir.with_name(run_dir.name + _INCOMING)
    shutil.rmtree(incoming, ignore_errors=True)
    try:
        for name, data in files.items():
            target = incoming / _relative(name, run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        incoming.mkdir(parents=True, exist_ok=True)  # a run that wrote nothing
        shutil.rmtree(run_dir, ignore_errors=True)
        os.replace(incoming, run_dir)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(incoming)


def _relative(name: str, run_dir: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ML4TError(
            f"a worker returned the file {name!r} for run directory {run_dir}; only "
            "relative paths inside the run directory are accepted"
        )
    return path
