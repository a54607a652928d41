"""The ml4t command as a user runs it: in a child process, reading its output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml


def ml4t(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml4t.backtest.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_version() -> None:
    done = ml4t("--version")
    assert done.returncode == 0 and done.stdout.startswith("ml4t ")


def test_demo_writes_files_runs_and_prints_the_summary(tmp_path: Path) -> None:
    done = ml4t("demo", str(tmp_path / "demo"), "--symbols", "12", "--days", "5")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Backtest summary" in out and "final equity" in out and "completed" in out
    root = tmp_path / "demo"
    assert (root / "config.yaml").is_file() and (root / "strategies" / "ml_top25.py").is_file()
    for name in ("trades.parquet", "portfolio.parquet", "metrics.json", "manifest.json"):
        assert (root / "results" / name).is_file(), name
    # the written config runs again with `ml4t run`, with an override
    again = ml4t(
        "run",
        str(root / "config.yaml"),
        "--set",
        "backtest.initial_capital=500000",
        "--output",
        str(tmp_path / "again"),
    )
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "trades.parquet").is_file()


def test_bad_config_exits_2_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"backtest": {"initial_capital": "lots"}}))
    done = ml4t("run", str(path))
    assert done.returncode == 2
    assert "Expected `float`, got `str` - at `$.backtest.initial_capital`" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_reports_bad_data_and_good_data(tmp_path: Path) -> None:
    import polars as pl

    good = tmp_path / "good.parquet"
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series([0, 60_000_000_000], dtype=pl.Datetime("ns", "UTC")),
            "symbol": ["AAA", "AAA"],
            "open": [1.0, 1.1],
            "high": [1.2, 1.3],
            "low": [0.9, 1.0],
            "close": [1.1, 1.2],
            "volume": [100.0, 120.0],
        }
    )
    frame.write_parquet(good)
    done = ml4t("validate", str(good))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and "2 rows" in done.stdout
    bad = tmp_path / "bad.parquet"
    frame.with_columns(pl.Series("high", [1.2, 0.5])).write_parquet(bad)
    done = ml4t("validate", str(bad))
    assert done.returncode == 2
    assert "high" in done.stderr and "bad.parquet" in done.stderr
