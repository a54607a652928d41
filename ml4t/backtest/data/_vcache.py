"""The validation cache: what a whole-data pass learned about unchanged files, kept.

Before its first event a feed reads every asset row twice over: once to learn the
universe and the rows per timestamp (the chunk plan), once to run every row rule. For a
year of minute bars that is most of the time to first event, and a user iterating on a
strategy pays it again on every run of the same files. When the files, the feed config
and the validation code are all unchanged, both passes give the same answer, so the
answer is kept: the per-symbol and per-timestamp row counts (the plan is rebuilt from
them), the CSV files' time spans and the :class:`ValidationReport`.

The key is the sha256 of, together:

- every asset file's absolute path, size and modification time (ns), stored only once
  the newest file is :data:`SETTLE_S` old;
- the feed config as canonical JSON (paths, dates, symbols, repairs, calendar, rules);
- the source of the ``ml4t.backtest.data`` package (so an edited rule invalidates it),
  the versions of polars and pandas_market_calendars, and :data:`FORMAT`.

Only a data set that passed validation is stored, so a hit never hides a violation:
a file that changed has another key and is validated again. A frame given in Python has
no files to fingerprint and is never cached. Entries are written to a temporary
directory and renamed into place (a reader sees a whole entry or none), read with
strict schemas, and an entry that cannot be read is treated as a miss and replaced.

The directory is ``$ML4T_CACHE_DIR/validation``, else ``$XDG_CACHE_HOME/ml4t/validation``,
else ``~/.cache/ml4t/validation``; ``data.validation_cache: false`` turns the cache off
and ``ml4t validate`` never reads it. Deleting the directory is always safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NamedTuple

import msgspec
import polars as pl

from ml4t.backtest.data.config import FeedConfig
from ml4t.backtest.data.validation import ValidationReport
from ml4t.backtest.errors import ML4TError
from ml4t.backtest.logging import get_logger

__all__ = ["FORMAT", "Entry", "cache_dir", "cache_key", "load_entry", "save_entry"]

FORMAT = 1
"""Bumped whenever what an entry holds changes meaning."""

SETTLE_S = 2.0
"""Files modified less than this long ago are validated but not cached."""

_META = "entry.json"
_BY_SYMBOL = "by_symbol.parquet"
_BY_TS = "by_ts.parquet"
_log = get_logger("ml4t.backtest.data")


class _BadEntry(ML4TError):
    """An entry on disk that is not what this version writes (never leaves this module)."""


class _Meta(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    format: int
    key: str
    report: ValidationReport
    file_spans: dict[str, tuple[int, int]]


class Entry(NamedTuple):
    """What the two whole-data passes learned (see ``AssetData.plan_chunks``)."""

    by_symbol: pl.DataFrame  # symbol (String), len
    by_ts: pl.DataFrame  # __ts (Int64, nulls kept), len
    file_spans: dict[Path, tuple[int, int]]
    report: ValidationReport


def cache_dir() -> Path:
    """Where entries live (see the module docstring)."""
    root = os.environ.get("ML4T_CACHE_DIR")
    if root:
        return Path(root) / "validation"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ml4t" / "validation"


@cache
def _code_digest() -> str:
    """sha256 of the data package's source and of the libraries that shape its answers."""
    digest = hashlib.sha256(f"format={FORMAT}".encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for dist in ("polars", "pandas_market_calendars"):
        try:
            digest.update(f"{dist}={version(dist)}".encode())
        except PackageNotFoundError:
            digest.update(f"{dist}=none".encode())
    return digest.hexdigest()


def cache_key(config: FeedConfig, files: tuple[Path, ...]) -> str | None:
    """The entry's key for these files under ``config``; None when a file is missing."""
    digest = hashlib.sha256(_code_digest().encode())
    digest.update(msgspec.json.encode(msgspec.to_builtins(config), order="sorted"))
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return None
        digest.update(f"\0{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_entry(key: str) -> Entry | None:
    """The entry stored under ``key``, or None (absent, or unreadable: then removed)."""
    where = cache_dir() / key
    if not where.is_dir():
        return None
    try:
        meta = msgspec.json.decode((where / _META).read_bytes(), type=_Meta)
        if meta.format != FORMAT or meta.key != key:
            raise _BadEntry(f"entry format {meta.format} for key {meta.key[:12]}")
        by_symbol = _counts(pl.read_parquet(where / _BY_SYMBOL), "symbol", pl.String)
        by_ts = _counts(pl.read_parquet(where / _BY_TS), "__ts", pl.Int64)
    except (OSError, _BadEntry, msgspec.DecodeError, pl.exceptions.PolarsError) as exc:
        _log.warning("validation_cache_unreadable", entry=str(where), error=str(exc))
        shutil.rmtree(where, ignore_errors=True)
        return None
    spans = {Path(f): (lo, hi) for f, (lo, hi) in meta.file_spans.items()}
    return Entry(by_symbol, by_ts, spans, meta.report)


def _counts(df: pl.DataFrame, key: str, dtype: pl.DataType | type[pl.DataType]) -> pl.DataFrame:
    """A stored count table, checked: the key column of ``dtype`` and an integer ``len``."""
    if df.columns != [key, "len"] or df[key].dtype != dtype or not df["len"].dtype.is_integer():
        raise _BadEntry(f"count table with schema {dict(df.schema)}")
    return df


def save_entry(key: str, entry: Entry, files: tuple[Path, ...]) -> None:
    """Store ``entry`` under ``key``; a failure to write is logged, never raised (the
    cache only ever saves time).

    Nothing is stored while a file is younger than :data:`SETTLE_S`: a file rewritten
    within the file system's timestamp resolution, with the same size, would keep its
    key, so only files that have settled are trusted (git's "racy" rule)."""
    newest = max((f.stat().st_mtime for f in files if f.exists()), default=0.0)
    if newest > time.time() - SETTLE_S:
        return
    root = cache_dir()
    final = root / key
    meta = _Meta(
        format=FORMAT,
        key=key,
        report=entry.report,
        file_spans={str(f): span for f, span in entry.file_spans.items()},
    )
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", dir=root))
        entry.by_symbol.write_parquet(tmp / _BY_SYMBOL)
        entry.by_ts.write_parquet(tmp / _BY_TS)
        (tmp / _META).write_bytes(msgspec.json.encode(meta))
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # another process stored the same entry first: fine
                raise
        else:
            tmp = None
    except OSError as exc:
        _log.warning("validation_cache_not_written", entry=str(final), error=str(exc))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
