"""One test per validation rule, each on a deliberately broken parquet file.

Every message must name the rule, the file, the column, the count of offending rows and
the first offending rows (known-at timestamp, symbol, values).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest import DataValidationError
from ml4t.backtest.data import (
    AssetSourceConfig,
    ContextSourceConfig,
    DataRuleViolation,
    FeedConfig,
    OutsideSession,
    ParquetFeed,
    Repair,
    SignalSourceConfig,
)
from ml4t.backtest.data.synthetic import SyntheticFrames
from tests.data._feeds import run_feed, write

ROWS = [7, 1203, 4000]  # the rows each test breaks
TS_COL = "timestamp"


def broken(frames: SyntheticFrames, tmp_path: Path, **changes: pl.Expr) -> tuple[str, pl.DataFrame]:
    """The asset frame with ``changes`` applied to ROWS, written to a parquet file."""
    hit = pl.int_range(pl.len()).is_in(ROWS)
    df = frames.asset.with_columns(
        **{col: pl.when(hit).then(expr).otherwise(pl.col(col)) for col, expr in changes.items()}
    )
    return write(df, tmp_path / "bars.parquet"), df


def first_bad(df: pl.DataFrame) -> str:
    row = df.row(ROWS[0], named=True)
    return f"timestamp={row['timestamp'].isoformat()} symbol={row['symbol']}"


def fails(where: object, config: FeedConfig | None = None, **sources: object) -> str:
    feed = ParquetFeed(config or FeedConfig(), asset=where, **sources)  # type: ignore[arg-type]
    with pytest.raises(DataValidationError) as info:
        feed.prepare()
    return str(info.value)


def assert_names(message: str, rule: str, column: str, count: int | None, *parts: str) -> None:
    assert f"[{rule}]" in message, message
    assert f"column {column!r}" in message, message
    if count is not None:
        assert f"{count} row(s)" in message, message
    for part in parts:
        assert part in message, message


def test_missing_ohlcv_column_is_named(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.asset.drop("volume"), tmp_path / "bars.parquet")
    msg = fails(path)
    assert_names(msg, "missing_column", "volume", frames.asset.height, path)


def test_configured_signal_column_absent_is_named(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.asset, tmp_path / "bars.parquet")
    cfg = FeedConfig(asset=AssetSourceConfig(signals=["alpha_42"]))
    assert_names(fails(path, cfg), "missing_column", "alpha_42", None, path)


def test_wrong_type_is_named_with_values(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.asset.with_columns(pl.col("close").cast(pl.String)), tmp_path / "b.parquet")
    msg = fails(path)
    assert_names(msg, "wrong_type", "close", frames.asset.height, "expected a number", "close='")


def test_naive_timestamps_are_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    naive = frames.asset.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    path = write(naive, tmp_path / "bars.parquet")
    msg = fails(path)
    assert_names(msg, "naive_timestamp", "timestamp", frames.asset.height, "timezone", "timestamp=")


def test_empty_range_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.asset, tmp_path / "bars.parquet")
    msg = fails(path, FeedConfig(start="2030-01-01"))
    assert_names(msg, "empty", "timestamp", 0, "2030-01-01")


def test_null_symbol_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, _ = broken(frames, tmp_path, symbol=pl.lit(None, pl.String))
    assert_names(fails(path), "null_key", "symbol", 3)


def test_null_ohlcv_is_rejected_with_rows(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, low=pl.lit(None, pl.Float64))
    assert_names(fails(path), "null_ohlcv", "low", 3, first_bad(df), "low=None", path)


def test_duplicate_rows_are_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    df = frames.asset
    dup = pl.concat([df, df[ROWS]]).sort("timestamp", "symbol", maintain_order=True)
    path = write(dup, tmp_path / "bars.parquet")
    assert_names(fails(path), "duplicate", "symbol", 3, first_bad(df), path)


def test_unsorted_rows_are_rejected_without_the_sort_repair(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    df = frames.asset
    swapped = pl.concat([df[:10], df[11:12], df[10:11], df[12:]])
    path = write(swapped, tmp_path / "bars.parquet")
    row = df.row(10, named=True)
    msg = fails(path)
    assert_names(msg, "unsorted", "timestamp", 1, f"symbol={row['symbol']}", "'sort'")


def test_high_below_low_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, high=pl.col("low") - 1.0)
    msg = fails(path)
    assert_names(msg, "high_below_low", "high", 3, first_bad(df), "high=", "low=")


def test_open_outside_range_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, open=pl.col("high") * 1.5)
    assert_names(fails(path), "outside_range", "open", 3, first_bad(df), "open=")


def test_close_outside_range_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, close=pl.col("low") * 0.5)
    assert_names(fails(path), "outside_range", "close", 3, first_bad(df), "close=")


def test_negative_volume_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, volume=pl.lit(-5.0))
    assert_names(fails(path), "negative", "volume", 3, first_bad(df), "volume=-5.0")


def test_negative_price_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, low=pl.lit(-1.0))
    assert_names(fails(path), "negative", "low", 3, first_bad(df), "low=-1.0")


def test_listed_symbol_without_rows_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.asset, tmp_path / "bars.parquet")
    cfg = FeedConfig(asset=AssetSourceConfig(symbols=["AAA", "ZZZ"]))
    assert_names(fails(path, cfg), "symbol_without_rows", "symbol", 1, "symbol=ZZZ")


def test_bars_outside_sessions_are_rejected_when_asked(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    night = frames.asset.with_columns(pl.col("timestamp") + pl.duration(hours=8))
    path = write(night, tmp_path / "bars.parquet")
    cfg = FeedConfig(calendar="NYSE", outside_session=OutsideSession.REJECT)
    assert_names(fails(path, cfg), "outside_session", "timestamp", None, "outside_session: drop")


def test_missing_source_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.parquet")
    assert "missing_source" in fails(missing) and missing in fails(missing)


def test_context_with_duplicate_timestamps_is_rejected(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    ctx = pl.concat([frames.context, frames.context[:2]])
    path = write(ctx, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    msg = fails(frames.asset, cfg, context=path)
    assert_names(msg, "duplicate", "timestamp", 4, path)


def test_context_field_absent_is_named(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.context, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix", "rates"]))
    assert_names(fails(frames.asset, cfg, context=path), "missing_column", "rates", None, path)


def test_all_broken_rules_are_reported_in_one_error(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    path, _ = broken(frames, tmp_path, high=pl.col("low") - 1.0, volume=pl.lit(-1.0))
    feed = ParquetFeed(FeedConfig(), asset=path)
    with pytest.raises(DataRuleViolation) as info:
        feed.prepare()
    rules = {(v.rule, v.column) for v in info.value.violations}
    assert {("high_below_low", "high"), ("negative", "volume")} <= rules


def test_file_of_the_first_offending_row_is_named(frames: SyntheticFrames, tmp_path: Path) -> None:
    df = frames.asset
    day = pl.col("timestamp").dt.date()
    first, second = df.filter(day == day.min()), df.filter(day != day.min())
    write(first, tmp_path / "dir" / "a.parquet")
    bad = second.with_columns(
        volume=pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise("volume")
    )
    bad_path = write(bad, tmp_path / "dir" / "b.parquet")
    assert bad_path in fails(str(tmp_path / "dir"))


def test_bad_rows_pass_after_repairs_and_the_counts_are_reported(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    path, _ = broken(frames, tmp_path, open=pl.col("high") * 1.5, volume=pl.lit(None, pl.Float64))
    dup_path = write(pl.concat([pl.read_parquet(path), frames.asset[:2]]), tmp_path / "d.parquet")
    repairs = [Repair.SORT, Repair.DROP_NULL_OHLCV, Repair.DROP_DUPLICATES, Repair.CLIP_OHLC]
    feed = ParquetFeed(FeedConfig(repair=repairs), asset=dup_path)
    report = feed.prepare()
    # two rows appended at the end break the order once (the second follows the first)
    assert feed.repairs == {"sort": 1, "drop_null_ohlcv": 3, "drop_duplicates": 2, "clip_ohlc": 0}
    assert report.rows == frames.asset.height - 3
    rec = run_feed(feed)
    assert sum(b.frame.height for b in rec.batches) == frames.asset.height - 3


def test_clip_ohlc_fixes_open_outside_range(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, _ = broken(frames, tmp_path, open=pl.col("high") * 1.5, high=pl.col("low") - 0.5)
    feed = ParquetFeed(FeedConfig(repair=[Repair.CLIP_OHLC]), asset=path)
    feed.prepare()
    assert feed.repairs == {"clip_ohlc": 3}
    frame = pl.concat([b.frame for b in run_feed(feed).batches])
    assert (
        frame.filter((pl.col("open") > pl.col("high")) | (pl.col("high") < pl.col("low"))).height
        == 0
    )


def test_drop_outside_session_counts_dropped_rows(frames: SyntheticFrames) -> None:
    night = frames.asset.with_columns(pl.col("timestamp") + pl.duration(hours=8))
    extra = night.filter(pl.col("timestamp").dt.hour() < 5)
    both = pl.concat([frames.asset, extra.cast({"timestamp": frames.asset["timestamp"].dtype})])
    feed = ParquetFeed(FeedConfig(calendar="NYSE", outside_session=OutsideSession.DROP), asset=both)
    report = feed.prepare()
    assert report.dropped_outside_session == both.height - frames.asset.height
    assert report.rows == frames.asset.height


def test_inf_high_is_rejected_as_non_finite(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, high=pl.lit(float("inf")))
    assert_names(fails(path), "non_finite", "high", 3, first_bad(df), "high=inf", path)


def test_inf_volume_is_rejected_as_non_finite(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, volume=pl.lit(float("inf")))
    msg = fails(path)
    assert_names(msg, "non_finite", "volume", 3, first_bad(df), "volume=inf", "drop_non_finite")


def test_zero_price_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, df = broken(frames, tmp_path, low=pl.lit(0.0))
    msg = fails(path)
    assert_names(msg, "zero_price", "low", 3, first_bad(df), "low=0.0", "drop_zero_price")
    assert "[negative]" not in msg  # zero is not negative: one rule per problem


def test_drop_non_finite_repair_drops_the_rows(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, _ = broken(frames, tmp_path, high=pl.lit(float("inf")))
    feed = ParquetFeed(FeedConfig(repair=[Repair.DROP_NON_FINITE]), asset=path)
    report = feed.prepare()
    assert feed.repairs == {"drop_non_finite": 3}
    assert report.rows == frames.asset.height - 3
    frame = pl.concat([b.frame for b in run_feed(feed).batches])
    assert frame.height == frames.asset.height - 3
    assert frame["high"].is_infinite().sum() == 0


def test_drop_zero_price_repair_drops_the_rows(frames: SyntheticFrames, tmp_path: Path) -> None:
    path, _ = broken(frames, tmp_path, low=pl.lit(0.0))
    feed = ParquetFeed(FeedConfig(repair=[Repair.DROP_ZERO_PRICE]), asset=path)
    assert feed.prepare().rows == frames.asset.height - 3
    assert feed.repairs == {"drop_zero_price": 3}


def test_overlapping_files_are_duplicates_naming_both_files(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    # 5 symbols x 390 bars a day; a.parquet holds days 1-2, b.parquet days 2-3
    df = frames.asset
    day = pl.col("timestamp").dt.date()
    days = df[TS_COL].dt.date().unique().sort()
    a = write(df.filter(day <= days[1]), tmp_path / "d" / "a.parquet")
    b = write(df.filter(day >= days[1]), tmp_path / "d" / "b.parquet")
    msg = fails(str(tmp_path / "d"))
    assert_names(msg, "duplicate", "symbol", 5 * 390, f"in {a} and {b}:")
    assert "[unsorted]" not in msg, msg


def test_overlap_and_disorder_are_both_reported(frames: SyntheticFrames, tmp_path: Path) -> None:
    # two bars of the first minute swapped, then the second day's 1950 rows again
    df = frames.asset
    day = pl.col("timestamp").dt.date()
    second = df.filter(day == df[TS_COL].dt.date().unique().sort()[1])
    swapped = pl.concat([df[:10], df[11:12], df[10:11], df[12:]])
    path = write(pl.concat([swapped, second]), tmp_path / "bars.parquet")
    msg = fails(path)
    assert_names(msg, "duplicate", "symbol", 5 * 390)
    assert f"[unsorted] column 'timestamp' in {path}: 1 row(s)" in msg, msg


def test_year_2300_timestamp_is_rejected_as_out_of_range(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    # 2300 does not fit int64 nanoseconds: polars can hold it only in microseconds
    far = pl.datetime(2300, 1, 1, time_zone="UTC")
    df = frames.asset.with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    us = SyntheticFrames(asset=df, signals=frames.signals, context=frames.context)
    path, _ = broken(us, tmp_path, timestamp=far)
    msg = fails(path)
    assert_names(msg, "timestamp_out_of_range", "timestamp", 3, "2300-01-01 00:00:00+00:00", path)
    assert "InvalidOperationError" not in msg, msg


def test_context_with_null_timestamp_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    ctx = frames.context.with_columns(
        timestamp=pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("timestamp"))
    )
    path = write(ctx, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    assert_names(fails(frames.asset, cfg, context=path), "null_key", "timestamp", 1, path)


def test_empty_context_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    path = write(frames.context.head(0), tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    assert_names(fails(frames.asset, cfg, context=path), "empty", "timestamp", 0, path)


def test_context_after_the_asset_span_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    later = frames.context.with_columns(pl.col("timestamp") + pl.duration(days=365))
    path = write(later, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    msg = fails(frames.asset, cfg, context=path)
    rows = frames.context.height
    assert_names(msg, "context_outside_range", "timestamp", rows, path, "would see None")
    assert "2024-01-03T14:31:00+00:00" in msg and "2023-01-05T21:00:00+00:00" in msg, msg


def test_context_before_the_asset_span_is_rejected(frames: SyntheticFrames, tmp_path: Path) -> None:
    earlier = frames.context.with_columns(pl.col("timestamp") - pl.duration(days=365))
    path = write(earlier, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    msg = fails(frames.asset, cfg, context=path)
    assert_names(msg, "context_outside_range", "timestamp", None, "one stale value")


def test_context_year_2300_timestamp_is_rejected_as_out_of_range(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    ctx = frames.context.with_columns(pl.col("timestamp").dt.cast_time_unit("us"))
    ctx = ctx.with_columns(
        timestamp=pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.datetime(2300, 1, 1, time_zone="UTC"))
        .otherwise(pl.col("timestamp"))
    )
    path = write(ctx, tmp_path / "context.parquet")
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"]))
    msg = fails(frames.asset, cfg, context=path)
    assert_names(msg, "timestamp_out_of_range", "timestamp", 1, "timestamp=2300-01-01", path)


def test_signal_data_with_null_available_at_is_rejected(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    signals = frames.signals.with_columns(
        available_at=pl.when(pl.int_range(pl.len()).is_in([2, 6]))
        .then(None)
        .otherwise(pl.col("available_at"))
    )
    path = write(signals, tmp_path / "signals.parquet")
    cfg = FeedConfig(
        signal_data=SignalSourceConfig(columns=["confidence"], available_at="available_at")
    )
    msg = fails(
        frames.asset.drop("signal_entry", "signal_exit", "confidence"), cfg, signal_data=path
    )
    assert_names(msg, "null_key", "available_at", 2, path, "never available")


def test_symbols_out_of_order_within_a_timestamp_are_unsorted(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    """Two symbols swapped inside one timestamp (the times stay in order): validation,
    which compares the symbols as text, finds the one row out of (timestamp, symbol)
    order, as the streaming check on codes does."""
    df = frames.asset
    a, b = df.row(3, named=True), df.row(4, named=True)
    assert a["timestamp"] == b["timestamp"] and a["symbol"] < b["symbol"]
    swapped = pl.concat([df[:3], df[4:5], df[3:4], df[5:]])
    msg = fails(write(swapped, tmp_path / "bars.parquet"))
    assert_names(msg, "unsorted", "timestamp", 1, f"symbol={a['symbol']}")
    assert "[duplicate]" not in msg, msg


def test_a_categorical_symbol_column_is_ordered_by_name_not_by_category(
    frames: SyntheticFrames, tmp_path: Path
) -> None:
    """Categories met in reverse order have codes that fall along each timestamp; the
    rows are in (timestamp, symbol) order by name, which is what validation checks."""
    df = frames.asset
    names = sorted(df["symbol"].unique().to_list(), reverse=True)
    seeded = pl.concat([pl.DataFrame({"symbol": names}), df.select("symbol")])
    categorical = seeded.select(pl.col("symbol").cast(pl.Categorical))[len(names) :]
    reordered = df.with_columns(symbol=categorical["symbol"])
    path = write(reordered, tmp_path / "bars.parquet")
    feed = ParquetFeed(FeedConfig(), asset=path)
    report = feed.prepare()
    assert report.rows == df.height
    rec = run_feed(feed)
    assert sum(b.frame.height for b in rec.batches) == df.height
