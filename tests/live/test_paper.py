"""Paper replay: the backtest's graph on a wall clock trades exactly like the backtest, at
any speed; Ctrl-C cancels open orders and leaves incomplete, flushed results."""

from __future__ import annotations

import io
import json
import math
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import polars as pl
import pytest
import yaml
from rich.console import Console

from ml4t.backtest import BacktestEngine, load_config
from ml4t.backtest.cli import main
from ml4t.backtest.journal import JOURNAL_FILE, diff, format_diff, summary
from ml4t.backtest.live import PaperSession, ReplayClock, paper_config, parse_speed
from tests.live.conftest import run_config
from tests.live.strategies import Momentum

STRATEGIES = Path(__file__).with_name("strategies.py")


def _backtest(ds, out: Path):
    cfg = load_config(run_config(ds, out, journal=True))
    return BacktestEngine(cfg, strategy=Momentum("m")).run()


def _paper(ds, out: Path, speed: float):
    cfg = paper_config(load_config(run_config(ds, out)))
    session = PaperSession(BacktestEngine(cfg, strategy=Momentum("m")), speed=speed, view=False)
    return session, session.run_sync()


@pytest.mark.parametrize("speed", [math.inf, 150_000.0], ids=["max", "150000x"])
def test_paper_replay_trades_equal_the_backtest_at_any_speed(short_data, tmp_path, speed):
    backtest = _backtest(short_data, tmp_path / "bt")
    assert backtest.trades.height >= 20  # enough trades for the comparison to mean something
    start = time.perf_counter()
    session, paper = _paper(short_data, tmp_path / "bt", speed)
    wall = time.perf_counter() - start
    assert paper.complete and paper.output_dir == tmp_path / "bt-paper"
    assert paper.trades.equals(backtest.trades)
    assert paper.fills.equals(backtest.fills)
    assert paper.orders.equals(backtest.orders)
    assert paper.final_equity == backtest.final_equity
    if math.isfinite(speed):  # the wall clock paced the replay: span / speed seconds at least
        span_s = (short_data.last_ts - short_data.first_ts) / 1e9
        assert wall >= span_s / speed * 0.95
    # paper runs journal by default, and the two journals agree event by event; the paper
    # graph has one more component (the open-order guard), so lifecycle events differ,
    # and its config another output directory, which the session handshake's hash says
    result = diff(
        tmp_path / "bt" / JOURNAL_FILE,
        tmp_path / "bt-paper" / JOURNAL_FILE,
        ignore_topics=["lifecycle", "session"],
    )
    assert result.equal, format_diff(result)
    assert result.compared > 1000
    # the live view draws what the monitor saw
    console = Console(file=io.StringIO(), width=120)
    console.print(session.monitor.render())
    view = console.file.getvalue()
    assert f"equity {paper.final_equity:,.2f}" in view and "last fills" in view


def test_replay_clock_steps_with_alarms_and_paces_them_by_the_wall():
    origin = 1_700_000_000 * 10**9
    clock = ReplayClock(speed=1000.0, origin_ns=origin)
    fired: list[int] = []
    clock.schedule(origin + 60 * 10**9, lambda: fired.append(clock.now_ns()))
    assert clock.now_ns() == origin
    assert 0.05 < clock.seconds_until(origin + 60 * 10**9) <= 0.06  # 60 s at 1000x
    alarm = clock.pop_alarm()
    assert alarm is not None and clock.now_ns() == origin + 60 * 10**9
    fast = ReplayClock(speed=math.inf, origin_ns=origin)
    assert fast.seconds_until(origin + 10**15) == 0.0


def test_speed_parses_numbers_and_max_and_refuses_the_rest():
    assert parse_speed("max") == math.inf and parse_speed("MAX") == math.inf
    assert parse_speed("60") == 60.0
    for bad in ("0", "-2", "fast", "nan"):
        with pytest.raises(ValueError, match="positive number or 'max'"):
            parse_speed(bad)


