"""Atomic result files: a reader never sees a half-written file under its final name.

Every file is written to a temporary name in the same directory (``.<name>.<pid>.tmp``),
flushed and fsynced, then renamed over the final name with ``os.replace`` (atomic on
POSIX), and the directory is fsynced so the rename survives a power cut. A write that is
interrupted (an exception, a second Ctrl-C, a kill) leaves at most a ``*.tmp`` file, which
never looks like a result and is removed by the next run in that directory.

Parquet tables stream into their temporary file one row group at a time
(:class:`ParquetStream`) and are renamed only when the writer is closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

__all__ = [
    "TMP_SUFFIX",
    "ParquetStream",
    "Stopwatch",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_yaml",
    "config_hash",
    "dependency_versions",
    "file_digest",
    "json_safe",
    "peak_memory_mb",
    "remove_stale_temps",
    "temp_path",
    "to_builtins",
]

TMP_SUFFIX = ".tmp"
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


def temp_path(path: Path) -> Path:
    """The temporary name ``path`` is written under: ``.<name>.<pid>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that named ``tmp`` (``.<name>.<pid>.tmp``) is still running."""
    try:
        pid = int(tmp.name[: -len(TMP_SUFFIX)].rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


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
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file that appears at ``path`` only if the block ends normally."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _commit(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_json(path: str | os.PathLike[str], value: Any) -> Path:
    """Write ``value`` as indented JSON (non-finite floats become ``null``)."""
    text = json.dumps(json_safe(value), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def atomic_write_yaml(path: str | os.PathLike[str], value: Any) -> Path:
    text = yaml.safe_dump(json_safe(value), sort_keys=False, allow_unicode=True)
    return atomic_write_bytes(path, text.encode())


def remove_stale_temps(directory: Path) -> list[Path]:
    """Delete the temporary files an interrupted earlier run left in ``directory`` (those
    whose writing process is gone; a live writer's files are left alone)."""
    removed = []
    if directory.is_dir():
        for tmp in directory.glob(f".*{TMP_SUFFIX}"):
            if not _writer_alive(tmp):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


class ParquetStream:
    """A parquet file written one row group at a time, renamed into place on close.

    ``abort()`` (or an exception before ``close``) deletes the temporary file.
    """

    __slots__ = ("_tmp", "_writer", "compression", "path", "rows", "schema")

    def __init__(self, path: Path, schema: pa.Schema, *, compression: str = "zstd") -> None:
        self.path = path
        self.schema = schema
        self.compression = compression
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temp_path(path)
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
