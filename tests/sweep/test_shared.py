"""Sweeps sharing one data pass: the same files as separate runs, failures, grouping, resume.

"Byte-identical" here compares file bytes: every parquet table of a run directory and its
``metrics.json``. ``config.yaml`` and ``manifest.json`` name the run's own directory (and
the manifest its start time and duration), so of those only the outcome is compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pytest

from ml4t.backtest.config import load_config
from ml4t.backtest.engine import BacktestEngine
from ml4t.backtest.sweep import LocalExecutor, load_spec, plan_tasks, run_sweep
from ml4t.backtest.sweep.plan import base_text, is_complete
from ml4t.backtest.sweep.shared import share_groups

from .conftest import GRID_2X3, base_config
from .test_local import CHILD, _state, _wait_for, _write_inputs

TABLES = ("trades", "fills", "orders", "order_history", "portfolio", "daily_returns")
CHUNKED = ["data.chunk_memory_mb=0.05"]
"""Chunks of about 250 rows: the 9,360 rows of the data set in some 40 chunks, so the
runs of a pass go in lock-step over many of them."""


class Recording:
    """A local executor that keeps the payloads it is given (groups and single tasks)."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.inner = LocalExecutor(workers)
        self.workers = workers
        self.payloads: list[dict[str, Any]] = []

    def run(self, payloads: Sequence[dict[str, Any]], on_result: Any) -> None:
        self.payloads += payloads
        self.inner.run(payloads, on_result)

    def shapes(self) -> list[list[str]]:
        """The run ids of each payload: several for a group, one for a task alone."""
        return [[m["run_id"] for m in p.get("group", [p])] for p in self.payloads]