def _yaml_config(ds, tmp_path: Path, strategy: str, **reporting) -> Path:
    cfg = run_config(ds, tmp_path / "out", **reporting)
    cfg["strategy"] = {"path": str(STRATEGIES), "class": strategy, "name": "m"}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_ml4t_paper_and_journal_diff_from_the_command_line(short_data, tmp_path, capsys):
    config = _yaml_config(short_data, tmp_path, "Momentum", journal=True)
    assert main(["run", str(config)]) == 0
    assert main(["paper", str(config), "--speed", "max", "--no-view"]) == 0
    out = capsys.readouterr().out
    assert "paper xinf: completed (complete)" in out
    a, b = tmp_path / "out" / JOURNAL_FILE, tmp_path / "out-paper" / JOURNAL_FILE
    # the paper graph has one more component (the open-order guard): its lifecycle differs;
    # so does its config (the output directory), which the session handshake carries
    args = ["--ignore-topic", "lifecycle", "--ignore-topic", "session"]
    assert main(["journal", "diff", str(a), str(b), *args]) == 0
    assert "journals agree" in capsys.readouterr().out


def test_journal_diff_reports_the_first_divergence_with_both_events_and_context(
    short_data, tmp_path, capsys
):
    cheap = load_config(run_config(short_data, tmp_path / "a", journal=True))
    dear = load_config(
        run_config(short_data, tmp_path / "b", journal=True),
        overrides=["execution.commission.params.cost_per_share=0.01"],
    )
    BacktestEngine(cheap, strategy=Momentum("m")).run()
    BacktestEngine(dear, strategy=Momentum("m")).run()
    a, b = tmp_path / "a" / JOURNAL_FILE, tmp_path / "b" / JOURNAL_FILE
    # the configs differ, which the session handshake says first (its config hash)
    assert diff(a, b).fields == ["event.config_hash"]
    result = diff(a, b, context=2, ignore_topics=["session"])
    assert not result.equal
    assert result.fields == ["event.commission"]
    assert result.event_a["topic"] == result.event_b["topic"] == "fills"
    assert result.event_a["event"]["commission"] * 2 == pytest.approx(
        result.event_b["event"]["commission"]
    )
    assert len(result.before) == 2 and len(result.after_a) == 2 and len(result.after_b) == 2
    assert (
        main(["journal", "diff", str(a), str(b), "--context", "1", "--ignore-topic", "session"])
        == 1
    )
    report = capsys.readouterr().out
    assert "first divergence at event #" in report and "event.commission" in report
    assert "A> " in report and "B> " in report and "before (equal in both)" in report


def test_journal_diff_reports_a_journal_that_ends_early(short_data, tmp_path):
    cfg = load_config(run_config(short_data, tmp_path / "a", journal=True))
    BacktestEngine(cfg, strategy=Momentum("m")).run()
    a = tmp_path / "a" / JOURNAL_FILE
    # the same run, cut to its market data only: B "ends" at the first order request
    result = diff(a, a, ignore_topics=["lifecycle"])
    assert result.equal
    only_market = diff(a, a, topics=["market"])
    assert only_market.equal and only_market.compared == summary(a)["by_topic"]["market"]


@pytest.mark.parametrize(
    ("signum", "status", "why"),
    [
        (signal.SIGINT, 130, r"interrupted \(Ctrl-C\)"),
        (signal.SIGTERM, 143, r"terminated \(SIGTERM\)"),
    ],
    ids=["sigint", "sigterm"],
)
def test_ctrl_c_cancels_open_orders_flushes_results_and_marks_them_incomplete(
    short_data, tmp_path, signum, status, why
):
    config = _yaml_config(short_data, tmp_path, "RestingLimit")
    out = tmp_path / "out-paper"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml4t.backtest.cli", "paper", str(config), "--speed", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the session is trading
            manifest = out / "manifest.json"
            if manifest.exists() and json.loads(manifest.read_text())["status"] == "running":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(1.5)  # ~15 bars at 600x
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    cancelled = re.search(why + r": (\d+) open order\(s\) cancelled", stderr)
    assert cancelled is not None and int(cancelled.group(1)) >= 1, stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and not manifest["complete"]
    assert manifest["incomplete_reason"]
    orders = pl.read_parquet(out / "orders.parquet")
    resting = orders.filter(pl.col("reason") == "resting")
    assert resting["status"].to_list() == ["cancelled"]
    assert orders.filter(pl.col("status") == "cancelled").height == int(cancelled.group(1))
    assert orders.filter(pl.col("status").is_in(["accepted", "partially_filled"])).height == 0
    journal = summary(out / JOURNAL_FILE)
    assert not journal["complete"] and not journal["truncated"]
    assert 0 < msgspec.json.decode((out / "manifest.json").read_bytes())["market_batches"] < 780
