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


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    a = outputs.config_hash({"x": 1, "y": {"z": [1, 2]}})
    assert a == outputs.config_hash({"y": {"z": [1, 2]}, "x": 1})
    assert a != outputs.config_hash({"x": 2, "y": {"z": [1, 2]}})
