"""ParquetFeed: the batch contract, inputs, chunking, timing options and repairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import ComponentError, DataValidationError, Runtime, WallClock
from ml4t.backtest.data import (
    AssetSourceConfig,
    FeedConfig,
    ParquetFeed,
    Repair,
)
from ml4t.backtest.data.synthetic import INDICATORS, SIGNALS, SyntheticFrames
from ml4t.backtest.testing import capture_logs
from tests.data._feeds import Recorder, run_feed, write

OHLCV = ["open", "high", "low", "close", "volume"]


def asset_config(**kw: object) -> FeedConfig:
    asset = AssetSourceConfig(signals=list(SIGNALS), indicators=list(INDICATORS))
    return FeedConfig(asset=asset, **kw)  # type: ignore[arg-type]


def expected_rows(asset: pl.DataFrame) -> pl.DataFrame:
    """The source as the feed should emit it: known-at ns, sorted by (time, symbol)."""
    return asset.with_columns(pl.col("timestamp").dt.epoch("ns").alias("ts")).sort("ts", "symbol")


def emitted(recorder: Recorder) -> pl.DataFrame:
    """All batches stacked, with their ts_event as a column."""
    return pl.concat(
        [b.frame.with_columns(ts=pl.lit(b.ts_event, pl.Int64)) for b in recorder.batches]
    )


def test_feed_publishes_one_batch_per_timestamp_with_the_contract_columns(
    frames: SyntheticFrames,
) -> None:
    feed = ParquetFeed(asset_config(), asset=frames.asset)
    rec = run_feed(feed)
    want = expected_rows(frames.asset)
    times = want["ts"].unique(maintain_order=True).to_list()
    assert [b.ts_event for b in rec.batches] == times
    assert [b.ts_init for b in rec.batches] == times
    assert rec.clock_times == times
    symbols = tuple(sorted(frames.asset["symbol"].unique().to_list()))
    assert feed.symbols == symbols
    assert feed.signal_columns == SIGNALS and feed.indicator_columns == INDICATORS
    assert (feed.first_ts, feed.last_ts) == (times[0], times[-1])
    expected_schema = {"symbol": pl.Enum(list(symbols))} | dict.fromkeys(
        [*OHLCV, *SIGNALS, *INDICATORS], pl.Float64
    )
    for batch in rec.batches:
        assert dict(batch.frame.schema) == expected_schema
        assert batch.frame["symbol"].dtype == feed.symbol_dtype
        codes = batch.frame["symbol"].to_physical().to_numpy()
        assert np.all(np.diff(codes.astype(int)) > 0)
        assert batch.context == {}
    got = emitted(rec).with_columns(pl.col("symbol").cast(pl.String))
    assert got.select(want.columns[1:]).equals(want.select(got.select(want.columns[1:]).columns))
    assert feed.rows_published == frames.asset.height


def test_batch_frames_are_zero_copy_slices_of_one_chunk(frames: SyntheticFrames) -> None:
    rec = run_feed(ParquetFeed(asset_config(), asset=frames.asset))
    first = rec.batches[0].frame["close"].to_numpy(allow_copy=False)
    second = rec.batches[1].frame["close"].to_numpy(allow_copy=False)
    address = first.__array_interface__["data"][0]
    # the second batch's values start right after the first's, in the same buffer: no copy
    assert second.__array_interface__["data"][0] == address + first.nbytes


def test_every_input_kind_gives_the_same_batches(frames: SyntheticFrames, tmp_path: Path) -> None:
    asset = frames.asset
    single = write(asset, tmp_path / "one.parquet")
    days = asset.with_columns(day=pl.col("timestamp").dt.date().cast(pl.String))
    for day, part in days.partition_by("day", as_dict=True).items():
        write(part.drop("day"), tmp_path / "glob" / f"{day[0]}.parquet")
    days.write_parquet(tmp_path / "hive", partition_by="day")
    reference = emitted(run_feed(ParquetFeed(asset_config(), asset=asset)))
    for where in (
        single,
        str(tmp_path / "glob" / "*.parquet"),
        str(tmp_path / "hive"),
        asset.lazy(),
    ):
        got = emitted(run_feed(ParquetFeed(asset_config(), asset=where)))
        assert got.equals(reference), where


def test_path_in_config_is_used_when_no_frame_is_passed(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    path = write(frames.asset, tmp_path / "bars.parquet")
    cfg = FeedConfig(asset=AssetSourceConfig(path=path))
    rec = run_feed(ParquetFeed(cfg))
    assert list(rec.batches[0].frame.columns) == ["symbol", *OHLCV]


def test_small_memory_budget_gives_many_chunks_and_identical_batches(
    frames: SyntheticFrames,
) -> None:
    big = ParquetFeed(asset_config(), asset=frames.asset)
    small = ParquetFeed(asset_config(chunk_memory_mb=0.05), asset=frames.asset)
    reference = emitted(run_feed(big))
    got = emitted(run_feed(small))
    assert len(small._assets.plan) > 10 and len(big._assets.plan) == 1  # type: ignore[union-attr]
    assert max(small._assets.plan.rows) * 100 <= 0.05 * 1024 * 1024  # type: ignore[union-attr]
    assert got.equals(reference)


def test_start_and_end_restrict_the_batches(frames: SyntheticFrames) -> None:
    cfg = asset_config(start="2023-01-04T15:00:00+00:00", end="2023-01-04")
    rec = run_feed(ParquetFeed(cfg, asset=frames.asset))
    times = [b.ts_event for b in rec.batches]
    assert times[0] == pl.datetime(2023, 1, 4, 15, time_zone="UTC").dt.epoch("ns").pipe(
        lambda e: pl.select(e).item()
    )
    assert (
        pl.select(pl.lit(times[-1]).cast(pl.Datetime("ns", "UTC"))).item().date().isoformat()
        == "2023-01-04"
    )


def test_start_labelled_bars_are_published_one_interval_later(frames: SyntheticFrames) -> None:
    labelled = frames.asset.with_columns(pl.col("timestamp") - pl.duration(minutes=1))
    cfg = FeedConfig(asset=AssetSourceConfig(bar_label="start", bar_interval="1m"))
    rec = run_feed(ParquetFeed(cfg, asset=labelled))
    assert rec.batches[0].ts_event == frames.asset["timestamp"].dt.epoch("ns").min()
    assert rec.batches[-1].ts_event == frames.asset["timestamp"].dt.epoch("ns").max()


def test_naive_timestamps_are_read_in_the_configured_timezone(frames: SyntheticFrames) -> None:
    naive = frames.asset.with_columns(
        pl.col("timestamp").dt.convert_time_zone("America/New_York").dt.replace_time_zone(None)
    )
    cfg = FeedConfig(asset=AssetSourceConfig(timezone="America/New_York"))
    rec = run_feed(ParquetFeed(cfg, asset=naive))
    assert rec.batches[0].ts_event == frames.asset["timestamp"].dt.epoch("ns").min()


def test_symbols_in_config_restrict_the_universe(frames: SyntheticFrames) -> None:
    cfg = FeedConfig(asset=AssetSourceConfig(symbols=["AAC", "AAA"]))
    feed = ParquetFeed(cfg, asset=frames.asset)
    rec = run_feed(feed)
    assert feed.symbols == ("AAA", "AAC")
    assert all(b.frame["symbol"].cast(pl.String).to_list() == ["AAA", "AAC"] for b in rec.batches)


def test_unsorted_data_is_sorted_when_the_sort_repair_is_chosen(frames: SyntheticFrames) -> None:
    shuffled = frames.asset.sample(fraction=1.0, shuffle=True, seed=3)
    cfg = asset_config(repair=[Repair.SORT])
    with capture_logs() as logs:
        feed = ParquetFeed(cfg, asset=shuffled)
        got = emitted(run_feed(feed))
    reference = emitted(run_feed(ParquetFeed(asset_config(), asset=frames.asset)))
    assert got.equals(reference)
    assert feed.repairs["sort"] > 0
    assert any(e["event"] == "data_repaired" and e["repairs"]["sort"] > 0 for e in logs)


def test_batches_survive_the_codec_in_strict_mode(frames: SyntheticFrames) -> None:
    asset = frames.asset.filter(
        pl.col("timestamp") < pl.col("timestamp").min() + pl.duration(minutes=30)
    )
    rec = run_feed(ParquetFeed(asset_config(), asset=asset), strict=True)
    direct = run_feed(ParquetFeed(asset_config(), asset=asset))
    assert rec.batches == direct.batches


def test_feed_replays_on_a_wall_clock(frames: SyntheticFrames) -> None:
    asset = frames.asset.filter(
        pl.col("timestamp") < pl.col("timestamp").min() + pl.duration(minutes=20)
    )
    first = asset["timestamp"].dt.epoch("ns").min()
    runtime = Runtime(clock=WallClock(speed=1e6, origin_ns=first), dispatch="concurrent")
    runtime.add(ParquetFeed(FeedConfig(), asset=asset))
    rec = runtime.add(Recorder())
    runtime.run_sync()
    assert [b.ts_event for b in rec.batches] == asset["timestamp"].dt.epoch(
        "ns"
    ).unique().sort().to_list()


@pytest.mark.anyio
async def test_feed_runs_inside_an_async_caller(frames: SyntheticFrames) -> None:
    runtime = Runtime()
    feed = runtime.add(ParquetFeed(FeedConfig(), asset=frames.asset))
    rec = runtime.add(Recorder())
    await runtime.run()
    assert len(rec.batches) == frames.asset["timestamp"].n_unique()
    assert feed.report is not None and feed.report.rows == frames.asset.height


def test_prepare_before_start_exposes_the_universe_and_a_report(frames: SyntheticFrames) -> None:
    feed = ParquetFeed(asset_config(), asset=frames.asset)
    report = feed.prepare()
    assert feed.symbols == tuple(sorted(frames.asset["symbol"].unique()))
    assert report.rows == frames.asset.height and report.timestamps == 1170
    again = ParquetFeed(asset_config(), asset=frames.asset, validated=report)
    assert emitted(run_feed(again)).height == frames.asset.height


def test_daily_bars_labelled_by_date_are_known_at_the_close(frames: SyntheticFrames) -> None:
    daily = (
        frames.asset.group_by(pl.col("timestamp").dt.date().alias("date"), "symbol")
        .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
             pl.col("close").last(), pl.col("volume").sum())
        .sort("date", "symbol")
    )  # fmt: skip
    asset = AssetSourceConfig(
        timestamp_column="date", bar_label="start", bar_interval="16h", timezone="America/New_York"
    )
    rec = run_feed(ParquetFeed(FeedConfig(asset=asset), asset=daily))
    closes = frames.context.group_by(pl.col("timestamp").dt.date().alias("d")).agg(
        pl.col("timestamp").max()
    )
    assert [b.ts_event for b in rec.batches] == closes.sort("timestamp")["timestamp"].dt.epoch(
        "ns"
    ).to_list()


def test_date_labels_without_a_shift_are_rejected(frames: SyntheticFrames) -> None:
    daily = frames.asset.with_columns(pl.col("timestamp").dt.date())
    cfg = FeedConfig(asset=AssetSourceConfig(timezone="America/New_York"))
    with pytest.raises(DataValidationError, match=r"\[wrong_type\].*bar_label: start"):
        ParquetFeed(cfg, asset=daily).prepare()


def test_unsorted_data_without_validation_stops_the_run_instead_of_misordering(
    frames: SyntheticFrames,
) -> None:
    swapped = pl.concat(
        [frames.asset[:10], frames.asset[11:12], frames.asset[10:11], frames.asset[12:]]
    )
    with pytest.raises(ComponentError, match=r"\[unsorted\]") as info:
        run_feed(ParquetFeed(FeedConfig(validate=False), asset=swapped))
    assert isinstance(info.value.__cause__, DataValidationError)


def test_repairs_while_streaming_without_validation_are_still_reported(
    frames: SyntheticFrames,
) -> None:
    doubled = pl.concat([frames.asset, frames.asset[:3]]).sort("timestamp", "symbol")
    feed = ParquetFeed(FeedConfig(validate=False, repair=[Repair.DROP_DUPLICATES]), asset=doubled)
    with capture_logs() as logs:
        rec = run_feed(feed)
    assert sum(b.frame.height for b in rec.batches) == frames.asset.height
    assert feed.repairs == {"drop_duplicates": 3}
    assert any(e["event"] == "data_repaired" for e in logs)


def test_batch_numpy_columns_and_codes_are_read_only_views_of_the_chunk(
    frames: SyntheticFrames,
) -> None:
    rec = run_feed(ParquetFeed(asset_config(), asset=frames.asset))
    first, second = rec.batches[0], rec.batches[1]
    for batch in (first, second):
        codes = batch.symbol_codes()
        assert codes.dtype == np.intp and not codes.flags.writeable
        assert codes.tolist() == batch.frame["symbol"].to_physical().to_list()
        for name in [*OHLCV, *SIGNALS, *INDICATORS]:
            values = batch.numpy(name)
            assert np.shares_memory(values, batch.numpy(name)), "converted once per chunk"
            assert not values.flags.writeable
            np.testing.assert_array_equal(values, batch.frame[name].to_numpy())
    # one chunk-level buffer: the second batch's closes follow the first's in memory
    a, b = first.numpy("close"), second.numpy("close")
    assert b.__array_interface__["data"][0] == a.__array_interface__["data"][0] + a.nbytes


def test_strict_batches_read_their_columns_from_the_decoded_frame(
    frames: SyntheticFrames,
) -> None:
    """A batch that crossed the codec keeps no view of the feed's chunk: its columns and
    codes come from its own frame and bytes, with the same values."""
    plain = run_feed(ParquetFeed(asset_config(), asset=frames.asset))
    strict = run_feed(ParquetFeed(asset_config(), asset=frames.asset), strict=True)
    assert len(plain.batches) == len(strict.batches)
    for ours, decoded in zip(plain.batches[:50], strict.batches[:50], strict=True):
        assert ours == decoded
        assert decoded.symbol_codes().tolist() == ours.symbol_codes().tolist()
        for name in ("open", "close", "volume", SIGNALS[0]):
            np.testing.assert_array_equal(decoded.numpy(name), ours.numpy(name))


def test_the_feed_reads_sessions_from_the_run_calendar_it_is_given(
    frames: SyntheticFrames,
) -> None:
    """The engine's calendar is the feed's too (its schedules are computed once per
    run); a calendar of another exchange than the data's is not used for the data."""
    from ml4t.backtest.data._assets import AssetData
    from ml4t.backtest.data.calendar import SessionCalendar

    nyse = SessionCalendar("NYSE")
    config = asset_config(calendar="NYSE")
    assert AssetData(config, frames.asset, nyse).calendar is nyse
    other = AssetData(config, frames.asset, SessionCalendar("XLON")).calendar
    assert other is not None and other.name == "NYSE"
    feed = ParquetFeed(config, asset=frames.asset, calendar=nyse)
    feed.prepare()
    assert feed.session_started().sessions_per_year == nyse.sessions_per_year(feed.first_ts or 0)
