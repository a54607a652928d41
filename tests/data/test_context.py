"""Context and slower signals as seen by a real subscriber on a real Runtime."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest.data import (
    AssetSourceConfig,
    ContextSourceConfig,
    FeedConfig,
    ParquetFeed,
    SignalSourceConfig,
)
from ml4t.backtest.data.synthetic import SIGNALS, SyntheticFrames
from tests.data._feeds import run_feed


def last_known(times: np.ndarray, avail: np.ndarray, values: np.ndarray) -> list[float | None]:
    """Brute force: the last non-null value with availability <= t, for each t."""
    out: list[float | None] = []
    for t in times:
        ok = (avail <= t) & ~np.isnan(values)
        if not ok.any():
            out.append(None)
            continue
        last = np.flatnonzero(avail == avail[ok].max())
        out.append(float(values[[i for i in last if ok[i]][-1]]))
    return out


def test_context_seen_by_a_subscriber_is_the_last_row_at_or_before_each_event(
    frames: SyntheticFrames,
) -> None:
    ctx = frames.context.gather_every(7, offset=3).with_columns(  # a slower, offset series
        vix=pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise("vix")  # with gaps
    )
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix", "spy"]), chunk_memory_mb=0.02)
    rec = run_feed(ParquetFeed(cfg, asset=frames.asset, context=ctx))
    times = np.array([b.ts_event for b in rec.batches])
    avail = ctx["timestamp"].dt.epoch("ns").to_numpy()
    for field in ("vix", "spy"):
        seen = [b.context[field] for b in rec.batches]
        assert seen == last_known(times, avail, ctx[field].to_numpy()), field
    assert rec.batches[0].context == {"vix": None, "spy": None}  # nothing known yet


@settings(max_examples=25, deadline=None)
@given(
    every_minutes=st.integers(1, 1_500),
    offset_s=st.integers(-86_400, 86_400),
    lag_s=st.integers(0, 50_000),
    budget=st.sampled_from([0.01, 0.05, 256.0]),
)
def test_context_as_of_holds_for_random_frequencies_lags_and_chunkings(
    frames: SyntheticFrames, every_minutes: int, offset_s: int, lag_s: int, budget: float
) -> None:
    asset = frames.asset.filter(pl.col("symbol").is_in(["AAA", "AAB"]))
    t0, t1 = asset["timestamp"].min(), asset["timestamp"].max()
    start = t0 + timedelta(seconds=offset_s)  # type: ignore[operator]
    ctx = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                start, t1, f"{every_minutes}m", eager=True, time_zone="UTC"
            )
        }
    ).with_columns(level=pl.int_range(pl.len()).cast(pl.Float64))
    cfg = FeedConfig(
        context=ContextSourceConfig(fields=["level"], available_lag=f"{lag_s}s"),
        chunk_memory_mb=budget,
    )
    rec = run_feed(ParquetFeed(cfg, asset=asset, context=ctx))
    times = np.array([b.ts_event for b in rec.batches])
    avail = ctx["timestamp"].dt.epoch("ns").to_numpy() + lag_s * 10**9
    assert [b.context["level"] for b in rec.batches] == last_known(
        times, avail, ctx["level"].to_numpy()
    )


def test_context_available_at_column_is_used_instead_of_the_label(frames: SyntheticFrames) -> None:
    ctx = frames.context.with_columns(available_at=pl.col("timestamp") + pl.duration(minutes=15))
    cfg = FeedConfig(context=ContextSourceConfig(fields=["vix"], available_at="available_at"))
    rec = run_feed(ParquetFeed(cfg, asset=frames.asset, context=ctx))
    times = np.array([b.ts_event for b in rec.batches])
    avail = ctx["available_at"].dt.epoch("ns").to_numpy()
    assert [b.context["vix"] for b in rec.batches] == last_known(
        times, avail, ctx["vix"].to_numpy()
    )
    assert all(b.context["vix"] is None for b in rec.batches[:14])


def test_daily_signals_from_a_separate_source_match_the_forward_filled_columns(
    frames: SyntheticFrames,
) -> None:
    cfg = FeedConfig(
        asset=AssetSourceConfig(),
        signal_data=SignalSourceConfig(columns=list(SIGNALS), available_lag="16h"),
        chunk_memory_mb=0.05,
    )
    feed = ParquetFeed(cfg, asset=frames.asset.drop(*SIGNALS), signal_data=frames.signals)
    rec = run_feed(feed)
    got = pl.concat([b.frame for b in rec.batches]).select(SIGNALS)
    want = frames.asset.sort("timestamp", "symbol").select(SIGNALS)
    assert feed.signal_columns == SIGNALS
    assert got.equals(want)


def test_stale_daily_signals_are_null_past_max_staleness(frames: SyntheticFrames) -> None:
    cfg = FeedConfig(
        signal_data=SignalSourceConfig(
            columns=["confidence"], available_at="available_at", max_staleness="2h"
        ),
    )
    rec = run_feed(ParquetFeed(cfg, asset=frames.asset.drop(*SIGNALS), signal_data=frames.signals))
    for batch in rec.batches:
        hour = pl.select(pl.lit(batch.ts_event).cast(pl.Datetime("ns", "UTC"))).item().hour
        values = batch.frame["confidence"]
        if hour >= 16:  # more than 2h after the 13:00 UTC publication
            assert values.null_count() == values.len()
