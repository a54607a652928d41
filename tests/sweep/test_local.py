"""Sweeps on the local process pool: results equal single runs, failures, resume, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from ml4t.backtest.config import load_config
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.record.outputs import json_safe
from ml4t.backtest.sweep import LocalExecutor, run_sweep
from ml4t.backtest.sweep.plan import is_complete

from .conftest import base_config


def test_grid_metrics_equal_single_runs_of_the_same_configs(local_grid, dataset) -> None:
    out, table = local_grid
    assert table.height == 6 and table["status"].to_list() == ["ok"] * 6
    assert table["run_id"].n_unique() == 6
    assert table["num_trades"].min() > 0, "the scenario must trade"
    assert table["sharpe_ratio"].n_unique() == 6, "every point must change the result"
    written_metrics = json.loads((Path(table["path"][0]) / "metrics.json").read_text())
    metrics = [c for c in table.columns if c in written_metrics]
    assert "sharpe_ratio" in metrics and "total_return" in metrics
    for row in table.iter_rows(named=True):
        overrides = [
            f"strategy.params.threshold={row['strategy.params.threshold']}",
            f"execution.slippage.params.bps={row['execution.slippage.params.bps']}",
        ]
        direct = BacktestEngine(load_config(base_config(dataset), overrides=overrides)).run()
        assert {m: row[m] for m in metrics} == json_safe(direct.metrics), row["run_id"]
        run_dir = Path(row["path"])
        assert run_dir == out / "runs" / row["run_id"] and is_complete(run_dir)
        assert row["config_hash"].startswith(row["run_id"])
    written = pl.read_parquet(out / "results.parquet")
    assert written.equals(table)
    summary = (out / "summary.html").read_text()
    assert summary.count("<rect") == 6 and "Best 6 runs" in summary  # a 2x3 heatmap
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["counts"] == {"ok": 6, "failed": 0} and len(plan["tasks"]) == 6


class Counting:
    """An executor that counts the tasks it is given and runs them on a real pool."""

    name = "local"

    def __init__(self) -> None:
        self.inner = LocalExecutor(2)
        self.submitted: list[str] = []

    def run(self, payloads: Sequence[dict[str, Any]], on_result: Any) -> None:
        self.submitted += [p["run_id"] for p in payloads]
        self.inner.run(payloads, on_result)


def test_resume_runs_nothing_new_then_only_the_run_whose_manifest_is_gone(
    dataset, tmp_path: Path
) -> None:
    sweep = {"params": {"execution.slippage.params.bps": [1.0, 3.0, 5.0]}}
    first = Counting()
    table = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=first)
    assert len(first.submitted) == 3 and not table["resumed"].any()

    second = Counting()
    again = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=second)
    assert second.submitted == [] and again["resumed"].all()
    columns = [c for c in table.columns if c not in {"duration_s", "resumed"}]
    assert again.select(columns).equals(table.select(columns))

    victim = table["run_id"][1]
    (tmp_path / "runs" / victim / "manifest.json").unlink()
    third = Counting()
    rerun = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=third)
    assert third.submitted == [victim]
    assert rerun["resumed"].to_list() == [True, False, True]
    assert rerun.select(columns).equals(table.select(columns))

    fourth = Counting()
    run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=fourth, resume=False)
    assert sorted(fourth.submitted) == sorted(table["run_id"])


def test_failing_tasks_are_recorded_and_the_sweep_goes_on(dataset, tmp_path: Path) -> None:
    sweep = {
        "params": {
            "strategy.params.fail_after": [None, 50],  # 50: raises mid-run
            "backtest.initial_capital": [100_000, -5],  # -5: an invalid config
        }
    }
    table = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=LocalExecutor(2))
    rows = {
        (r["strategy.params.fail_after"], r["backtest.initial_capital"]): r
        for r in table.iter_rows(named=True)
    }
    assert table.height == 4
    ok = rows[(None, 100_000)]
    assert ok["status"] == "ok" and ok["error"] is None and ok["num_trades"] > 0
    raised = rows[(50, 100_000)]
    assert raised["status"] == "failed" and raised["sharpe_ratio"] is None
    assert "model diverged after 50 timestamps" in raised["error"]
    run_dir = Path(raised["path"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is False  # flushed, marked incomplete
    assert "RuntimeError: model diverged" in (run_dir / "error.txt").read_text()
    for fail_after in (None, 50):
        invalid = rows[(fail_after, -5)]
        assert invalid["status"] == "failed" and invalid["path"] is None
        assert "initial_capital" in invalid["error"] and invalid["run_id"].startswith("invalid-")

    counting = Counting()
    again = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor=counting)
    assert counting.submitted == [raised["run_id"]]  # only the failed run runs again
    assert again["status"].to_list() == table["status"].to_list()


CHILD = textwrap.dedent(
    """
    import argparse, signal, sys
    from ml4t.backtest.sweep import add_cli

    # a shell may start background jobs with Ctrl-C ignored; this child wants it
    signal.signal(signal.SIGINT, signal.default_int_handler)

    parser = argparse.ArgumentParser(prog="ml4t")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.func(args))
    """
)


def _write_inputs(dataset, tmp_path: Path, params: dict[str, Any]) -> tuple[Path, Path]:
    config, grid = tmp_path / "run.yaml", tmp_path / "GRID.yaml"
    config.write_text(yaml.safe_dump(base_config(dataset)))
    grid.write_text(yaml.safe_dump({"params": params, "metric": "total_return"}))
    return config, grid


def test_cli_prints_the_best_runs_and_exits_1_when_a_run_failed(dataset, tmp_path: Path) -> None:
    config, grid = _write_inputs(dataset, tmp_path, {"strategy.params.fail_after": [None, 10]})
    out = tmp_path / "out"
    args = ["sweep", str(config), "--grid", str(grid), "--out", str(out), "--workers", "2"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == 1, proc.stderr
    assert "2 runs: 1 ok, 1 failed" in proc.stdout and "Best runs by total_return" in proc.stdout
    assert "model diverged after 10 timestamps" in proc.stdout
    assert pl.read_parquet(out / "results.parquet").height == 2


@pytest.mark.parametrize("target", ["driver", "process-group"])
def test_ctrl_c_cancels_outstanding_runs_and_writes_the_finished_ones(
    dataset, tmp_path: Path, target: str
) -> None:
    """Two quick runs finish; two slow ones are running and two queued when SIGINT comes,
    sent to the driver alone (``kill -INT``) or to its process group (Ctrl-C)."""
    # 2,340 timestamps: a slow run takes 9-19 s; the runtime yields every 256 alarms
    sleeps = [0.0, 1e-6, 0.004, 0.005, 0.006, 0.008]
    config, grid = _write_inputs(dataset, tmp_path, {"strategy.params.sleep": sleeps})
    out = tmp_path / "out"
    args = ["sweep", str(config), "--grid", str(grid), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(out / "runs", complete=2, running=2)
        time.sleep(0.5)  # let the slow runs get going
        if target == "driver":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stdout
    table = pl.read_parquet(out / "results.parquet")
    assert table["strategy.params.sleep"].to_list() == [0.0, 1e-6]  # what finished, only
    runs = out / "runs"
    assert table["status"].to_list() == ["ok", "ok"]
    states = sorted(_state(d) for d in runs.iterdir())
    # the slow runs were cancelled, not awaited (awaited, they would be complete); 2 never
    # started
    assert states == ["cancelled", "cancelled", "complete", "complete"]
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["interrupted"] is True


def _wait_for(runs: Path, *, complete: int, running: int) -> None:
    states: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [_state(d) for d in runs.iterdir()] if runs.exists() else []
        if states.count("complete") == complete and states.count("running") == running:
            return
        time.sleep(0.1)
    pytest.fail(f"the sweep never reached {complete} complete + {running} running: {states}")


def _state(run_dir: Path) -> str:
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return "starting"
    if manifest["complete"]:
        return "complete"
    if manifest["status"] == "running":
        return "running"
    return "cancelled" if "cancelled" in (manifest["incomplete_reason"] or "") else "other"
