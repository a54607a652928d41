"""Memory-budgeted chunk planning, and the config structs' errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest import ConfigError
from ml4t.backtest.data import FeedConfig, decode_feed_config
from ml4t.backtest.data._chunks import RESIDENT_CHUNKS, plan_chunks


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(1, 500), min_size=1, max_size=200),
    row_bytes=st.integers(1, 200),
    budget_kb=st.integers(1, 200),
)
def test_chunks_cover_every_timestamp_once_within_the_budget(
    counts: list[int], row_bytes: int, budget_kb: int
) -> None:
    ts = np.cumsum(np.arange(1, len(counts) + 1))  # increasing, irregular
    c = np.array(counts)
    plan = plan_chunks(ts, c, row_bytes=row_bytes, budget_mb=budget_kb / 1024)
    cap = budget_kb * 1024 / RESIDENT_CHUNKS / row_bytes
    assert plan.bounds[0] == ts[0] and plan.bounds[-1] == ts[-1] + 1
    assert sum(plan.rows) == c.sum()
    for (lo, hi), rows in zip(plan.ranges(), plan.rows, strict=True):
        inside = (ts >= lo) & (ts < hi)
        assert c[inside].sum() == rows
        assert rows <= cap or inside.sum() == 1  # over budget only for a single timestamp


def test_unknown_config_key_fails_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.asset\.signalz|signalz"):
        decode_feed_config({"asset": {"path": "x", "signalz": ["a"]}})


def test_bad_value_fails_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"\$\.chunk_memory_mb"):
        decode_feed_config({"chunk_memory_mb": -1})


def test_start_labelled_bars_need_an_interval() -> None:
    with pytest.raises(ConfigError, match="bar_interval"):
        decode_feed_config({"asset": {"bar_label": "start"}})


def test_outside_session_needs_a_calendar() -> None:
    with pytest.raises(ConfigError, match="calendar"):
        FeedConfig(outside_session="drop")  # type: ignore[arg-type]


def test_yaml_shaped_config_decodes() -> None:
    cfg = decode_feed_config(
        {
            "asset": {"path": "data/asset", "signals": ["s"], "indicators": ["rsi"]},
            "context": {"path": "data/context", "fields": ["vix"], "available_lag": "15m"},
            "repair": ["sort", "drop_duplicates"],
            "calendar": "NYSE",
            "outside_session": "drop",
        }
    )
    assert cfg.context is not None and cfg.context.available_lag == "15m"
    assert [r.value for r in cfg.repair] == ["sort", "drop_duplicates"]
