"""The sample data generator: deterministic, realistic, predictive, written in chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from ml4t.backtest.data import FeedConfig, ParquetFeed
from ml4t.backtest.data.actions import ActionKind, ActionSchedule, parse_corporate_actions
from ml4t.backtest.data.adjustment import adjusted
from ml4t.backtest.data.membership import parse_universe
from ml4t.backtest.data.synthetic import (
    SyntheticConfig,
    SyntheticFrames,
    make_frames,
    write_dataset,
)
from ml4t.backtest.errors import ConfigError


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


# --------------------------------------------------------------------------- corporate actions


def _digest(frames: SyntheticFrames) -> str:
    """sha256 over every value of the three frames (independent of parquet encoding)."""
    digest = hashlib.sha256()
    for name in ("asset", "signals", "context"):
        df = getattr(frames, name)
        for col in df.columns:
            s = df[col]
            digest.update(f"{name}.{col}:{s.dtype}".encode())
            if s.dtype == pl.String:
                digest.update("\x00".join(s.fill_null("\x01").to_list()).encode())
            else:
                digest.update(s.to_physical().fill_null(-1).to_numpy().tobytes())
                digest.update(s.is_null().to_numpy().tobytes())
    return digest.hexdigest()


def test_the_action_options_leave_the_default_data_byte_identical() -> None:
    # digests of the generator before the options existed (same seeds, same shapes)
    minute = make_frames(SyntheticConfig(n_symbols=4, n_days=25, seed=3))
    daily = make_frames(SyntheticConfig(n_symbols=6, n_days=30, frequency="1d", seed=9))
    assert _digest(minute) == "33cb9ebdb316beba59189974750ff570287bb593e1b6e638a52625e029e30e36"
    assert _digest(daily) == "b309d2a71eb0d2d6ffd47b38ce362195836b53ac8a564429b40b441db78824bf"
    assert minute.actions is None and minute.universe is None


ALL_ON = {"splits": 3, "dividends": 4, "delistings": 2, "late_listings": 2, "universe_changes": 3}


def _pair(**counts: int) -> tuple[SyntheticFrames, SyntheticFrames]:
    """(frames with the given actions, frames of the same seed without), minute bars."""
    shape = {"n_symbols": 6, "n_days": 25, "seed": 9}
    return make_frames(SyntheticConfig(**shape, **counts)), make_frames(SyntheticConfig(**shape))


def _ratios(raw: pl.DataFrame, path: pl.DataFrame) -> pl.DataFrame:
    """raw / path per bar for OHLC and volume, joined on (timestamp, symbol)."""
    cols = ["open", "high", "low", "close", "volume"]
    joined = raw.join(path.select("timestamp", "symbol", *cols), on=["timestamp", "symbol"])
    return joined.select("timestamp", "symbol", *(pl.col(c) / pl.col(f"{c}_right") for c in cols))


def _schedule(frames: SyntheticFrames) -> ActionSchedule:
    assert frames.actions is not None
    return parse_corporate_actions(
        frames.actions, symbols=frames.asset["symbol"].unique().to_list(), timezone="UTC"
    )


def test_a_split_divides_raw_prices_from_its_ex_day_on_and_multiplies_volume() -> None:
    raw, path = _pair(splits=1)
    (split,) = _schedule(raw).rows
    ratios = _ratios(raw.asset, path.asset).filter(pl.col("symbol") == split.symbol)
    ts = ratios["timestamp"].dt.epoch("ns")
    before, after = ratios.filter(ts <= split.effective_ns), ratios.filter(ts > split.effective_ns)
    assert before.height > 0 and after.height > 0
    np.testing.assert_allclose(before.select("open", "high", "low", "close").to_numpy(), 1.0)
    np.testing.assert_allclose(
        after.select("open", "high", "low", "close").to_numpy(), 1.0 / split.ratio, rtol=1e-12
    )
    np.testing.assert_allclose(after["volume"].to_numpy(), split.ratio, rtol=1e-12)
    others = _ratios(raw.asset, path.asset).filter(pl.col("symbol") != split.symbol)
    np.testing.assert_array_equal(others.select("close", "volume").to_numpy(), 1.0)


def test_a_dividend_takes_its_amount_off_the_raw_price_from_the_ex_day_on() -> None:
    raw, path = _pair(dividends=1)
    (dividend,) = _schedule(raw).rows
    assert (
        dividend.amount is not None
        and dividend.pay_ns == dividend.effective_ns + 7 * 86_400 * 10**9
    )
    bars = raw.asset.filter(pl.col("symbol") == dividend.symbol)
    ts = bars["timestamp"].dt.epoch("ns")
    last_close = bars.filter(ts <= dividend.effective_ns)["close"][-1]
    factor = 1.0 - dividend.amount / last_close
    ratios = _ratios(raw.asset, path.asset).filter(pl.col("symbol") == dividend.symbol)
    after = ratios.filter(ratios["timestamp"].dt.epoch("ns") > dividend.effective_ns)
    np.testing.assert_allclose(after["open"].to_numpy(), factor, rtol=1e-12)
    np.testing.assert_allclose(after["volume"].to_numpy(), 1.0)
    # the first open after the ex instant is the previous close less the amount, moved by
    # the path's overnight gap (path open / path close before: no other action here)
    first_raw_open = bars.filter(ts > dividend.effective_ns)["open"][0]
    path_bars = path.asset.filter(pl.col("symbol") == dividend.symbol)
    path_ts = path_bars["timestamp"].dt.epoch("ns")
    gap = path_bars.filter(path_ts > dividend.effective_ns)["open"][0] / last_close
    assert path_bars.filter(path_ts <= dividend.effective_ns)["close"][-1] == last_close
    assert first_raw_open == pytest.approx((last_close - dividend.amount) * gap, rel=1e-12)


def test_a_delisted_symbol_has_no_bars_or_signals_after_its_last_day() -> None:
    raw, path = _pair(delistings=2)
    rows = _schedule(raw).rows
    assert [r.action for r in rows] == [ActionKind.DELISTING] * 2
    prices = sorted((r.price is None) for r in rows)
    assert prices == [False, True]  # one pays the last close, one a cash amount
    for row in rows:
        bars = raw.asset.filter(pl.col("symbol") == row.symbol)
        last = bars["timestamp"].dt.epoch("ns").max()
        assert last < row.effective_ns  # nothing after the last day
        full = path.asset.filter(pl.col("symbol") == row.symbol)["timestamp"].dt.epoch("ns")
        next_session = full.filter(full > last).min()  # its bars without the delisting
        assert last < row.effective_ns < next_session  # ex: the session after the last day
        signals = raw.signals.filter(pl.col("symbol") == row.symbol)
        assert signals["timestamp"].dt.epoch("ns").max() <= last
        if row.price is not None:
            assert 0 < row.price < 1.2 * bars["close"][-1]


def test_a_late_listed_symbol_starts_with_no_signal_and_fresh_indicators() -> None:
    raw, path = _pair(late_listings=2)
    first_ts = raw.asset["timestamp"].min()
    starts = (
        raw.asset.group_by("symbol")
        .agg(pl.col("timestamp").min())
        .filter(pl.col("timestamp") > first_ts)
    )
    assert starts.height == 2
    for symbol, start in starts.iter_rows():
        bars = raw.asset.filter(pl.col("symbol") == symbol)
        assert bars["timestamp"].min() == start
        first_day = bars.filter(pl.col("timestamp").dt.date() == start.date())
        assert first_day["confidence"].null_count() == first_day.height  # no signal yet
        assert bars["rsi"][0] is None
        macd = bars["close"].ewm_mean(span=12, adjust=False) - bars["close"].ewm_mean(
            span=26, adjust=False
        )
        np.testing.assert_allclose(bars["macd"].to_numpy(), macd.to_numpy(), rtol=1e-9, atol=1e-9)
        listed = path.asset.filter((pl.col("symbol") == symbol) & (pl.col("timestamp") >= start))
        assert listed.height == bars.height


def test_adjusted_raw_bars_are_the_price_path_up_to_one_factor_per_symbol() -> None:
    raw, path = _pair(**ALL_ON)
    ratios = _ratios(adjusted(raw.asset, _schedule(raw)), path.asset)
    spread = ratios.group_by("symbol").agg(
        *(
            (pl.col(c).max() / pl.col(c).min() - 1).abs().alias(c)
            for c in ("open", "high", "low", "close", "volume")
        )
    )
    assert spread.drop("symbol").to_numpy().max() < 1e-12


def test_the_generated_files_validate_and_the_universe_only_holds_listed_symbols() -> None:
    raw = make_frames(SyntheticConfig(n_symbols=8, n_days=30, frequency="1d", seed=4, **ALL_ON))
    assert raw.universe is not None
    symbols = raw.asset["symbol"].unique().to_list()
    first = int(raw.asset["timestamp"].dt.epoch("ns").min())
    members = parse_universe(raw.universe, symbols=symbols, timezone="UTC", start_ns=first)
    assert len(members.changes) > 0
    assert len(_schedule(raw).rows) == 3 + 4 + 2
    for (ts,), bars in raw.asset.group_by(pl.col("timestamp").dt.epoch("ns"), maintain_order=True):
        assert set(members.members_at(int(ts))) <= set(bars["symbol"])


def test_write_dataset_writes_the_action_and_universe_files_beside_the_data(tmp_path: Path) -> None:
    cfg = SyntheticConfig(n_symbols=5, n_days=30, start="2023-01-20", seed=2, **ALL_ON)
    info = write_dataset(tmp_path, cfg)
    whole = make_frames(cfg)
    assert info.actions == str(tmp_path / "actions.parquet")
    assert info.universe == str(tmp_path / "universe.parquet")
    assert whole.actions is not None and whole.universe is not None
    assert pl.read_parquet(info.actions).equals(whole.actions)
    assert pl.read_parquet(info.universe).equals(whole.universe)
    assert pl.read_parquet(sorted(Path(info.asset).glob("*.parquet"))).equals(whole.asset)
    plain = write_dataset(tmp_path / "plain", SyntheticConfig(n_symbols=2, n_days=2))
    assert plain.actions is None and not (tmp_path / "plain" / "actions.parquet").exists()


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"delistings": 5}, "may not exceed n_symbols"),
        ({"splits": 10_000}, "symbol-days"),
        ({"universe_changes": 30}, "at most n_days - 1"),
    ],
)
def test_counts_the_data_cannot_hold_are_config_errors(counts: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_frames(SyntheticConfig(n_symbols=3, n_days=10, frequency="1d", **counts))
