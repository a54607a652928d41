"""How ``ml4t run`` ends a run that is terminated or whose strategy fails: the exit status,
the message, and a manifest that says what happened. Each runs the real command in a
child process (and sends it a real signal)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ml4t.backtest.data.synthetic import SyntheticConfig, SyntheticDataset, write_dataset
from ml4t.backtest.record import outputs

STRATEGIES = textwrap.dedent(
    """
    import sys, time
    from ml4t.backtest import BatchStrategy

    class Slow(BatchStrategy):
        '''Says when it is trading, then takes 5 ms a timestamp (780 timestamps).'''

        def on_timestamp(self, ts, batch, context):
            if not getattr(self, "said", False):
                self.said = True
                print("running", flush=True)
            time.sleep(0.005)

    class Quits(BatchStrategy):
        def on_timestamp(self, ts, batch, context):
            sys.exit(3)

    class StopFails(BatchStrategy):
        def on_timestamp(self, ts, batch, context):
            pass

        def on_stop(self):
            raise RuntimeError("could not save the model")
    """
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root: Path = tmp_path_factory.mktemp("cli-lifecycle-data")
    return write_dataset(root, SyntheticConfig(n_symbols=3, n_days=2, seed=3))


def _config(data: SyntheticDataset, tmp_path: Path, strategy: str) -> Path:
    (tmp_path / "strategies.py").write_text(STRATEGIES)
    config = {
        "backtest": {"initial_capital": 100_000},
        "data": {"asset": {"path": data.asset}},
        "strategy": {"path": str(tmp_path / "strategies.py"), "class": strategy, "name": "s"},
        "reporting": {"output_dir": str(tmp_path / "out")},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _command(config: Path) -> list[str]:
    return [sys.executable, "-m", "ml4t.backtest.cli", "run", str(config)]


def _manifest(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_sigterm_during_ml4t_run_flushes_the_results_and_exits_143(
    data: SyntheticDataset, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        _command(_config(data, tmp_path, "Slow")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "running"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()

    assert proc.returncode == 143, err
    assert "ml4t: terminated (SIGTERM); partial results were flushed" in err
    assert "Traceback" not in err
    manifest = _manifest(tmp_path)
    assert manifest["complete"] is False and manifest["status"] == "incomplete"
    assert manifest["incomplete_reason"] == "the run was terminated (SIGTERM) before it finished"
    assert 0 < manifest["market_batches"] < 780  # cut short, not finished
    for name, info in manifest["files"].items():
        assert outputs.file_digest(tmp_path / "out" / name) == info["sha256"]
    assert {"trades.parquet", "portfolio.parquet", "metrics.json"} <= set(manifest["files"])


def test_sys_exit_in_a_strategy_fails_the_run_with_a_message_and_exit_status_1(
    data: SyntheticDataset, tmp_path: Path
) -> None:
    done = subprocess.run(
        _command(_config(data, tmp_path, "Quits")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "ml4t: the run failed: component 's' failed handling MarketBatch" in done.stderr
    assert "it called sys.exit(3); a component cannot end the process" in done.stderr
    manifest = _manifest(tmp_path)
    assert manifest["status"] == "failed" and "sys.exit(3)" in manifest["incomplete_reason"]
    assert "cancelled" not in manifest["incomplete_reason"]


def test_a_strategy_raising_in_on_stop_fails_the_run_and_its_manifest(
    data: SyntheticDataset, tmp_path: Path
) -> None:
    done = subprocess.run(
        _command(_config(data, tmp_path, "StopFails")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stderr
    assert "component 's' failed in on_stop: RuntimeError: could not save" in done.stderr
    manifest = _manifest(tmp_path)
    assert manifest["complete"] is False and manifest["status"] == "failed"
    assert "could not save the model" in manifest["incomplete_reason"]
    assert manifest["market_batches"] == 780  # every bar was seen: only on_stop failed
