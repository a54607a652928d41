"""Sweeps on Ray in local mode: the same table as the local pool; cancellation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from polars.testing import assert_frame_equal

from ml4t.backtest.config import load_config
from ml4t.backtest.sweep import RayExecutor, load_spec, plan_tasks, run_sweep
from ml4t.backtest.sweep.plan import base_text

from .conftest import GRID_2X3, base_config

VOLATILE = ["duration_s", "path"]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    """One local Ray for the module (it takes seconds to start); the sweeps join it."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


def test_ray_gives_the_same_table_as_the_local_pool(local_grid, dataset, tmp_path: Path) -> None:
    _, local = local_grid
    table = run_sweep(base_config(dataset), GRID_2X3, out_dir=tmp_path, executor="ray")
    assert ray.is_initialized(), "a Ray the caller started is left running"
    assert table["status"].to_list() == ["ok"] * 6
    assert_frame_equal(table.drop(VOLATILE).sort("run_id"), local.drop(VOLATILE).sort("run_id"))
    assert table["path"].to_list() == [str(tmp_path / "runs" / r) for r in table["run_id"]]


def test_ray_records_a_failing_task_and_goes_on(dataset, tmp_path: Path) -> None:
    sweep = {"params": {"strategy.params.fail_after": [None, 20]}}
    table = run_sweep(base_config(dataset), sweep, out_dir=tmp_path, executor="ray")
    assert table["status"].to_list() == ["ok", "failed"]
    assert "model diverged after 20 timestamps" in table["error"][1]


def test_ctrl_c_on_the_driver_cancels_the_ray_tasks(dataset, tmp_path: Path) -> None:
    """The first result arrives, then Ctrl-C: the slow runs are cancelled, not awaited."""
    spec = load_spec({"params": {"strategy.params.sleep": [0.0, 0.01, 0.011, 0.012]}})
    base = load_config(base_config(dataset))
    text = base_text(base)
    payloads = [t.payload(text, tmp_path, "warning") for t in plan_tasks(base, spec)]
    received: list[dict[str, Any]] = []

    def on_result(result: dict[str, Any]) -> None:
        received.append(result)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RayExecutor(grace=20).run(payloads, on_result)
    assert [r["status"] for r in received] == ["ok"]
    assert received[0]["run_id"] == payloads[0]["run_id"]
    # the slow runs (25 s or more each) were cancelled, not awaited: none completed; one
    # that had started beside the first was flushed and marked incomplete
    for payload in payloads[1:]:
        manifest = Path(payload["run_dir"]) / "manifest.json"
        assert not manifest.exists() or not json.loads(manifest.read_text())["complete"]
