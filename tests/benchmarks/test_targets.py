"""The targets table: figures from results.json beside their bounds (nothing measured)."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path

from benchmarks import hotspots, sweep, targets
from benchmarks.engine import measure
from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset


def test_targets_without_results_say_not_measured_yet() -> None:
    text = targets.render({})
    assert text.count("not measured yet") == len(targets.TARGETS)


def test_targets_put_each_figure_beside_its_bound_and_say_whether_it_is_met() -> None:
    machine = {"date": "2026-12-02"}
    results = {
        "vs-vectorbt": {
            "machine": machine,
            "summary": {
                "time_ratio": 1.4,
                "memory_ratio": 0.3,
                "per_bar_ratio": 2.5,
                "wake_time_ratio": 0.6,
                "signal_batch_wake": {"wall_s": 4.2, "peak_rss_mb": 800},
                "vectorbt": {"wall_s": 7.0, "peak_rss_mb": 3000},
                "signal_batch": {"wall_s": 9.8, "peak_rss_mb": 900},
                "signal_per_bar": {"wall_s": 24.5, "peak_rss_mb": 900},
            },
        },
        "engine": {
            "machine": machine,
            "rows": {
                "overhead": {
                    "loop_events_per_s": 12_000_000,
                    "wall_s": 4.0,
                    "first_event_s": 0.8,
                    "bar_events": 24_480_000,
                },
                "overhead_wake": {
                    "loop_events_per_s": 9_000_000,
                    "wall_s": 2.5,
                    "first_event_s": 0.3,
                    "bar_events": 24_480_000,
                },
            },
        },
        "sweep-shared": {
            "machine": machine,
            "rows": [
                {"variant": "one", "wall_s": 10.0},
                {"variant": "shared-16", "wall_s": 50.0},
                {"variant": "one-wake", "wall_s": 5.0},
                {"variant": "shared-16-wake", "wall_s": 15.0},
            ],
        },
    }
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in targets.render(results).splitlines()
    }
    vs = rows["batch signal strategy, end to end, vs vectorbt load + simulate"]
    assert "<= 0.70x" in vs and "1.40x (9.8 s vs 7.0 s)" in vs and "| 2.00 | not met |" in vs
    assert "| met | vs-vectorbt, 2026-12-02 |" in rows["... its peak RSS vs vectorbt's"]
    woken = rows['batch signal strategy with `wake = "signal"`, vs vectorbt load + simulate']
    assert "0.60x (4.2 s vs 7.0 s)" in woken and "| met |" in woken
    loop = rows["framework overhead: run loop, bar-events/s (M)"]
    assert ">= 10 M/s" in loop and "12 M/s" in loop and "| 0.83 | met |" in loop
    assert "| 1.33 | not met |" in rows["framework overhead: the headline year end to end"]
    assert "not measured yet" in rows["the proposal's top-25 strategy as written, end to end"]
    quiet = 'framework overhead, the do-nothing strategy `wake = "signal"`: bar-events/s (M)'
    assert "9 M/s" in rows[quiet] and "| not met |" in rows[quiet]
    assert "| 2.5 s (24,480,000 bar-events" in rows["... the same, the headline year end to end"]
    assert "| met |" in rows["... the same, the headline year end to end"]
    sweep = rows["sweep: 16 points of the signal strategy, shared data pass, 2 cores, vs one run"]
    assert "5.00x (50.0 s vs one run 10.0 s)" in sweep and "| not met |" in sweep
    sweep_wake = rows['... the same, the strategy `wake = "signal"`']
    assert "3.00x (15.0 s vs one run 5.0 s)" in sweep_wake and "| met |" in sweep_wake


def test_the_shared_sweep_section_sets_each_variant_beside_its_own_one_run() -> None:
    rows = [
        {"variant": v, "runs": n, "wall_s": w, "peak_rss_mb": 800.0, "load_1m": 1.0}
        for v, n, w in (
            ("one", 1, 10.0),
            ("shared-16", 16, 50.0),
            ("one-wake", 1, 4.0),
            ("shared-16-wake", 16, 30.0),
        )
    ]
    info = {"date": "2026-12-04", "versions": {}, "cpus": 2, "cpu": "x", "memory_gib": 1}
    text = sweep.render_shared(rows, info | {"python": "3.11"})
    cells = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    assert "| 50.0 | 5.00x |" in cells["shared-16"]
    assert "| 30.0 | 7.50x |" in cells["shared-16-wake"]


def test_hotspots_charge_every_profiled_second_to_an_area(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_dataset(root, SyntheticConfig(n_symbols=4, n_days=2, seed=3))
    profiler = cProfile.Profile()
    profiler.runcall(measure, "signal_batch", 4, 2, 12, data=root)
    stats = pstats.Stats(profiler)
    areas = hotspots.by_area(stats)
    assert abs(sum(areas.values()) - stats.total_tt) < 1e-6 * max(1.0, stats.total_tt)  # type: ignore[attr-defined]
    for area in ("feed: per-timestamp slices and context", "bus, runtime, dispatch"):
        assert areas.get(area, 0.0) > 0.0, area
    assert hotspots.area_of(("/x/site-packages/polars/frame.py", 1, "f")) is None
    assert hotspots.area_of(("/r/ml4t/backtest/execution/broker.py", 1, "f")) == "broker"
