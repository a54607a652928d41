"""Walk-forward windows, asserted date by date, including the purge gap."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import msgspec
import polars as pl
import pytest

from ml4t.backtest.errors import ConfigError
from ml4t.backtest.sweep import LocalExecutor, WalkForward, Window, run_sweep, windows
from ml4t.backtest.sweep.walkforward import select_out_of_sample, window_bounds

from .conftest import base_config


def jan(day: int) -> date:
    return date(2023, 1, day)


def window(index: int, *days: int) -> Window:
    """Window ``index`` with train start/end and test start/end on these January days."""
    a, b, c, d = (jan(day) for day in days)
    return Window(index=index, train_start=a, train_end=b, test_start=c, test_end=d)


def spec(**fields: object) -> WalkForward:
    raw = {"start": "2023-01-01", "end": "2023-01-20", "train": 5, "test": 3, "purge": 1}
    return msgspec.convert({**raw, **fields}, WalkForward)


def test_rolling_windows_slide_by_the_test_length_with_a_purge_gap() -> None:
    assert windows(spec()) == [
        window(0, 1, 5, 7, 9),
        window(1, 4, 8, 10, 12),
        window(2, 7, 11, 13, 15),
        window(3, 10, 14, 16, 18),
    ]  # Jan 19-21 would overrun Jan 20: no partial window


def test_expanding_windows_keep_the_train_start_and_test_the_same_periods() -> None:
    got = windows(spec(mode="expanding"))
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in got] == [
        (jan(1), jan(5), jan(7), jan(9)),
        (jan(1), jan(8), jan(10), jan(12)),
        (jan(1), jan(11), jan(13), jan(15)),
        (jan(1), jan(14), jan(16), jan(18)),
    ]
    assert [w.test_start for w in got] == [w.test_start for w in windows(spec())]


@pytest.mark.parametrize("mode", ["rolling", "expanding"])
@pytest.mark.parametrize("purge", [0, 1, 4])
def test_the_purge_gap_is_exactly_purge_days_between_train_and_test(mode: str, purge: int) -> None:
    for w in windows(spec(mode=mode, purge=purge)):
        assert w.test_start - w.train_end == timedelta(days=purge + 1)
        assert w.test_end - w.test_start == timedelta(days=2)  # 3 test days
        if mode == "rolling":
            assert w.train_end - w.train_start == timedelta(days=4)  # 5 train days


def test_an_explicit_step_overlaps_test_windows() -> None:
    got = windows(spec(step=1, purge=0, end="2023-01-10"))
    assert [(w.train_start, w.test_start, w.test_end) for w in got] == [
        (jan(1), jan(6), jan(8)),
        (jan(2), jan(7), jan(9)),
        (jan(3), jan(8), jan(10)),
    ]


def test_session_windows_count_trading_days_and_skip_holidays() -> None:
    """NYSE, January 2023: the 16th (Martin Luther King Jr. Day) is not a session."""
    got = windows(
        spec(start="2023-01-03", end="2023-01-31", train=5, test=5, purge=2, calendar="NYSE")
    )
    assert got == [
        window(0, 3, 9, 12, 19),
        window(1, 10, 17, 20, 26),
    ]  # purged: the 10th-11th, then the 18th-19th


def test_window_bounds_cover_whole_days_in_the_calendar_timezone() -> None:
    assert window_bounds(spec(), jan(7), jan(9)) == ("2023-01-07", "2023-01-09")
    nyse = spec(calendar="NYSE")
    assert window_bounds(nyse, jan(12), jan(19)) == (
        "2023-01-12T00:00:00-05:00",
        "2023-01-19T23:59:59.999999-05:00",
    )


def test_a_range_too_short_for_one_window_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="20 days from 2023-01-01 to 2023-01-20 hold no window"):
        windows(spec(train=15, purge=3, test=3))


def test_walk_forward_runs_test_exactly_their_windows_and_select_out_of_sample(
    dataset, tmp_path: Path
) -> None:
    """6 sessions (Jan 3-10); train 2, purge 1, test 2, step 1: two windows."""
    sweep = {
        "params": {"strategy.params.threshold": [0.4, 0.6]},
        "walk_forward": {
            "start": "2023-01-03",
            "end": "2023-01-10",
            "train": 2,
            "test": 2,
            "purge": 1,
            "step": 1,
            "calendar": "NYSE",
            "timezone": "UTC",
            "train_runs": True,
        },
        "metric": "total_return",
    }
    table = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=LocalExecutor(2))
    assert table.height == 8 and table["status"].to_list() == ["ok"] * 8
    expected = {
        (0, "train"): ("2023-01-03", "2023-01-04"),
        (0, "test"): ("2023-01-06", "2023-01-09"),  # the 5th is purged
        (1, "train"): ("2023-01-04", "2023-01-05"),
        (1, "test"): ("2023-01-09", "2023-01-10"),  # the 6th is purged
    }
    for row in table.iter_rows(named=True):
        first, last = expected[(row["window"], row["role"])]
        assert row["start"][:10] == first and row["end"][:10] == last, row  # bars actually run
    test_starts = table.filter(pl.col("role") == "test")["test_start"].unique().sort().to_list()
    assert test_starts == [jan(6), jan(9)]
    chosen = select_out_of_sample(table, "total_return")
    assert chosen["window"].to_list() == [0, 1] and set(chosen["role"]) == {"test"}
    for window in (0, 1):
        train = table.filter((pl.col("window") == window) & (pl.col("role") == "train"))
        best = train.sort("total_return", descending=True)["strategy.params.threshold"][0]
        assert chosen.filter(pl.col("window") == window)["strategy.params.threshold"][0] == best
