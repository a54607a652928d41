"""``ml4t sweep``: ``--output`` (``--out`` still works, and says it is deprecated), a
resumed sweep says how many runs it skipped, and the best-runs table never cuts a
column name or a run id, however narrow the terminal (issue 18)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from ._command import json_summary, ml4t

GRID = {"params": {"strategy.params.max_positions": [2, 3]}, "metric": "total_return"}


@pytest.fixture(scope="module")
def swept(demo_config: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A two-run sweep of the demo, run once: (grid file, sweep folder, its stdout)."""
    root = tmp_path_factory.mktemp("sweep")
    grid = root / "GRID.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    out = root / "out"
    done = ml4t(
        "sweep",
        str(demo_config),
        "--grid",
        str(grid),
        "--output",
        str(out),
        "--workers",
        "1",
        columns=40,
    )
    assert done.returncode == 0, done.stderr
    return grid, out, done.stdout


def test_the_first_sweep_runs_everything_and_shows_whole_names(swept) -> None:
    _, out, stdout = swept
    assert stdout.splitlines()[0] == "2 runs: 2 ok, 0 failed"
    assert "…" not in stdout  # a 40-column terminal, and nothing cut
    table = pl.read_parquet(out / "results.parquet")
    for run_id in table["run_id"]:
        assert run_id in stdout
    assert "max_positions" in stdout and "parameters under strategy.params." in stdout


def test_a_resumed_sweep_says_how_many_runs_it_skipped(demo_config: Path, swept) -> None:
    grid, out, _ = swept
    done = ml4t("sweep", str(demo_config), "--grid", str(grid), "--out", str(out), columns=40)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "ml4t: --out is deprecated; use --output\n"
    assert done.stdout.splitlines()[0] == (
        "2 runs: 2 ok, 0 failed; 2 skipped: complete from an earlier run (--no-resume runs "
        "them again)"
    )


def test_the_json_summary_of_a_sweep(demo_config: Path, swept) -> None:
    grid, out, _ = swept
    done = ml4t("sweep", str(demo_config), "--grid", str(grid), "--output", str(out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json_summary(done)
    assert (summary["runs"], summary["ok"], summary["failed"], summary["skipped"]) == (2, 2, 0, 2)
    assert summary["results"] == str(out / "results.parquet")
    table = pl.read_parquet(out / "results.parquet")
    best = table.sort("total_return", descending=True, maintain_order=True)
    assert [row["run_id"] for row in summary["best"]] == best["run_id"].to_list()
    assert {row["strategy.params.max_positions"] for row in summary["best"]} == {2, 3}


def test_a_missing_sweep_file_is_named_as_such(demo_config: Path, tmp_path: Path) -> None:
    done = ml4t("sweep", str(demo_config), "--grid", str(tmp_path / "GRID.yaml"))
    assert done.returncode == 2
    assert done.stderr == f"ml4t: --grid {tmp_path / 'GRID.yaml'}: no such sweep file\n"
