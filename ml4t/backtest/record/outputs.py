"""Atomic result files: a reader never sees a half-written file under its final name.

Every file is written to a temporary name in the same directory, flushed and fsynced,
then renamed over the final name with ``os.replace`` (atomic on POSIX), and the directory
is fsynced so the rename survives a power cut. A write that is interrupted (an exception,
a second Ctrl-C, a kill) leaves at most a temporary file, which never looks like a result.

A run's temporary names carry its run id (:func:`new_run_id`):
``.<name>.ml4t-<run id>.tmp``, e.g. ``.trades.parquet.ml4t-20240102T030405Z-1a2b3c4d.tmp``.
:func:`remove_stale_temps` deletes only names of that exact shape, for the result files
it is told about, and never those of the current run, so a user's own hidden files and a
killed run's partial journal are left alone. Written without a run id (``temp_path(path)``)
a file's temporary name is ``.<name>.<pid>.tmp``, which no cleanup ever matches.

Parquet tables stream into their temporary file one row group at a time
(:class:`ParquetStream`) and are renamed only when the writer is closed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import resource
import secrets
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

__all__ = [
    "MANIFEST_FILE",
    "RUN_ID_PATTERN",
    "TMP_SUFFIX",
    "DirectoryLock",
    "ParquetStream",
    "Stopwatch",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_yaml",
    "clear_previous_outputs",
    "config_hash",
    "dependency_versions",
    "file_digest",
    "json_safe",
    "new_run_id",
    "peak_memory_mb",
    "remove_cleared_outputs",
    "remove_stale_temps",
    "run_temp_name",
    "temp_path",
    "to_builtins",
]

TMP_SUFFIX = ".tmp"
MANIFEST_FILE = "manifest.json"
RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"
_RUN_TAG = "ml4t-"
_CLEARED_SUFFIX = ".old"
_DEPENDENCIES = (
    "ml4t-backtest",
    "anyio",
    "msgspec",
    "numpy",
    "polars",
    "pyarrow",
    "pandas-market-calendars",
    "pyyaml",
    "structlog",
)


def new_run_id() -> str:
    """A fresh run id: the UTC start time and 32 random bits, ``20240102T030405Z-1a2b3c4d``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def temp_path(path: Path, run_id: str | None = None) -> Path:
    """The temporary name ``path`` is written under, beside it.

    ``.<name>.ml4t-<run id>.tmp`` for a run's files; ``.<name>.<pid>.tmp`` without one.
    """
    tag = f"{_RUN_TAG}{run_id}" if run_id is not None else str(os.getpid())
    return path.with_name(f".{path.name}.{tag}{TMP_SUFFIX}")


