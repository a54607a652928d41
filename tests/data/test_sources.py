"""Rules on the files behind a path: validation and the run read the same, readable files.

Every file a directory or glob stands for is listed once (``source_files``), its parquet
footer read and its schema compared with the first file's, before any row is scanned.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import DataValidationError
from ml4t.backtest.cli import main
from ml4t.backtest.data import AssetSourceConfig, FeedConfig, ParquetFeed
from ml4t.backtest.data._source import source_files
from ml4t.backtest.data.synthetic import SyntheticFrames
from tests.data._feeds import write


def two_days(frames: SyntheticFrames) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = frames.asset
    day = pl.col("timestamp").dt.date()
    return df.filter(day == day.min()), df.filter(day != day.min())


def split_dir(frames: SyntheticFrames, root: Path) -> tuple[str, str]:
    """The first day in ``root/a.parquet``, the others in ``root/b.parquet``."""
    first, rest = two_days(frames)
    return write(first, root / "a.parquet"), write(rest, root / "b.parquet")


def fails(where: str) -> str:
    with pytest.raises(DataValidationError) as info:
        ParquetFeed(FeedConfig(), asset=where).prepare()
    return str(info.value)


# --------------------------------------------------------------------------- schemas


def test_naive_file_beside_aware_file_is_rejected_naming_both(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    # a Tokyo wall-clock file: read as UTC it would be published 9 h late
    first, rest = two_days(frames)
    tokyo = rest.with_columns(
        pl.col("timestamp").dt.convert_time_zone("Asia/Tokyo").dt.replace_time_zone(None)
    )
    a = write(first, tmp_path / "d" / "a.parquet")
    b = write(tokyo, tmp_path / "d" / "b.parquet")
    msg = fails(str(tmp_path / "d"))
    assert "rule schema_mismatch" in msg, msg
    assert f"compared with {a}" in msg and f"{b}: column 'timestamp'" in msg, msg
    assert "(naive), but Datetime(time_unit='ns', time_zone='UTC') (timezone-aware)" in msg, msg


def test_file_with_an_extra_column_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    first, rest = two_days(frames)
    write(first, tmp_path / "d" / "a.parquet")
    b = write(rest.with_columns(note=pl.lit("x")), tmp_path / "d" / "b.parquet")
    msg = fails(str(tmp_path / "d"))
    assert f"{b}: extra column 'note' (String)" in msg, msg


def test_file_with_a_missing_column_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    first, rest = two_days(frames)
    write(first, tmp_path / "d" / "a.parquet")
    b = write(rest.drop("atr"), tmp_path / "d" / "b.parquet")
    assert f"{b}: missing column 'atr'" in fails(str(tmp_path / "d"))


def test_file_with_another_dtype_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    first, rest = two_days(frames)
    write(first, tmp_path / "d" / "a.parquet")
    b = write(rest.with_columns(pl.col("volume").cast(pl.Int64)), tmp_path / "d" / "b.parquet")
    msg = fails(str(tmp_path / "d" / "*.parquet"))  # a glob is checked the same way
    assert f"{b}: column 'volume' is Int64, but Float64 there" in msg, msg


def test_string_and_categorical_symbol_files_are_rejected(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    first, rest = two_days(frames)
    write(first, tmp_path / "d" / "a.parquet")
    b = write(
        rest.with_columns(pl.col("symbol").cast(pl.Categorical)), tmp_path / "d" / "b.parquet"
    )
    msg = fails(str(tmp_path / "d"))
    assert f"{b}: column 'symbol' is Categorical, but String there" in msg, msg
    assert "Traceback" not in msg and "SchemaError" not in msg


# --------------------------------------------------------------------------- unreadable files


def test_zero_byte_file_in_directory_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    split_dir(frames, tmp_path / "d")
    empty = tmp_path / "d" / "c.parquet"
    empty.write_bytes(b"")
    msg = fails(str(tmp_path / "d"))
    assert f"rule unreadable_source: asset file {empty} is empty (0 bytes)" in msg, msg


def test_corrupt_parquet_file_in_directory_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    split_dir(frames, tmp_path / "d")
    bad = tmp_path / "d" / "c.parquet"
    bad.write_bytes(b"this is not parquet at all")
    msg = fails(str(tmp_path / "d"))
    assert f"rule unreadable_source: asset file {bad} is not a readable parquet file" in msg


def test_non_parquet_file_in_directory_is_rejected_naming_it(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    split_dir(frames, tmp_path / "d")
    notes = tmp_path / "d" / "notes.txt"
    notes.write_text("downloaded 2023-02-01")
    msg = fails(str(tmp_path / "d"))
    assert "rule unreadable_source" in msg and str(notes) in msg, msg
    assert f"{tmp_path / 'd'}/**/*.parquet" in msg, msg


def test_hidden_and_underscore_files_in_directory_are_skipped(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    a, b = split_dir(frames, tmp_path / "d")
    (tmp_path / "d" / "_SUCCESS").write_bytes(b"")
    (tmp_path / "d" / ".a.parquet.crc").write_bytes(b"\x00")
    assert source_files(tmp_path / "d", role="asset") == [Path(a), Path(b)]
    report = ParquetFeed(FeedConfig(), asset=str(tmp_path / "d")).prepare()
    assert report.rows == frames.asset.height


def test_validate_command_rejects_zero_byte_file_like_the_run(
    frames: SyntheticFrames, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split_dir(frames, tmp_path / "d")
    empty = tmp_path / "d" / "c.parquet"
    empty.write_bytes(b"")
    assert main(["validate", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert f"asset file {empty} is empty (0 bytes)" in err, err


def test_hive_key_above_the_directory_is_not_a_column(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    # data/k=1/hive/day=.../*.parquet: only "day" is a partition of the directory given
    days = frames.asset.with_columns(day=pl.col("timestamp").dt.date().cast(pl.String))
    root = tmp_path / "k=1" / "hive"
    days.write_parquet(root, partition_by="day")
    feed = ParquetFeed(FeedConfig(), asset=str(root))
    feed.prepare()
    assert feed._assets is not None
    names = feed._assets.source.schema.names()
    assert "day" in names and "k" not in names
    assert feed.report is not None and feed.report.rows == frames.asset.height


def test_run_fingerprint_reads_the_files_the_feed_reads(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    # the run's provenance hash once listed *.parquet itself: it read the skipped
    # _tmp.parquet (ArrowInvalid on 0 bytes) and missed the .pq file the feed reads
    from ml4t.backtest.data._source import data_fingerprint

    first, rest = two_days(frames)
    write(first, tmp_path / "d" / "a.parquet")
    pq_file = tmp_path / "d" / "b.pq"
    write(rest, pq_file)
    (tmp_path / "d" / "_tmp.parquet").write_bytes(b"")
    sources = {"asset": str(tmp_path / "d"), "signal_data": None, "context": None}
    before = data_fingerprint(sources)
    # the feed's handshake carries the same fingerprint of the same files
    feed = ParquetFeed(FeedConfig(asset=AssetSourceConfig(path=str(tmp_path / "d"))))
    feed.prepare()
    assert feed.session_started().data_fingerprint == before
    write(rest.head(10), pq_file)
    assert data_fingerprint(sources) != before
