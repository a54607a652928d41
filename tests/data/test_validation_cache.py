"""The validation cache: a second feed over unchanged files skips the two whole-data
passes and streams exactly the same batches; any change to the files, the config or the
entry itself falls back to a full validation, so a cached answer never hides a violation.

Files are given an mtime in the past (``settled``): the cache stores nothing for files
younger than ``SETTLE_S`` (a file rewritten within the file system's timestamp
resolution could keep its key).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import polars as pl
import pytest

from ml4t.backtest.data import (
    AssetSourceConfig,
    DataRuleViolation,
    FeedConfig,
    ParquetFeed,
)
from ml4t.backtest.data import _assets as assets_module
from ml4t.backtest.data._vcache import SETTLE_S, cache_dir, cache_key
from ml4t.backtest.data.synthetic import SyntheticFrames
from tests.data._feeds import run_feed, write


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own, empty cache directory."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ML4T_CACHE_DIR", str(root))
    return root


class Passes:
    """Counts the whole-data passes AssetData makes (planning counts, row validation)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = {"plan": 0, "validate": 0}
        count_keys, validate = assets_module.AssetData._count_keys, assets_module.AssetData.validate

        def counted_keys(data: assets_module.AssetData) -> tuple[pl.DataFrame, pl.DataFrame]:
            self.count["plan"] += 1
            return count_keys(data)

        def counted_validate(data: assets_module.AssetData, planning: list) -> object:
            self.count["validate"] += 1
            return validate(data, planning)

        monkeypatch.setattr(assets_module.AssetData, "_count_keys", counted_keys)
        monkeypatch.setattr(assets_module.AssetData, "validate", counted_validate)


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Passes:
    return Passes(monkeypatch)


def settled(path: str | Path, age_s: float = 60.0) -> None:
    then = time.time() - age_s
    os.utime(path, (then, then))


def config(path: str, **changes: object) -> FeedConfig:
    return FeedConfig(asset=AssetSourceConfig(path=path), **changes)  # type: ignore[arg-type]


def bars_file(frames: SyntheticFrames, tmp_path: Path) -> str:
    path = write(frames.asset, tmp_path / "bars.parquet")
    settled(path)
    return path


def test_a_second_feed_skips_both_passes_and_streams_the_same_batches(
    frames: SyntheticFrames, tmp_path: Path, passes: Passes, own_cache: Path
) -> None:
    path = bars_file(frames, tmp_path)
    cold = ParquetFeed(config(path))
    cold_report = cold.prepare()
    assert passes.count == {"plan": 1, "validate": 1}
    assert len(list((own_cache / "validation").iterdir())) == 1

    warm = ParquetFeed(config(path))
    assert warm.prepare() == cold_report
    assert passes.count == {"plan": 1, "validate": 1}, "the warm feed read no rows to plan"
    assert (warm.symbols, warm.first_ts, warm.last_ts) == (
        cold.symbols,
        cold.first_ts,
        cold.last_ts,
    )

    cold_batches = run_feed(ParquetFeed(config(path, validation_cache=False))).batches
    warm_batches = run_feed(ParquetFeed(config(path))).batches
    assert len(warm_batches) == len(cold_batches) == cold_report.timestamps
    assert warm_batches == cold_batches


def test_a_changed_file_is_validated_again_and_its_violation_raised(
    frames: SyntheticFrames, tmp_path: Path, passes: Passes
) -> None:
    path = bars_file(frames, tmp_path)
    ParquetFeed(config(path)).prepare()
    bad = frames.asset.with_columns(
        high=pl.when(pl.int_range(pl.len()) == 100).then(pl.col("low") - 1).otherwise("high")
    )
    write(bad, Path(path))
    settled(path, age_s=30.0)  # another mtime than the cached one; same size is possible
    with pytest.raises(DataRuleViolation, match="high_below_low"):
        ParquetFeed(config(path)).prepare()
    assert passes.count["validate"] == 2


def test_another_config_is_another_entry(
    frames: SyntheticFrames, tmp_path: Path, passes: Passes, own_cache: Path
) -> None:
    path = bars_file(frames, tmp_path)
    ParquetFeed(config(path)).prepare()
    first_day = frames.asset["timestamp"].min().date().isoformat()  # type: ignore[union-attr]
    one_day = ParquetFeed(config(path, end=first_day))
    assert one_day.prepare().timestamps < ParquetFeed(config(path)).prepare().timestamps
    assert passes.count["validate"] == 2
    assert len(list((own_cache / "validation").iterdir())) == 2


def test_fresh_files_are_validated_but_not_stored(
    frames: SyntheticFrames, tmp_path: Path, own_cache: Path
) -> None:
    path = write(frames.asset, tmp_path / "bars.parquet")
    assert os.stat(path).st_mtime > time.time() - SETTLE_S
    ParquetFeed(config(path)).prepare()
    assert not (own_cache / "validation").exists()


def test_switched_off_the_cache_is_neither_read_nor_written(
    frames: SyntheticFrames, tmp_path: Path, passes: Passes, own_cache: Path
) -> None:
    path = bars_file(frames, tmp_path)
    for _ in range(2):
        ParquetFeed(config(path, validation_cache=False)).prepare()
    assert passes.count == {"plan": 2, "validate": 2}
    assert not (own_cache / "validation").exists()


def test_a_frame_given_in_python_is_never_cached(
    frames: SyntheticFrames, own_cache: Path, passes: Passes
) -> None:
    for _ in range(2):
        ParquetFeed(FeedConfig(), asset=frames.asset).prepare()
    assert passes.count["validate"] == 2
    assert not (own_cache / "validation").exists()


def test_an_unreadable_entry_is_a_miss_and_is_replaced(
    frames: SyntheticFrames, tmp_path: Path, passes: Passes, own_cache: Path
) -> None:
    path = bars_file(frames, tmp_path)
    report = ParquetFeed(config(path)).prepare()
    (entry,) = (own_cache / "validation").iterdir()
    (entry / "by_ts.parquet").write_bytes(b"not parquet")
    assert ParquetFeed(config(path)).prepare() == report
    assert passes.count["validate"] == 2
    assert ParquetFeed(config(path)).prepare() == report  # the replaced entry is read
    assert passes.count["validate"] == 2


def test_ml4t_validate_checks_every_row_even_with_a_planted_entry(
    frames: SyntheticFrames, tmp_path: Path, own_cache: Path
) -> None:
    """An entry that claims bad files are good (planted by hand) is trusted by a run's
    feed, by design of the key, but never by ``ml4t validate``."""
    from ml4t.backtest._preflight import check_data

    good = bars_file(frames, tmp_path / "good")
    ParquetFeed(config(good)).prepare()
    (entry,) = (own_cache / "validation").iterdir()
    bad_df = frames.asset.with_columns(
        low=pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise("low")
    )
    bad = write(bad_df, tmp_path / "bad" / "bars.parquet")
    settled(bad)
    key = cache_key(config(bad), (Path(bad),))
    assert key is not None
    entry.rename(cache_dir() / key)
    meta = cache_dir() / key / "entry.json"
    meta.write_bytes(msgspec.json.encode({**msgspec.json.decode(meta.read_bytes()), "key": key}))
    ParquetFeed(config(bad)).prepare()  # the planted entry is trusted by a run
    found = check_data(config(bad))
    assert not found.valid
    assert "null_ohlcv" in "\n".join(found.problems)
