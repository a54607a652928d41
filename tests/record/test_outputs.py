"""Atomic result files: an interrupted write never leaves a file that looks complete."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml4t.backtest.record import outputs
from ml4t.backtest.record.tables import TableBuffer


class Boom(Exception):
    pass


def test_atomic_open_publishes_the_file_only_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text('{"old": true}')
    with pytest.raises(Boom), outputs.atomic_open(target) as handle:
        handle.write(b'{"new": ')
        raise Boom
    assert json.loads(target.read_text()) == {"old": True}  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    outputs.atomic_write_json(target, {"new": float("nan"), "inf": float("inf")})
    assert json.loads(target.read_text()) == {"new": None, "inf": None}


def test_a_parquet_stream_is_invisible_until_closed(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64())])
    stream = outputs.ParquetStream(tmp_path / "t.parquet", schema)
    stream.write(pa.RecordBatch.from_pydict({"x": [1, 2]}, schema=schema))
    assert not (tmp_path / "t.parquet").exists()
    (tmp,) = tmp_path.iterdir()
    assert tmp.name.startswith(".t.parquet.") and tmp.name.endswith(".tmp")
    stream.write(pa.RecordBatch.from_pydict({"x": [3]}, schema=schema))
    stream.close()
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    table = pq.ParquetFile(tmp_path / "t.parquet")
    assert table.metadata.num_row_groups == 2 and table.read()["x"].to_pylist() == [1, 2, 3]


def test_an_aborted_parquet_stream_leaves_nothing(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64())])
    stream = outputs.ParquetStream(tmp_path / "t.parquet", schema)
    stream.write(pa.RecordBatch.from_pydict({"x": [1]}, schema=schema))
    stream.abort()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_table_is_still_a_valid_file(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.float64())])
    buffer = TableBuffer("empty", schema, output_dir=tmp_path, row_group_size=10)
    buffer.close()
    assert pq.read_table(tmp_path / "empty.parquet").schema == schema


def test_table_buffers_flush_a_row_group_every_n_rows(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
    buffer = TableBuffer("t", schema, output_dir=tmp_path, row_group_size=3)
    for i in range(7):
        buffer.append((i, str(i)))
    assert buffer.rows == 6 and buffer.pending == 1
    buffer.close()
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [3, 3, 1]


def test_a_row_of_the_wrong_width_fails_its_flush_and_writes_nothing(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
    buffer = TableBuffer("t", schema, output_dir=tmp_path, row_group_size=10)
    buffer.append((1, "a"))
    buffer.append((2,))
    with pytest.raises(ValueError):
        buffer.flush()
    assert buffer.rows == 0


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    a = outputs.config_hash({"x": 1, "y": {"z": [1, 2]}})
    assert a == outputs.config_hash({"y": {"z": [1, 2]}, "x": 1})
    assert a != outputs.config_hash({"x": 2, "y": {"z": [1, 2]}})


# ------------------------------------------------------------------ run ownership

OTHER_RUN = "20240102T030405Z-1a2b3c4d"


def test_stale_temp_cleanup_removes_only_other_runs_temps_named_with_their_run_id(
    tmp_path: Path,
) -> None:
    own = outputs.new_run_id()
    stale = outputs.temp_path(tmp_path / "trades.parquet", OTHER_RUN)
    keep = {
        "own": outputs.temp_path(tmp_path / "trades.parquet", own),  # this run is writing it
        "journal": outputs.temp_path(tmp_path / "journal.ml4tj", OTHER_RUN),  # a killed run's
        "pid-named": tmp_path / ".trades.parquet.4711.tmp",  # no run id: not provably ours
        "user": tmp_path / ".notes.tmp",  # the user's own hidden file
        "unknown name": outputs.temp_path(tmp_path / "mine.parquet", OTHER_RUN),
        "not a run id": tmp_path / ".trades.parquet.ml4t-yesterday.tmp",
    }
    for path in (stale, *keep.values()):
        path.write_bytes(b"x")
    assert stale.name == f".trades.parquet.ml4t-{OTHER_RUN}.tmp"

    removed = outputs.remove_stale_temps(tmp_path, ["trades.parquet", "metrics.json"], run_id=own)

    assert removed == [stale] and not stale.exists()
    assert {name: path.exists() for name, path in keep.items()} == dict.fromkeys(keep, True)


def test_clearing_moves_the_previous_runs_results_away_and_leaves_other_files(
    tmp_path: Path,
) -> None:
    for name in ("trades.parquet", "metrics.json", "manifest.json", "notes.txt"):
        (tmp_path / name).write_text(name)
    run_id = outputs.new_run_id()
    names = ["trades.parquet", "fills.parquet", "metrics.json", "manifest.json"]

    moved = outputs.clear_previous_outputs(tmp_path, names, run_id=run_id)

    assert moved == ["manifest.json", "trades.parquet", "metrics.json"]  # the manifest first
    holding = tmp_path / f".ml4t-{run_id}.old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [holding.name, "notes.txt"]
    assert (holding / "trades.parquet").read_text() == "trades.parquet"
    (tmp_path / ".ml4t-holiday.old").mkdir()  # not a run id: not ours
    outputs.remove_cleared_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ml4t-holiday.old", "notes.txt"]


def test_a_directory_lock_is_refused_to_a_second_holder_until_released(tmp_path: Path) -> None:
    first, second = outputs.DirectoryLock(tmp_path), outputs.DirectoryLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert list(tmp_path.iterdir()) == []  # no lock file is left behind
