"""``ml4t validate CONFIG`` makes every check ``ml4t run`` makes before the first event
(it builds the same engine and graph without starting it), gathers the problems of one
pass, and writes nothing (issue 18)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from ml4t.backtest.record.outputs import DirectoryLock

from ._command import json_summary, ml4t, one_line_error

NO_RULE = "risk.rules=[{rule: no_such_rule}]"


def test_an_uninstalled_risk_rule_plugin_fails_validate_as_it_fails_run(
    demo_config: Path,
) -> None:
    validated = ml4t("validate", str(demo_config), "--set", NO_RULE)
    line = one_line_error(ml4t("run", str(demo_config), "--set", NO_RULE))
    # a rule is built while the config is read: both refuse it there, with its key path
    assert line.startswith("ml4t: invalid config: no risk rule plugin named 'no_such_rule'")
    assert line.endswith("at `$.risk.rules[0]`")
    assert validated.returncode == 2
    assert validated.stderr.splitlines() == [line]  # the message run gives, word for word


def test_problems_of_strategy_plugins_and_output_are_reported_together(
    demo_config: Path, tmp_path: Path
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    done = ml4t(
        "validate",
        str(demo_config),
        "--set",
        "strategy.class=NoSuchStrategy",
        "--output",
        str(taken),
    )
    assert done.returncode == 2
    err = done.stderr
    # (an uninstalled risk rule fails the config itself, before these: test above)
    assert err.startswith("ml4t: 2 problems, each below:\n")
    assert "$.strategy.class: " in err and "has no class 'NoSuchStrategy'" in err
    assert f"$.reporting.output_dir: {taken} is a file, not a directory" in err


def test_bad_strategy_parameters_are_found_without_running(demo_config: Path) -> None:
    done = ml4t("validate", str(demo_config), "--set", "strategy.params.no_such_knob=1")
    assert done.stderr == (
        "ml4t: $.strategy.params: strategy parameters of MLTop25Strategy: Object contains "
        "unknown field `no_such_knob`\n"
    )
    assert done.returncode == 2


def test_a_valid_config_passes_and_nothing_is_written(demo_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = ml4t("validate", str(demo_config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"strategy: MLTop25Strategy from {demo_config.parent}/strategies/ml_top25.py"
    assert "valid: 4,680 rows, 6 symbols, 780 timestamps in 1 chunk(s)" in lines  # 6 x 2 x 390
    assert f"output: {out}, writable (it will be made)" in lines
    assert lines[-1].startswith(f"ok: {demo_config} passes every check ml4t run makes")
    assert not out.exists()


def test_a_results_folder_in_use_by_a_run_is_a_problem(demo_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    lock = DirectoryLock(out)
    assert lock.acquire()  # as a run writing there now holds it
    try:
        done = ml4t("validate", str(demo_config), "--output", str(out))
    finally:
        lock.release()
    assert done.returncode == 2
    assert done.stderr == (
        f"ml4t: $.reporting.output_dir: {out} is in use by a run writing its results now; "
        "wait for it, or give this run its own output_dir\n"
    )


def test_every_broken_rule_of_the_data_and_the_universe_in_one_pass(tmp_path: Path) -> None:
    minute = 60_000_000_000
    start = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC
    bars = pl.DataFrame(
        {
            "timestamp": pl.Series(
                [start, start, start + minute, start + minute], dtype=pl.Datetime("ns", "UTC")
            ),
            "symbol": ["AAA", "BBB", "AAA", "AAA"],  # AAA twice at the second minute
            "open": [10.0, 20.0, 10.5, 10.5],
            "high": [10.8, 19.0, 11.0, 11.0],  # BBB's high is below its low
            "low": [9.9, 19.5, 10.1, 10.1],
            "close": [10.5, 19.6, 10.9, 10.9],
            "volume": [100.0, -5.0, 120.0, 120.0],  # BBB's volume is negative
        }
    )
    bars.write_parquet(tmp_path / "bars.parquet")
    # AAA's second membership starts on the day its first ends: the intervals overlap
    universe_rows = "AAA,2024-01-01,2024-01-04\nAAA,2024-01-04,\n"
    (tmp_path / "universe.csv").write_text(f"symbol,start,end\n{universe_rows}")
    config = tmp_path / "run.yaml"
    data = {"asset": {"path": "bars.parquet"}, "universe": {"path": "universe.csv"}}
    config.write_text(yaml.safe_dump({"data": data, "reporting": {"output_dir": None}}))
    done = ml4t("validate", str(config), "--json")
    assert done.returncode == 2
    summary = json_summary(done)
    assert summary["valid"] is False and len(summary["problems"]) == 2
    market, universe = summary["problems"]
    for rule in ("[duplicate]", "[high_below_low]", "[negative]"):
        assert rule in market, rule
    assert f"{tmp_path / 'universe.csv'}: row 2, column start: AAA starts 2024-01-04" in universe
    assert "strategy: none in the config" in summary["notes"][0]
