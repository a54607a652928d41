"""A run's lifecycle and its manifest: each run owns its output directory, and a failure
anywhere (a handler, ``sys.exit()``, ``on_start``, ``on_stop``) fails the run with a
manifest that says so and why."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from ml4t.backtest import Component, ComponentError, MarketBatch, Runtime, SimulatedClock, on
from ml4t.backtest.record import JOURNAL_FILE, Recorder, RecorderResults, ReportingConfig, outputs
from ml4t.backtest.runtime import RunOutcome
from ml4t.backtest.testing import Script
from ml4t.backtest.topics import MARKET

from ._world import day, random_world

ALL_TABLES = ["trades.parquet", "fills.parquet", "orders.parquet", "order_history.parquet"]


def _recorder(out: Path, **config: Any) -> Recorder:
    return Recorder(
        ReportingConfig(output_dir=str(out), **config),
        initial_equity=100_000.0,
        run_config={"strategy": "toy"},
    )


def _run(*components: Component, observer: Recorder | None = None) -> Runtime:
    """Run ``components`` (and ``observer``, added as one, last) on a simulated clock."""
    runtime = Runtime(clock=SimulatedClock(0))
    for component in components:
        runtime.add(component)
    if observer is not None:
        runtime.add(observer, observer=True)
    runtime.run_sync()
    return runtime


def _manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())


# ------------------------------------------------------------------ each run owns its files


def test_a_rerun_replaces_every_file_of_the_previous_run_and_lists_only_its_own(
    tmp_path: Path,
) -> None:
    tape = random_world(days=8, symbols=2)
    _run(Script(tape.steps), _recorder(tmp_path, journal=True))
    first = _manifest(tmp_path)
    assert set(first["files"]) >= {*ALL_TABLES, "portfolio.parquet", JOURNAL_FILE}

    _run(Script(tape.steps), _recorder(tmp_path, tables=["trades"]))

    second = _manifest(tmp_path)
    assert second["run_id"] != first["run_id"] and second["complete"] is True
    own = {"trades.parquet", "metrics.json", "config.yaml"}
    assert set(second["files"]) == own  # no stale journal, no tables of the first run
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(own | {"manifest.json"})
    for name, info in second["files"].items():
        assert info["sha256"] == outputs.file_digest(tmp_path / name)


def test_loaded_results_read_only_the_tables_their_manifest_lists(tmp_path: Path) -> None:
    tape = random_world(days=8, symbols=2)
    _run(Script(tape.steps), _recorder(tmp_path / "a"))
    _run(Script(tape.steps), _recorder(tmp_path / "b", tables=["trades"]))
    stray = (tmp_path / "a" / "fills.parquet").read_bytes()
    (tmp_path / "b" / "fills.parquet").write_bytes(stray)  # not written by run b

    loaded = RecorderResults.load(tmp_path / "b")

    assert loaded.run_id == _manifest(tmp_path / "b")["run_id"]
    assert RecorderResults.load(tmp_path / "a").fills.height > 0
    assert loaded.fills.height == 0 and loaded.trades.height > 0


def test_a_run_into_a_directory_in_use_fails_and_touches_nothing(tmp_path: Path) -> None:
    holder = outputs.DirectoryLock(tmp_path)
    assert holder.acquire()  # another run is writing here
    running = b'{"status": "running", "run_id": "20240102T030405Z-1a2b3c4d"}'
    (tmp_path / "manifest.json").write_bytes(running)
    try:
        with pytest.raises(ComponentError, match="is in use by another run") as info:
            _run(Script(random_world(days=3, symbols=1).steps), _recorder(tmp_path))
    finally:
        holder.release()
    assert "run 20240102T030405Z-1a2b3c4d" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert (tmp_path / "manifest.json").read_bytes() == running


# ------------------------------------------------------------------ failures fail the run


class StopFails(Component):
    def on_stop(self) -> None:
        raise RuntimeError("could not flush the model cache")


@pytest.mark.parametrize("recorder_stops", ["first", "last"])
def test_a_component_raising_in_on_stop_fails_the_run_and_the_manifest_says_so(
    tmp_path: Path, recorder_stops: str
) -> None:
    tape = random_world(days=5, symbols=1)
    recorder = _recorder(tmp_path)
    # components stop in the reverse order they started
    graph = [Script(tape.steps), StopFails("cache"), recorder]
    if recorder_stops == "last":
        graph = [recorder, Script(tape.steps), StopFails("cache")]
    with pytest.raises(ComponentError, match="'cache' failed in on_stop: RuntimeError: could"):
        _run(*graph)

    manifest = _manifest(tmp_path)
    assert manifest["complete"] is False and manifest["status"] == "failed"
    assert "could not flush the model cache" in manifest["incomplete_reason"]
    assert recorder.results is not None and recorder.results.manifest == manifest
    assert "trades.parquet" in manifest["files"]  # the results themselves are all there


class Quits(Component):
    @on(MARKET)
    def quit(self, batch: MarketBatch) -> None:
        if batch.ts_event >= day(2):
            sys.exit(3)


def test_sys_exit_in_a_handler_fails_the_run_naming_the_component(tmp_path: Path) -> None:
    tape = random_world(days=5, symbols=1)
    runtime = Runtime(clock=SimulatedClock(0))
    runtime.add(Script(tape.steps))
    runtime.add(Quits("quitter"))
    runtime.add(_recorder(tmp_path))
    with pytest.raises(ComponentError) as info:
        runtime.run_sync()

    message = str(info.value)
    assert message.startswith("component 'quitter' failed handling MarketBatch at 2024-01-04")
    assert "it called sys.exit(3); a component cannot end the process" in message
    assert info.value.component == "quitter" and isinstance(info.value.__cause__, SystemExit)
    assert runtime.outcome is RunOutcome.FAILED
    manifest = _manifest(tmp_path)
    assert manifest["status"] == "failed" and "sys.exit(3)" in manifest["incomplete_reason"]


class StartFails(Component):
    def on_start(self) -> None:
        raise FileNotFoundError("model.onnx")


def test_a_failure_in_on_start_still_writes_a_manifest_with_the_reason(tmp_path: Path) -> None:
    tape = random_world(days=5, symbols=1)
    recorder = _recorder(tmp_path)
    with pytest.raises(ComponentError, match="'loader' failed in on_start: FileNotFoundError"):
        # the recorder starts after the failing component: as an observer it still starts
        _run(Script(tape.steps), StartFails("loader"), observer=recorder)

    manifest = _manifest(tmp_path)
    assert manifest["complete"] is False and manifest["status"] == "failed"
    assert (
        "'loader' failed in on_start: FileNotFoundError: model.onnx"
        in (manifest["incomplete_reason"])
    )
    assert manifest["events_processed"] == 1  # the failure, and no market data


@pytest.mark.parametrize("legacy", [False, True], ids=["partial", "tmp"])
def test_a_killed_runs_journal_under_this_processs_pid_is_kept_not_overwritten(
    tmp_path: Path, legacy: bool
) -> None:
    # a killed run had the pid this process has now (pids are reused; pid 1 in containers)
    name = (
        f".{JOURNAL_FILE}.{os.getpid()}.tmp" if legacy else f"{JOURNAL_FILE}.{os.getpid()}.partial"
    )
    (tmp_path / name).write_bytes(b"ML4TJNL the killed run's events")

    _run(Script(random_world(days=3, symbols=1).steps), _recorder(tmp_path, journal=True))

    killed = b"ML4TJNL the killed run's events"
    kept = [p for p in tmp_path.iterdir() if p.is_file() and p.read_bytes() == killed]
    assert len(kept) == 1 and kept[0].name != name
    assert kept[0].name.endswith(".tmp" if legacy else ".partial")
    assert JOURNAL_FILE in _manifest(tmp_path)["files"]  # this run's own journal