def run_temp_name(name: str) -> re.Pattern[str]:
    """The pattern of a run's temporary names for the result file ``name``."""
    run_id = rf"(?P<run_id>{RUN_ID_PATTERN})"
    return re.compile(rf"\.{re.escape(name)}\.{_RUN_TAG}{run_id}{re.escape(TMP_SUFFIX)}")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename still happened
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, run_id: str | None = None) -> Iterator[BinaryIO]:
    """Open a binary file that appears at ``path`` only if the block ends normally."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final, run_id)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, run_id: str | None = None
) -> Path:
    with atomic_open(path, run_id=run_id) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_json(
    path: str | os.PathLike[str], value: Any, *, run_id: str | None = None
) -> Path:
    """Write ``value`` as indented JSON (non-finite floats become ``null``)."""
    text = json.dumps(json_safe(value), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode(), run_id=run_id)


def atomic_write_yaml(
    path: str | os.PathLike[str], value: Any, *, run_id: str | None = None
) -> Path:
    text = yaml.safe_dump(json_safe(value), sort_keys=False, allow_unicode=True)
    return atomic_write_bytes(path, text.encode(), run_id=run_id)


def remove_stale_temps(directory: Path, names: Iterable[str], *, run_id: str) -> list[Path]:
    """Delete the temporary files (and folders) earlier runs left for the result files
    ``names``.

    Only names of the exact shape ``.<name>.ml4t-<run id>.tmp`` with another run's id are
    removed: a user's hidden files, a pid-named temporary file and the current run's own
    files are never touched. Leave the journal out of ``names``: a killed run's partial
    journal may be the only copy of what it did.
    """
    patterns = [run_temp_name(name) for name in names]
    removed = []
    if directory.is_dir():
        for tmp in directory.glob(f".*{TMP_SUFFIX}"):
            for pattern in patterns:
                found = pattern.fullmatch(tmp.name)
                if found is not None and found["run_id"] != run_id:
                    if tmp.is_dir() and not tmp.is_symlink():  # a result that is a folder
                        shutil.rmtree(tmp, ignore_errors=True)
                    else:
                        tmp.unlink(missing_ok=True)
                    removed.append(tmp)
                    break
    return removed


def _is_result(path: Path) -> bool:
    """A file, or a folder that is not a symlink (``diagnostic/``)."""
    return path.is_file() or (path.is_dir() and not path.is_symlink())


def clear_previous_outputs(directory: Path, names: Iterable[str], *, run_id: str) -> list[str]:
    """Move the result files (and folders) ``names`` an earlier run left in ``directory``
    out of the way.

    They go into ``.ml4t-<run id>.old/`` (``manifest.json`` first, so no manifest ever
    describes files that are gone), to be deleted by :func:`remove_cleared_outputs` once
    the new run's own manifest is in place. A crash in between leaves a hidden directory
    of that name, which the next run deletes. Returns the names moved.
    """
    present = sorted(
        (name for name in names if _is_result(directory / name)),
        key=lambda name: name != MANIFEST_FILE,
    )
    if not present:
        return []
    holding = directory / f".{_RUN_TAG}{run_id}{_CLEARED_SUFFIX}"
    holding.mkdir()
    for name in present:
        os.replace(directory / name, holding / name)
    _fsync_dir(directory)
    return present


def remove_cleared_outputs(directory: Path) -> None:
    """Delete every ``.ml4t-<run id>.old/`` directory :func:`clear_previous_outputs` made."""
    pattern = re.compile(rf"\.{_RUN_TAG}{RUN_ID_PATTERN}{re.escape(_CLEARED_SUFFIX)}")
    for holding in directory.glob(f".{_RUN_TAG}*{_CLEARED_SUFFIX}"):
        if pattern.fullmatch(holding.name) and holding.is_dir() and not holding.is_symlink():
            shutil.rmtree(holding)


class DirectoryLock:
    """An exclusive, advisory lock on a results directory, held while a run writes to it.

    ``flock`` on the directory itself: no lock file is left behind, and the kernel
    releases the lock when the process dies, however it dies.
    """

    __slots__ = ("_fd", "directory")

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another run (in any process) holds it."""
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock


class ParquetStream:
    """A parquet file written one row group at a time, renamed into place on close.

    ``abort()`` (or an exception before ``close``) deletes the temporary file.
    """

    __slots__ = ("_tmp", "_writer", "compression", "path", "rows", "schema")

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        *,
        compression: str = "zstd",
        run_id: str | None = None,
    ) -> None:
        self.path = path
        self.schema = schema
        self.compression = compression
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path(path, run_id)
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> pq.ParquetWriter:
        writer = pq.ParquetWriter(
            self._tmp,
            self.schema,
            compression=self.compression,
            write_statistics=True,
            store_schema=True,
        )
        self._writer = writer
        return writer

    def write(self, batch: pa.RecordBatch) -> None:
        writer = self._writer or self._open()
        writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> Path:
        """Finish the file and move it to its final name."""
        writer = self._writer or self._open()  # an empty table is still a valid file
        self._writer = None
        try:
            writer.close()
            with open(self._tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            _commit(self._tmp, self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        self._tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- manifest helpers


def to_builtins(value: Any) -> Any:
    """Plain dicts, lists and scalars for a msgspec struct, a mapping or a scalar."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): to_builtins(v) for k, v in value.items()}
    return msgspec.to_builtins(value, str_keys=True)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None (JSON has no inf or NaN)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def config_hash(config: Any) -> str:
    """sha256 of the config's canonical JSON (sorted keys): equal configs, equal hash."""
    canonical = json.dumps(json_safe(to_builtins(config)), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def dependency_versions() -> dict[str, str]:
    """Versions of Python, ml4t and the libraries that shape its results."""
    found = {"python": platform.python_version(), "platform": sys.platform}
    for name in _DEPENDENCIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def peak_memory_mb() -> float:
    """The process's peak resident memory so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Stopwatch:
    """Wall time of a run, for the manifest only: it never touches simulated time."""

    __slots__ = ("_t0", "started_at")

    def __init__(self) -> None:
        self.started_at = datetime.now(UTC).isoformat()
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self._t0

    @staticmethod
    def now_iso() -> str:
        return datetime.now(UTC).isoformat()
