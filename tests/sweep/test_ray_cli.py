"""``ml4t sweep --executor ray`` with no Ray running: it starts one and shuts it down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

from .test_local import CHILD, _write_inputs


def test_cli_on_ray_starts_and_stops_its_own_local_ray(dataset, tmp_path: Path) -> None:
    config, grid = _write_inputs(dataset, tmp_path, {"execution.slippage.params.bps": [1.0, 4.0]})
    out = tmp_path / "out"
    args = ["sweep", str(config), "--grid", str(grid), "--out", str(out)]
    args += ["--executor", "ray", "--workers", "2"]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=100
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 runs: 2 ok, 0 failed" in proc.stdout
    table = pl.read_parquet(out / "results.parquet")
    assert table["status"].to_list() == ["ok", "ok"]
