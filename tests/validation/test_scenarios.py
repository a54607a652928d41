"""The scenarios themselves and ml4t's side of them (no peer needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ml4t.backtest.logging import configure_logging
from validation.compare import compare_runs, negative_controls
from validation.data import SIGNALS, make_panel
from validation.run_ml4t import run_ml4t
from validation.scenarios import SCENARIOS

BY_ID = {s.id: s for s in SCENARIOS}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    configure_logging("warning")


def test_twenty_scenarios_in_order_with_unique_ids() -> None:
    assert [s.id for s in SCENARIOS] == [f"{i:02d}" for i in range(1, 21)]


def test_skips_name_the_peer_and_say_why() -> None:
    skipped = {(s.id, peer) for s in SCENARIOS for peer in s.skip}
    assert skipped == {
        ("06", "vectorbt"),
        ("07", "vectorbt"),
        ("14", "vectorbt"),
        ("15", "vectorbt"),
    }
    assert all(len(reason) > 40 for s in SCENARIOS for reason in s.skip.values())


def test_data_is_deterministic_and_consistent() -> None:
    a = make_panel(seed=5, n_bars=300, n_symbols=3, regime_gaps=0.05, short_rate=0.05)
    b = make_panel(seed=5, n_bars=300, n_symbols=3, regime_gaps=0.05, short_rate=0.05)
    assert a.frame.equals(b.frame)
    f = a.frame
    assert (f["low"] <= f[["open", "close"]].min_horizontal()).all()
    assert (f["high"] >= f[["open", "close"]].max_horizontal()).all()
    signals = np.stack([a.frame[s].to_numpy() for s in SIGNALS])
    assert signals.sum(axis=0).max() == 1  # never two signals on one bar


def test_daily_signals_only_on_the_first_bar_of_each_session() -> None:
    panel = make_panel(seed=1, n_bars=780, frequency="1m", entry_rate=0.9, signal_every=390)
    entries = np.flatnonzero(panel.wide("long_entry")[:, 0])
    assert set(entries.tolist()) <= {0, 390}


@pytest.mark.parametrize("peer", ["vectorbt", "backtrader"])
@pytest.mark.parametrize("sid", ["01", "10", "15", "18", "20"])
def test_ml4t_side_is_deterministic_and_its_controls_fire(sid: str, peer: str) -> None:
    scenario = BY_ID[sid]
    panel = scenario.data(True)
    first = run_ml4t(scenario, panel, peer)
    second = run_ml4t(scenario, panel, peer)
    assert first.fills.height > 10, "the scenario must trade"
    assert all(c.ok for c in compare_runs(first, second))
    assert all(negative_controls(first, second).values())


def test_presets_change_what_ml4t_does() -> None:
    """The same bracket scenario under the two presets: different fill timing (same
    close against next open) gives different fills, so the presets are not no-ops."""
    scenario = BY_ID["10"]
    panel = scenario.data(True)
    vbt = run_ml4t(scenario, panel, "vectorbt")
    bt = run_ml4t(scenario, panel, "backtrader")
    real = run_ml4t(scenario, panel, "realistic")
    assert not compare_runs(vbt, bt)[1].ok
    assert (
        vbt.fills["price"][0]
        == panel.frame["close"][int(np.argmax(panel.wide("long_entry")[:, 0]))]
    )
    assert real.fills.height > 0
