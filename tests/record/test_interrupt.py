"""Interrupting a long run (a real signal to a child process) leaves only complete files.

- Ctrl-C (SIGINT) and SIGTERM: the recorder's ``on_stop`` still runs; every table,
  ``metrics.json`` and the manifest are complete, and the manifest says the run is
  incomplete and why. SIGTERM exits with status 143.
- A hard kill (SIGKILL): nothing gets to run, yet no file under a final name is half
  written: the tables being streamed are ``*.tmp`` files, and the manifest written at
  the start says the run has not finished. Nothing of an earlier run in the directory
  is left under a final name, and the killed run's partial journal survives the next run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ml4t.backtest import ComponentError
from ml4t.backtest.record import JOURNAL_FILE, Recorder, ReportingConfig, diagnostic, outputs
from ml4t.backtest.testing import Script, run_components

from ._world import random_world

DIAGNOSTIC_FILES = {f"{diagnostic.DIRECTORY}/{name}" for name in diagnostic.FILES}


def _top(files) -> set[str]:
    """The entries of the results directory the files are in (a folder for its files)."""
    return {name.split("/")[0] for name in files}


CHILD = textwrap.dedent(
    """
    import math, sys
    import polars as pl
    from ml4t.backtest import (Component, MarketBatch, OrderFilled, OrderSide,
        PortfolioSnapshot, Runtime, SimulatedClock)
    from ml4t.backtest.clock import AlarmPriority
    from ml4t.backtest.record import Recorder, ReportingConfig
    from ml4t.backtest.topics import FILLS, MARKET, PORTFOLIO

    SYMBOLS = [f"S{i:03d}" for i in range(50)]
    DTYPE = pl.Enum(SYMBOLS)
    MINUTE = 60 * 10**9

    class EndlessMarket(Component):
        '''One bar a minute for ever, a round trip every few bars, a snapshot per bar.'''

        def on_start(self):
            self.i = 0
            self.clock.schedule(1_700_000_000 * 10**9, self.tick, priority=AlarmPriority.DATA)

        def tick(self):
            now, i = self.now_ns(), self.i
            price = [100.0 + math.sin(i / 50 + k) for k in range(len(SYMBOLS))]
            frame = pl.DataFrame({
                "symbol": pl.Series(SYMBOLS, dtype=DTYPE), "open": price,
                "high": [p + 0.5 for p in price], "low": [p - 0.5 for p in price],
                "close": price, "volume": [1e5] * len(SYMBOLS), "signal": price,
            })
            self.publish(MARKET, MarketBatch(ts_event=now, frame=frame, context={"vix": 20.0}))
            symbol = SYMBOLS[i % len(SYMBOLS)]
            side = OrderSide.BUY if i % 2 == 0 else OrderSide.SELL
            self.publish(FILLS, OrderFilled(ts_event=now, fill_id=f"f{i}", order_id=f"o{i}",
                strategy_id="s", symbol=SYMBOLS[(i // 2) % len(SYMBOLS)], side=side,
                quantity=10.0, price=price[0], commission=1.0))
            self.publish(PORTFOLIO, PortfolioSnapshot(ts_event=now, equity=1e6 + i, cash=1e6,
                positions_value=i, gross_exposure=i, net_exposure=i, num_positions=i % 2))
            self.i += 1
            if self.i == 3000:
                print("running", flush=True)
            self.clock.schedule(now + MINUTE, self.tick, priority=AlarmPriority.DATA)

    runtime = Runtime(clock=SimulatedClock())
    runtime.add(EndlessMarket("market"))
    runtime.add(Recorder(ReportingConfig(output_dir=sys.argv[1], row_group_size=1000,
                                         html_report=sys.argv[2] == "report",
                                         journal=sys.argv[3] == "journal"),
                         run_config={"run": "endless"}))
    runtime.run_sync()
    """
)


def _start(out: Path, report: bool = False, journal: bool = False) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(out),
            "report" if report else "-",
            "journal" if journal else "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "running", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def test_sigint_leaves_complete_files_and_a_manifest_marked_incomplete(tmp_path: Path) -> None:
    proc = _start(tmp_path, report=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err

    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["status"] == "incomplete"
    assert "cancelled" in manifest["incomplete_reason"]
    expected = {
        "trades.parquet",
        "fills.parquet",
        "orders.parquet",
        "order_history.parquet",
        "portfolio.parquet",
        "cash_flows.parquet",
        "daily_returns.parquet",
        "daily_positions.parquet",
        "metrics.json",
        "config.yaml",
        "report.html",
        *DIAGNOSTIC_FILES,
    }
    assert set(manifest["files"]) == expected and set(names) == _top(expected) | {"manifest.json"}
    for name, info in manifest["files"].items():
        if name.endswith(".parquet"):
            meta = pq.ParquetFile(tmp_path / name).metadata
            assert meta.num_rows == info["rows"]
    bars = manifest["market_batches"]
    assert bars > 3000
    assert pq.ParquetFile(tmp_path / "portfolio.parquet").metadata.num_rows == bars
    assert pq.ParquetFile(tmp_path / "portfolio.parquet").metadata.num_row_groups > 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_fills"] == pq.ParquetFile(tmp_path / "fills.parquet").metadata.num_rows
    assert "Incomplete run" in (tmp_path / "report.html").read_text()


def test_a_hard_kill_leaves_no_file_that_looks_complete(tmp_path: Path) -> None:
    proc = _start(tmp_path)
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=60)

    files = {p.name: p for p in tmp_path.iterdir()}
    temps = [name for name in files if name.endswith(".tmp")]
    assert temps, "the streamed tables should be temporary files"
    assert all(name.startswith(".") for name in temps)
    final = {name for name in files if name not in temps}
    assert final == {"manifest.json"}
    manifest = json.loads(files["manifest.json"].read_text())
    assert manifest["complete"] is False and manifest["status"] == "running"
    assert manifest["files"] == {}


EXPECTED_FILES = {
    "trades.parquet",
    "fills.parquet",
    "orders.parquet",
    "order_history.parquet",
    "portfolio.parquet",
    "cash_flows.parquet",
    "daily_returns.parquet",
    "daily_positions.parquet",
    "metrics.json",
    "config.yaml",
    *DIAGNOSTIC_FILES,
}


def test_sigterm_flushes_complete_files_marks_them_terminated_and_exits_143(
    tmp_path: Path,
) -> None:
    proc = _start(tmp_path, journal=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err

    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith((".tmp", ".partial")) or n.startswith(".")]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["status"] == "incomplete"
    assert manifest["incomplete_reason"] == "the run was terminated (SIGTERM) before it finished"
    assert set(manifest["files"]) == EXPECTED_FILES | {JOURNAL_FILE}
    assert set(names) == _top(manifest["files"]) | {"manifest.json"}
    for name, info in manifest["files"].items():
        assert outputs.file_digest(tmp_path / name) == info["sha256"]
        if name.endswith(".parquet"):
            assert pq.ParquetFile(tmp_path / name).metadata.num_rows == info["rows"]
    assert manifest["market_batches"] > 3000
    rows = pq.ParquetFile(tmp_path / "portfolio.parquet").metadata.num_rows
    assert rows == manifest["market_batches"]


def test_a_run_killed_in_a_finished_runs_directory_leaves_none_of_its_files(
    tmp_path: Path,
) -> None:
    tape = random_world(days=8, symbols=2)
    finished = Recorder(ReportingConfig(output_dir=str(tmp_path)), run_config={"run": "one"})
    run_components(Script(tape.steps), finished)
    assert finished.results is not None and finished.results.complete

    proc = _start(tmp_path)
    try:  # while it runs, the directory is the child's: a third run is refused
        again = Recorder(ReportingConfig(output_dir=str(tmp_path)))
        with pytest.raises(ComponentError, match="is in use by another run"):
            run_components(Script(tape.steps), again)
    finally:
        proc.kill()
        proc.communicate(timeout=60)

    final = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    assert final == {"manifest.json"}  # none of the finished run's tables remain
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "running" and manifest["files"] == {}
    assert manifest["run_id"] != finished.results.run_id
    temps = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert temps and all(f".ml4t-{manifest['run_id']}.tmp" in name for name in temps)


def test_a_killed_runs_partial_journal_survives_the_next_run(tmp_path: Path) -> None:
    proc = _start(tmp_path, journal=True)
    time.sleep(0.3)
    proc.kill()
    proc.communicate(timeout=60)
    partial = {p.name: p.read_bytes() for p in tmp_path.iterdir() if JOURNAL_FILE in p.name}
    assert len(partial) == 1 and JOURNAL_FILE not in partial  # only a partial journal
    assert len(next(iter(partial.values()))) > 1_000_000

    tape = random_world(days=8, symbols=2)
    run_components(Script(tape.steps), Recorder(ReportingConfig(output_dir=str(tmp_path))))

    for name, data in partial.items():
        assert (tmp_path / name).read_bytes() == data
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] is True and JOURNAL_FILE not in manifest["files"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
