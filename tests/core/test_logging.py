"""ml4t logs through the standard library and is silent by default: a script that
imports it and runs a backtest prints only what it prints itself, warnings reach any
logging handler (and Python's last-resort one), and ``configure_logging`` and the
command line set up their own output."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from ml4t.backtest.cli import main
from ml4t.backtest.data.synthetic import SyntheticConfig, write_dataset
from ml4t.backtest.logging import configure_logging, get_logger
from ml4t.backtest.testing import capture_logs

SCRIPT = textwrap.dedent(
    """
    import sys
    import polars as pl
    from ml4t.backtest import BacktestEngine, BatchStrategy, load_config

    class Restricted(BatchStrategy):
        '''Asks for a restricted symbol on each of the first 20 timestamps.'''

        def on_start(self):
            self.asked = 0

        def on_timestamp(self, timestamp, batch, context):
            if self.asked < 20:
                self.asked += 1
                self.buy("AAA", 10)

    asset = pl.read_parquet(sys.argv[1])
    if sys.argv[3] == "shuffled":  # rows out of order, repaired with a warning
        asset = asset.sample(fraction=1.0, shuffle=True, seed=5)
    config = load_config({
        "backtest": {"initial_capital": 100_000},
        "data": {"repair": ["sort"]},
        "risk": {"restricted_symbols": ["AAA"]},
        "reporting": {"output_dir": sys.argv[2]},
    })
    BacktestEngine(config, strategy=Restricted("restricted"), asset=asset).run()
    """
)


@pytest.fixture(scope="module")
def asset_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logging-data")
    data = write_dataset(root, SyntheticConfig(n_symbols=3, n_days=2, seed=4))
    path = root / "asset.parquet"
    pl.read_parquet(data.asset).write_parquet(path)
    return path


def _script(asset: Path, out: Path, order: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(asset), str(out), order],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_script_with_20_rejected_orders_prints_nothing_by_default(
    asset_file: Path, tmp_path: Path
) -> None:
    done = _script(asset_file, tmp_path, "sorted")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    orders = pl.read_parquet(tmp_path / "orders.parquet")
    rejected = orders.filter(pl.col("status") == "rejected")
    assert rejected.height == 20 and orders.height == 20


def test_a_warning_reaches_the_last_resort_handler_with_no_logging_set_up(
    asset_file: Path, tmp_path: Path
) -> None:
    done = _script(asset_file, tmp_path, "shuffled")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("data_repaired "), done.stderr
    assert "repairs={" in lines[0] and "'sort': " in lines[0]


def test_a_warning_reaches_a_standard_logging_handler_with_its_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger("ml4t.backtest.data", source="asset")
    with caplog.at_level(logging.WARNING):
        log.debug("dropped_below_the_level")
        log.warning("data_repaired", repairs={"sort": 3}, note="two words")
    [record] = caplog.records
    assert record.name == "ml4t.backtest.data" and record.levelno == logging.WARNING
    assert record.getMessage() == "data_repaired source=asset repairs={'sort': 3} note='two words'"
    assert record.event_dict == {  # type: ignore[attr-defined]
        "source": "asset",
        "repairs": {"sort": 3},
        "note": "two words",
        "event": "data_repaired",
    }


def test_the_standard_library_level_decides_and_can_change_at_any_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = get_logger(component="risk")  # made before the level changes
    log.debug("order_rejected", order_id="o1")
    assert caplog.records == []
    caplog.set_level(logging.DEBUG, logger="ml4t")
    log.debug("order_rejected", order_id="o2")
    assert [r.getMessage() for r in caplog.records] == ["order_rejected component=risk order_id=o2"]


def test_configure_logging_writes_json_lines_and_replaces_its_earlier_setup() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("debug", stream=first)
    configure_logging("info", json=True, stream=second)
    log = get_logger(component="feed")
    log.debug("too_detailed")
    log.info("feed_started", rows=12)
    assert first.getvalue() == ""
    [line] = second.getvalue().splitlines()
    event = json.loads(line)
    assert event.pop("timestamp").endswith("Z")
    assert event == {"component": "feed", "rows": 12, "event": "feed_started", "level": "info"}


def test_capture_logs_sees_debug_events_and_restores_the_level() -> None:
    before = logging.getLogger("ml4t").level
    with capture_logs() as logs:
        get_logger(component="risk").debug("order_rejected", rule="restricted_symbols")
    assert logs == [
        {
            "component": "risk",
            "rule": "restricted_symbols",
            "event": "order_rejected",
            "log_level": "debug",
        }
    ]
    assert logging.getLogger("ml4t").level == before


def _cli_config(asset: Path, out: Path) -> Path:
    config = tmp = out.parent / f"{out.name}.yaml"
    tmp.write_text(
        "backtest: {initial_capital: 100000}\n"
        f"data: {{asset: {{path: {asset}}}}}\n"
        "strategy: {path: strategy.py, class: Idle}\n"
        f"reporting: {{output_dir: {out}}}\n"
    )
    (out.parent / "strategy.py").write_text(
        "from ml4t.backtest import BatchStrategy\n\n\n"
        "class Idle(BatchStrategy):\n"
        "    def on_timestamp(self, timestamp, batch, context):\n"
        "        pass\n"
    )
    return config


def test_the_command_logs_at_its_log_level_and_says_nothing_below_warning_by_default(
    asset_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cli_config(asset_file, tmp_path / "quiet")
    assert main(["run", str(config), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""

    config = _cli_config(asset_file, tmp_path / "loud")
    assert main(["--log-level", "info", "--log-json", "run", str(config), "--no-progress"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    started = [e for e in events if e["event"] == "feed_started"]
    assert len(started) == 1 and started[0]["level"] == "info" and started[0]["rows"] > 0
