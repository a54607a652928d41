"""The sample data generator: deterministic, realistic, predictive, written in chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ml4t.backtest.data import FeedConfig, ParquetFeed
from ml4t.backtest.data.synthetic import (
    SyntheticConfig,
    SyntheticFrames,
    make_frames,
    write_dataset,
)


def test_same_seed_gives_identical_data_and_another_seed_does_not() -> None:
    cfg = SyntheticConfig(n_symbols=3, n_days=2, seed=11)
    a, b = make_frames(cfg), make_frames(cfg)
    assert a.asset.equals(b.asset) and a.context.equals(b.context) and a.signals.equals(b.signals)
    other = make_frames(SyntheticConfig(n_symbols=3, n_days=2, seed=12))
    assert not a.asset.equals(other.asset)


def test_bars_are_consistent_and_volume_is_u_shaped(frames: SyntheticFrames) -> None:
    df = frames.asset
    assert df.select(
        (pl.col("low") <= pl.min_horizontal("open", "close")).all().alias("a"),
        (pl.col("high") >= pl.max_horizontal("open", "close")).all().alias("b"),
        (pl.col("low") > 0).all().alias("c"),
        (pl.col("volume") > 0).all().alias("d"),
    ).row(0) == (True, True, True, True)
    minute = df.with_columns(
        m=pl.col("timestamp").dt.hour().cast(pl.Int32) * 60 + pl.col("timestamp").dt.minute()
    )
    by_minute = minute.group_by("m").agg(pl.col("volume").mean()).sort("m")["volume"].to_numpy()
    middle = by_minute[len(by_minute) // 2 - 30 : len(by_minute) // 2 + 30].mean()
    assert by_minute[:15].mean() > 1.5 * middle and by_minute[-15:].mean() > 1.5 * middle


def test_minute_bars_follow_the_nyse_calendar_with_early_closes() -> None:
    frames = make_frames(SyntheticConfig(n_symbols=2, n_days=5, start="2023-11-21"))
    per_day = frames.context.group_by(pl.col("timestamp").dt.date().alias("d")).len().sort("d")
    assert per_day["d"].cast(pl.String).to_list() == [
        "2023-11-21",
        "2023-11-22",
        "2023-11-24",
        "2023-11-27",
        "2023-11-28",
    ]
    assert per_day["len"].to_list() == [390, 390, 210, 390, 390]


def test_daily_mode_has_one_bar_per_session_at_the_close() -> None:
    frames = make_frames(SyntheticConfig(n_symbols=4, n_days=10, frequency="1d"))
    assert frames.asset.height == 40
    assert (frames.asset["timestamp"].dt.hour() == 21).all()  # 16:00 New York in winter


def test_signals_predict_next_day_returns() -> None:
    frames = make_frames(SyntheticConfig(n_symbols=60, n_days=120, frequency="1d", seed=5))
    df = frames.asset.sort("symbol", "timestamp").with_columns(
        ret=(pl.col("close") / pl.col("close").shift(1).over("symbol")).log()
    )
    # bars of day d carry the confidence published after day d-1: it forecasts day d's return
    ic = (
        df.drop_nulls(["confidence", "ret"])
        .select(pl.corr("confidence", "ret", method="spearman"))
        .item()
    )
    assert 0.03 < ic < 0.5


def test_indicators_have_their_usual_ranges(frames: SyntheticFrames) -> None:
    df = frames.asset.drop_nulls(["rsi"])
    assert df["rsi"].min() >= 0 and df["rsi"].max() <= 100  # type: ignore[operator]
    assert (frames.asset["atr"] > 0).all()


def test_indicators_are_continuous_across_monthly_files(tmp_path: Path) -> None:
    cfg = SyntheticConfig(n_symbols=3, n_days=30, start="2023-01-20")
    whole = make_frames(cfg).asset
    info = write_dataset(tmp_path, cfg)
    files = sorted(Path(info.asset).glob("*.parquet"))
    assert [f.name for f in files] == ["2023-01.parquet", "2023-02.parquet", "2023-03.parquet"]
    read = pl.read_parquet(files)
    assert read.equals(whole)
    # the EMA-based indicators computed month by month equal one pass over all history
    closes = whole.filter(pl.col("symbol") == "AAB")["close"]
    macd = closes.ewm_mean(span=12, adjust=False) - closes.ewm_mean(span=26, adjust=False)
    got = whole.filter(pl.col("symbol") == "AAB")["macd"].to_numpy()
    np.testing.assert_allclose(got, macd.to_numpy(), rtol=1e-9, atol=1e-9)


def test_written_dataset_streams_through_the_feed(tmp_path: Path) -> None:
    info = write_dataset(tmp_path, SyntheticConfig(n_symbols=4, n_days=3))
    feed = ParquetFeed(FeedConfig(), asset=info.asset)
    report = feed.prepare()
    assert report.rows == info.rows == 4 * 3 * 390
    assert feed.symbols == tuple(info.symbols)
