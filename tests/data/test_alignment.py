"""Point-in-time joins: never a future value, exact forward fill, staleness, look-ahead check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest import DataValidationError
from ml4t.backtest.data import AsofSource, align, asof_join, check_lookahead
from ml4t.backtest.data.synthetic import SIGNALS, SyntheticFrames

SYMS = ["A", "B", "C"]


def brute_force(
    left: pl.DataFrame, right: pl.DataFrame, lag: int, tolerance: int | None
) -> list[float | None]:
    """For each left row: the value of the last right row (same symbol) available by then."""
    out: list[float | None] = []
    rows = right.rows(named=True)
    for t, sym in left.select("timestamp", "symbol").iter_rows():
        best = None
        for r in rows:  # later rows win ties: same order asof_join documents
            avail = r["timestamp"] + lag
            if r["symbol"] == sym and avail <= t and (best is None or avail >= best[0]):
                best = (avail, r["value"])
        if best is not None and tolerance is not None and t - best[0] > tolerance:
            best = None
        out.append(None if best is None else best[1])
    return out


frames_strategy = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(SYMS)), min_size=0, max_size=40
)


@settings(max_examples=100, deadline=None)
@given(
    left=frames_strategy,
    right=st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(SYMS)),
        min_size=0,
        max_size=40,
        unique=True,
    ),
    lag=st.integers(0, 3_000),
    tolerance=st.one_of(st.none(), st.integers(0, 5_000)),
)
def test_asof_join_never_uses_a_value_before_it_is_available(
    left: list[tuple[int, str]], right: list[tuple[int, str]], lag: int, tolerance: int | None
) -> None:
    lf = pl.DataFrame(left, schema={"timestamp": pl.Int64, "symbol": pl.String}, orient="row")
    rf = pl.DataFrame(right, schema={"timestamp": pl.Int64, "symbol": pl.String}, orient="row")
    rf = rf.with_columns(value=pl.int_range(pl.len(), dtype=pl.Int64).cast(pl.Float64))
    out = asof_join(lf, rf, available_lag=lag, tolerance=tolerance, stamp="avail")
    assert out.select("timestamp", "symbol").equals(lf)  # left rows keep their order
    assert out["value"].to_list() == brute_force(lf, rf, lag, tolerance)
    check_lookahead(out, available="avail")  # and the stamps prove it


@settings(max_examples=60, deadline=None)
@given(
    fast_minutes=st.integers(1, 90),
    slow_minutes=st.integers(1, 2_000),
    offset_s=st.integers(0, 3_599),
    lag_minutes=st.integers(0, 1_500),
)
def test_slower_series_reach_faster_bars_only_once_available(
    fast_minutes: int, slow_minutes: int, offset_s: int, lag_minutes: int
) -> None:
    t0 = datetime(2023, 3, 1, tzinfo=UTC)
    fast = pl.DataFrame(
        {"timestamp": pl.datetime_range(t0, t0 + timedelta(days=5), f"{fast_minutes}m", eager=True)}
    ).with_columns(symbol=pl.lit("A"))
    start = t0 + timedelta(seconds=offset_s) - timedelta(days=1)
    slow = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                start, t0 + timedelta(days=5), f"{slow_minutes}m", eager=True
            )
        }
    ).with_columns(symbol=pl.lit("A"), value=pl.int_range(pl.len()).cast(pl.Float64))
    out = asof_join(fast, slow, available_lag=f"{lag_minutes}m", stamp="avail")
    t = fast["timestamp"].dt.epoch("ns").to_numpy()
    labels = slow["timestamp"].dt.epoch("ns").to_numpy() + lag_minutes * 60 * 10**9
    idx = np.searchsorted(labels, t, side="right") - 1
    expected = [float(i) if i >= 0 else None for i in idx]
    assert out["value"].to_list() == expected
    check_lookahead(out, available="avail")


def test_daily_signals_are_forward_filled_exactly_onto_minute_bars(frames: SyntheticFrames) -> None:
    prices = frames.asset.drop(*SIGNALS)
    signals = frames.signals
    by_lag = align(prices, AsofSource(signals, columns=list(SIGNALS), available_lag="16h"))
    by_column = align(
        prices,
        AsofSource(signals, columns=list(SIGNALS), available_at="available_at", stamp="avail"),
    )
    # the generator pre-joins day d's signals onto every bar of day d+1
    reference = frames.asset.select(SIGNALS)
    assert by_lag.select(SIGNALS).equals(reference)
    assert by_column.select(SIGNALS).equals(reference)
    check_lookahead(by_column, available="avail")
    # and each value is labelled with an earlier session than the bar's, never the same day
    label_day = (pl.col("avail") - 16 * 3600 * 10**9).cast(pl.Datetime("ns", "UTC")).dt.date()
    assert (
        by_column.filter(pl.col("avail").is_not_null())
        .select((label_day < pl.col("timestamp").dt.date()).all())
        .item()
    )


def test_tolerance_leaves_stale_values_null() -> None:
    left = pl.DataFrame({"timestamp": [10, 20, 30], "symbol": ["A"] * 3})
    right = pl.DataFrame({"timestamp": [5], "symbol": ["A"], "value": [1.0]})
    out = asof_join(left, right, tolerance=15)
    assert out["value"].to_list() == [1.0, 1.0, None]


def test_asof_join_accepts_lazy_frames_and_stays_lazy() -> None:
    left = pl.LazyFrame({"timestamp": [10, 20], "symbol": ["A", "A"]})
    right = pl.LazyFrame({"timestamp": [15], "symbol": ["A"], "value": [2.0]})
    out = asof_join(left, right)
    assert isinstance(out, pl.LazyFrame)
    assert out.collect()["value"].to_list() == [None, 2.0]


def test_check_lookahead_reports_rows_using_future_values() -> None:
    frame = pl.DataFrame(
        {"timestamp": [10, 20, 30], "symbol": ["A", "B", "A"], "signal_time": [5, 25, 40]}
    )
    with pytest.raises(DataValidationError) as info:
        check_lookahead(frame, available="signal_time", name="joined.parquet")
    msg = str(info.value)
    assert "[lookahead]" in msg and "column 'signal_time'" in msg and "2 row(s)" in msg
    assert "joined.parquet" in msg and "symbol" in msg


def test_naive_times_need_a_timezone() -> None:
    left = pl.DataFrame({"timestamp": [datetime(2023, 1, 3, 10)], "symbol": ["A"]})
    right = pl.DataFrame({"timestamp": [datetime(2023, 1, 3, 9)], "symbol": ["A"], "v": [1.0]})
    with pytest.raises(DataValidationError, match="naive_timestamp"):
        asof_join(left, right)
    out = asof_join(left, right, timezone="America/New_York")
    assert out["v"].to_list() == [1.0]
