"""Sweeps on a real two-node Ray cluster: a head and a worker node, each its own
``ray start`` process on this machine, the driver joining by address.

Both nodes see this machine's disk, but the sweep treats the node it is not attached to
as another machine: tasks there send their run directories back, so that what the
driver holds is checked against each run's manifest (every file's size and hash).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import ray
from polars.testing import assert_frame_equal
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ml4t.backtest.config import load_config
from ml4t.backtest.sweep import load_spec, plan_tasks, run_sweep
from ml4t.backtest.sweep.plan import base_text
from ml4t.backtest.sweep.remote import run_ray_task

from .conftest import GRID_2X3, base_config
from .raycluster import Cluster, client_server_logs, two_node_cluster
from .test_local import CHILD, _write_inputs

pytestmark = pytest.mark.slow
VOLATILE = ["duration_s", "path"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Started once for the module (about 15 s); stopping it fails if a process of it
    outlives its node."""
    with two_node_cluster() as started:
        yield started


def _check_run_dir(run_dir: Path) -> None:
    """The run's manifest says complete and lists exactly the files there, by hash."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True
    for name, entry in manifest["files"].items():
        data = (run_dir / name).read_bytes()
        assert len(data) == entry["bytes"], name
        assert "sha256:" + hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_cluster_sweep_gives_the_local_table_from_both_nodes_and_resumes(
    cluster: Cluster, local_grid, dataset, tmp_path: Path
) -> None:
    _, local = local_grid
    config = base_config(dataset)
    table = run_sweep(config, GRID_2X3, out_dir=tmp_path, executor="ray", address=cluster.address)
    assert not ray.is_initialized(), "the sweep left the cluster it joined"
    assert table["status"].to_list() == ["ok"] * 6
    assert_frame_equal(table.drop(VOLATILE).sort("run_id"), local.drop(VOLATILE).sort("run_id"))
    assert table["path"].to_list() == [str(tmp_path / "runs" / r) for r in table["run_id"]]

    placement = json.loads((tmp_path / "sweep.json").read_text())["placement"]
    assert set(placement) == set(table["run_id"])
    assert {p["node"] for p in placement.values()} == cluster.node_ids, "both nodes ran tasks"
    # the driver is attached to one node; every run of the other came back as bytes
    shipped = {p["node"] for p in placement.values() if p["shipped"]}
    in_place = {p["node"] for p in placement.values() if not p["shipped"]}
    assert len(shipped) == 1 and len(in_place) == 1 and shipped != in_place
    for run_id in table["run_id"]:
        _check_run_dir(tmp_path / "runs" / run_id)

    again = run_sweep(config, GRID_2X3, out_dir=tmp_path, executor="ray", address=cluster.address)
    assert again["resumed"].to_list() == [True] * 6, "every run's files are on the driver"
    assert_frame_equal(again.drop("resumed", "duration_s"), table.drop("resumed", "duration_s"))


def test_a_task_on_the_other_node_returns_its_run_as_bytes(
    cluster: Cluster, dataset, tmp_path: Path
) -> None:
    """Forced onto the node the driver is not on: nothing stays on that node's disk,
    everything the run wrote is in the result."""
    base = load_config(base_config(dataset))
    task = plan_tasks(base, load_spec({"params": {"strategy.params.threshold": [0.4]}}))[0]
    payload = task.payload(base_text(base), tmp_path / "runs", "warning")
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        driver = ray.get_runtime_context().get_node_id()
        (other,) = cluster.node_ids - {driver}
        placed = NodeAffinitySchedulingStrategy(node_id=other, soft=False)
        remote = ray.remote(num_cpus=1, max_retries=0, scheduling_strategy=placed)
        result: dict[str, Any] = ray.get(remote(run_ray_task).remote(payload, driver))
    finally:
        ray.shutdown()
    assert result["status"] == "ok" and result["node"] == other
    assert result["path"] == payload["run_dir"]
    assert not Path(payload["run_dir"]).exists(), "the node removed its copy"
    files: dict[str, bytes] = result["files"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["complete"] is True
    assert set(manifest["files"]) <= set(files) and "diagnostic/trades.parquet" in files
    assert json.loads(files["metrics.json"]) == result["metrics"]


def test_cli_with_address_runs_on_the_cluster(cluster: Cluster, dataset, tmp_path: Path) -> None:
    config, grid = _write_inputs(dataset, tmp_path, {"execution.slippage.params.bps": [1.0, 4.0]})
    out = tmp_path / "out"
    args = ["sweep", str(config), "--grid", str(grid), "--output", str(out)]
    args += ["--address", cluster.address]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args],
        capture_output=True,
        text=True,
        timeout=100,
        env=cluster.env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 runs: 2 ok, 0 failed" in proc.stdout
    table = pl.read_parquet(out / "results.parquet")
    assert table["status"].to_list() == ["ok", "ok"]
    plan = json.loads((out / "sweep.json").read_text())
    assert plan["executor"] == "ray"
    assert {p["node"] for p in plan["placement"].values()} <= cluster.node_ids
    for run_id in table["run_id"]:
        _check_run_dir(out / "runs" / run_id)


def test_through_ray_client_every_run_is_sent_back(
    cluster: Cluster, dataset, tmp_path: Path
) -> None:
    """A driver outside the cluster (Ray Client) shares no node's disk."""
    sweep = {"params": {"strategy.params.threshold": [0.4, 0.6]}}
    try:
        table = run_sweep(
            base_config(dataset),
            sweep,
            out_dir=tmp_path,
            executor="ray",
            address=cluster.client_address,
        )
    except Exception as exc:  # the client server's own logs say why it did not start
        raise AssertionError(f"{exc}\n{client_server_logs(cluster)}") from exc
    assert table["status"].to_list() == ["ok", "ok"], client_server_logs(cluster)
    placement = json.loads((tmp_path / "sweep.json").read_text())["placement"]
    assert [placement[r]["shipped"] for r in table["run_id"]] == [True, True]
    for run_id in table["run_id"]:
        _check_run_dir(tmp_path / "runs" / run_id)