@pytest.fixture(scope="module")
def both(dataset, tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 2x3 grid shared (2 workers: two passes of 3 points) and as separate runs."""
    shared_exec = Recording(2)
    shared = run_sweep(
        base_config(dataset),
        GRID_2X3,
        out_dir=tmp_path_factory.mktemp("shared"),
        executor=shared_exec,
        share_data=True,
        overrides=CHUNKED,
    )
    assert sorted(len(s) for s in shared_exec.shapes()) == [3, 3], shared_exec.shapes()
    separate = run_sweep(
        base_config(dataset),
        GRID_2X3,
        out_dir=tmp_path_factory.mktemp("separate"),
        executor=LocalExecutor(2),
        overrides=CHUNKED,
    )
    return shared, separate


def _assert_same_run(shared_dir: Path, separate_dir: Path) -> None:
    for name in (*TABLES, "metrics"):
        suffix = ".json" if name == "metrics" else ".parquet"
        ours, theirs = shared_dir / f"{name}{suffix}", separate_dir / f"{name}{suffix}"
        assert ours.read_bytes() == theirs.read_bytes(), f"{ours.name} of {shared_dir.name}"
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (shared_dir, separate_dir)]
    assert [m["complete"] for m in manifests] == [True, True]
    assert manifests[0]["status"] == manifests[1]["status"]


def test_shared_sweep_writes_byte_identical_tables_to_separate_runs(both) -> None:
    shared, separate = both
    assert shared["status"].to_list() == ["ok"] * 6, shared["error"].to_list()
    assert shared["run_id"].to_list() == separate["run_id"].to_list()
    assert shared["num_trades"].min() > 0, "the scenario must trade"
    assert shared["sharpe_ratio"].n_unique() == 6, "every point must change the result"
    for ours, theirs in zip(shared["path"], separate["path"], strict=True):
        _assert_same_run(Path(ours), Path(theirs))
    volatile = {"duration_s", "path"}
    columns = [c for c in shared.columns if c not in volatile]
    assert shared.select(columns).equals(separate.select(columns))  # the metrics rows, exactly


def test_a_point_that_fails_in_a_shared_pass_fails_alone(dataset, both, tmp_path: Path) -> None:
    """One pass of four points (one worker); two raise part-way, the others finish."""
    sweep = {
        "params": {
            "strategy.params.threshold": [0.4, 0.6],
            "strategy.params.fail_after": [None, 50],
        }
    }
    executor = Recording(1)
    table = run_sweep(
        base_config(dataset),
        sweep,
        out_dir=tmp_path,
        executor=executor,
        share_data=True,
        overrides=CHUNKED,
    )
    assert [len(s) for s in executor.shapes()] == [4]
    rows = {
        (r["strategy.params.threshold"], r["strategy.params.fail_after"]): r
        for r in table.iter_rows(named=True)
    }
    for threshold in (0.4, 0.6):
        raised = rows[(threshold, 50)]
        assert raised["status"] == "failed" and raised["sharpe_ratio"] is None
        assert "model diverged after 50 timestamps" in raised["error"]
        run_dir = Path(raised["path"])
        assert json.loads((run_dir / "manifest.json").read_text())["complete"] is False
        assert "RuntimeError: model diverged" in (run_dir / "error.txt").read_text()
        ok = rows[(threshold, None)]
        assert ok["status"] == "ok" and ok["num_trades"] > 0
        alone_dir = tmp_path / f"alone-{threshold}"
        overrides = [
            *CHUNKED,
            f"strategy.params.threshold={threshold}",
            f"reporting.output_dir={alone_dir}",
        ]
        alone = BacktestEngine(load_config(base_config(dataset), overrides=overrides)).run()
        assert alone.complete
        _assert_same_run(Path(ok["path"]), alone_dir)


def test_a_point_whose_engine_does_not_build_leaves_the_pass_to_the_others(
    dataset, tmp_path: Path
) -> None:
    """Its strategy refuses its parameters before the feed starts: the other run of the
    pass must not wait for it at the next chunk."""
    sweep = {"params": {"strategy.params.size": [10.0, "many"]}}
    executor = Recording(1)
    table = run_sweep(
        base_config(dataset),
        sweep,
        out_dir=tmp_path,
        executor=executor,
        share_data=True,
        overrides=CHUNKED,
    )
    assert [len(s) for s in executor.shapes()] == [2]
    rows = {r["strategy.params.size"]: r for r in table.iter_rows(named=True)}
    assert rows["10.0"]["status"] == "ok" and rows["10.0"]["num_trades"] > 0
    assert rows["many"]["status"] == "failed" and "size" in rows["many"]["error"]


def test_points_that_read_different_data_run_separately(dataset, tmp_path: Path) -> None:
    sweep = {"params": {"backtest.end_date": ["2023-01-06", "2023-01-10"]}}
    executor = Recording(2)
    table = run_sweep(
        base_config(dataset), sweep, out_dir=tmp_path, executor=executor, share_data=True
    )
    assert executor.shapes() == [[r] for r in table["run_id"]]  # no group: two tasks alone
    assert table["status"].to_list() == ["ok", "ok"]
    assert table["num_trades"].n_unique() == 2, "the two spans must trade differently"


def test_share_groups_split_each_feed_group_round_robin_over_the_workers(dataset) -> None:
    base = load_config(base_config(dataset))
    spec = load_spec(
        {
            "params": {
                "backtest.end_date": ["2023-01-06", "2023-01-10"],
                "strategy.params.threshold": [0.3, 0.4, 0.5, 0.6, 0.7],
            }
        }
    )
    tasks = plan_tasks(base, spec)
    payloads = share_groups(tasks, base_text(base), Path("runs"), "warning", workers=2)
    ids = [t.run_id for t in tasks]
    shapes = [[m["run_id"] for m in p.get("group", [p])] for p in payloads]
    # per end date, five points: the 1st, 3rd, 5th on one worker, the 2nd and 4th on the other
    assert shapes == [
        [ids[0], ids[2], ids[4]],
        [ids[1], ids[3]],
        [ids[5], ids[7], ids[9]],
        [ids[6], ids[8]],
    ]
    alone = share_groups(tasks[:1], base_text(base), Path("runs"), "warning", workers=2)
    assert "group" not in alone[0] and alone[0]["run_id"] == ids[0]
    with_plugin = msgspec.structs.replace(
        base, plugins=msgspec.structs.replace(base.plugins, feed="custom")
    )
    text = base_text(with_plugin)
    plugin_tasks = plan_tasks(with_plugin, load_spec({"params": spec.params}))
    assert all(
        "group" not in p for p in share_groups(plugin_tasks, text, Path("r"), "warning", workers=2)
    )


def test_shared_resume_skips_finished_points_and_shares_the_rest(dataset, tmp_path: Path) -> None:
    sweep = {"params": {"execution.slippage.params.bps": [1.0, 3.0, 5.0]}}
    config = base_config(dataset)
    first = Recording(1)
    table = run_sweep(config, sweep, out_dir=tmp_path, executor=first, share_data=True)
    assert first.shapes() == [table["run_id"].to_list()]

    second = Recording(1)
    again = run_sweep(config, sweep, out_dir=tmp_path, executor=second, share_data=True)
    assert second.payloads == [] and again["resumed"].all()

    gone = table["run_id"].to_list()[1:]
    for run_id in gone:
        (tmp_path / "runs" / run_id / "manifest.json").unlink()
    third = Recording(1)
    rerun = run_sweep(config, sweep, out_dir=tmp_path, executor=third, share_data=True)
    assert third.shapes() == [gone]
    assert rerun["resumed"].to_list() == [True, False, False]
    columns = [c for c in table.columns if c not in {"duration_s", "resumed"}]
    assert rerun.select(columns).equals(table.select(columns))
    assert all(is_complete(tmp_path / "runs" / r) for r in table["run_id"])


def test_share_data_on_ray_is_refused(dataset, tmp_path: Path) -> None:
    from ml4t.backtest.errors import ConfigError

    with pytest.raises(ConfigError, match="share_data runs on the local executor"):
        run_sweep(base_config(dataset), GRID_2X3, out_dir=tmp_path, executor="ray", share_data=True)


def test_ctrl_c_cancels_every_run_of_a_shared_pass_and_keeps_the_finished(
    dataset, tmp_path: Path
) -> None:
    """Two passes of two points: in each a quick point finishes, a slow one is running
    when the driver gets SIGINT; the slow ones flush their results marked cancelled."""
    sleeps = [0.0, 1e-6, 0.005, 0.006]
    config, grid = _write_inputs(dataset, tmp_path, {"strategy.params.sleep": sleeps})
    out = tmp_path / "out"
    args = ["sweep", str(config), "--grid", str(grid), "--output", str(out)]
    args += ["--workers", "2", "--share-data"]
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
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    table = pl.read_parquet(out / "results.parquet")
    assert table["strategy.params.sleep"].to_list() == [0.0, 1e-6]
    assert table["status"].to_list() == ["ok", "ok"]
    states = sorted(_state(d) for d in (out / "runs").iterdir())
    assert states == ["cancelled", "cancelled", "complete", "complete"]


def test_a_run_of_a_pass_waits_for_the_slowest_one_chunk_behind(dataset) -> None:
    """Lock-step: run A may hold chunk 1 while B holds chunk 0, not chunk 2; once B
    leaves (it stopped or failed), A goes on alone."""
    from ml4t.backtest.data._shared import SharedPass
    from ml4t.backtest.engine import feed_config

    config = load_config(base_config(dataset), overrides=CHUNKED)
    shared = SharedPass(feed_config(config))
    shared.prepare()
    a, b = shared.join(), shared.join()
    first = shared.chunk(a, 0)
    assert first is not None and shared.chunk(b, 0) is first  # the same objects for both
    assert shared.chunk(a, 1) is not None
    got: list[Any] = []
    ahead = threading.Thread(target=lambda: got.append(shared.chunk(a, 2)), daemon=True)
    ahead.start()
    ahead.join(0.3)
    assert ahead.is_alive() and got == [], "A took chunk 2 while B was still on chunk 0"
    shared.leave(b)
    ahead.join(10)
    assert not ahead.is_alive() and got[0] is not None
    chunk, batches = got[0]
    assert [batch.ts_event for batch in batches] == chunk.ts
    shared.leave(a)
