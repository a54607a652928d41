"""``ml4t live``: forward testing on scripted bars makes the backtest's orders; the journal
is written as the session runs and survives SIGKILL; a restart resumes from it (same
orders, no duplicate, one journal); Ctrl-C cancels open orders; the kill switch and
``ml4t live --halt`` from another process flatten and stop within one bar."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import polars as pl
import pytest
import yaml

from ml4t.backtest import BacktestEngine, load_config
from ml4t.backtest.cli import main
from ml4t.backtest.events import (
    MarketBatch,
    SessionResumed,
    StopTrading,
    SubmitOrder,
    TradingStopped,
)
from ml4t.backtest.journal import JOURNAL_FILE, JournalReader, replay, summary
from ml4t.backtest.live import LiveSession
from ml4t.backtest.live.session import HALT_ACCEPTED, SESSION_FILE
from tests.live.conftest import live_config

ROOT = Path(__file__).resolve().parents[2]
ORDER_COLUMNS = ["order_id", "symbol", "side", "quantity", "status"]
FILL_COLUMNS = ["order_id", "symbol", "side", "quantity", "price", "commission"]


def _write(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _backtest(bars: Path, config: dict):
    cfg = load_config({**config, "data": {"asset": {"path": str(bars)}}})
    return BacktestEngine(cfg).run()


def _results(run_dir: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(run_dir / "results" / f"{table}.parquet")


def _entries(run_dir: Path):
    return list(JournalReader(run_dir / JOURNAL_FILE))


def _ml4t(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "ml4t.backtest.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        **popen,
    )


def _wait_for(path: Path, topic: str, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and summary(path)["by_topic"].get(topic, 0) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {count} {topic} events in {timeout} s")


def test_forward_testing_on_scripted_bars_makes_the_backtests_orders(scripted_bars, tmp_path):
    config = live_config(scripted_bars, tmp_path / "runs")
    backtest = _backtest(scripted_bars, config)
    assert backtest.orders.height >= 20  # enough orders for the comparison to mean something
    session = LiveSession(load_config(config), run_dir=tmp_path / "runs" / "a", mode="dry-run")
    results = session.run_sync()
    assert results.complete  # the scripted bars played out and the graph went idle
    assert results.orders.select(ORDER_COLUMNS).equals(backtest.orders.select(ORDER_COLUMNS))
    assert results.fills.select(FILL_COLUMNS).equals(backtest.fills.select(FILL_COLUMNS))
    assert results.final_equity == pytest.approx(backtest.final_equity, abs=1e-9)
    # bars carry the wall time they were delivered at: the clock is real time
    entries = _entries(session.run_dir)
    bars = [e for e in entries if isinstance(e.event, MarketBatch)]
    assert len(bars) == 40
    assert bars[0].event.ts_event > backtest.portfolio["timestamp"][-1].timestamp() * 1e9
    # the journal replays into the session's results
    again = replay(session.run_dir / JOURNAL_FILE)
    assert again.trades.equals(results.trades)


def test_journal_diff_by_bar_lines_a_forward_tests_orders_up_with_the_backtests(
    scripted_bars, tmp_path, capsys
):
    """The live clock is the wall time (the scripted bars are stamped with it), so the
    two journals' clocks never agree; bar by bar, their order decisions do."""
    config = live_config(scripted_bars, tmp_path / "runs")
    reference = tmp_path / "backtest"
    cfg = load_config(
        {**config, "data": {"asset": {"path": str(scripted_bars)}}},
        overrides=[f"reporting.output_dir={reference}", "reporting.journal=true"],
    )
    assert BacktestEngine(cfg).run().orders.height >= 20
    session = LiveSession(load_config(config), run_dir=tmp_path / "runs" / "d", mode="dry-run")
    session.run_sync()
    a, b = str(reference / JOURNAL_FILE), str(session.journal_path)
    orders = ["--kind", "SubmitOrder", "--kind", "CancelOrder", "--kind", "ModifyOrder"]
    assert main(["journal", "diff", a, b, *orders, "--by-bar"]) == 0
    assert "journals agree" in capsys.readouterr().out
    assert main(["journal", "diff", a, b, *orders]) == 1  # by the clock they differ at once
    assert "first divergence at event #0 (after 0 equal events): clock_ns" in (
        capsys.readouterr().out
    )
    # a filter that names no event type is a one-line error, before anything is read
    assert main(["journal", "diff", a, b, "--kind", "SubmitOrders"]) == 2
    assert "--kind 'SubmitOrders': no such event type" in capsys.readouterr().err


def test_ml4t_live_dry_run_from_the_command_line_writes_its_run_directory(
    scripted_bars, tmp_path, capsys
):
    config = _write(live_config(scripted_bars, tmp_path / "runs"), tmp_path / "live.yaml")
    assert main(["live", str(config), "--dry-run", "--run-id", "first", "--no-view"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "first"
    assert "live (dry-run) first: completed (complete)" in out
    assert f"journal: {run / JOURNAL_FILE}" in out
    assert sorted(p.name for p in run.iterdir()) == [
        "config.yaml", "journal.ml4tj", "results", "session.json",
    ]  # fmt: skip
    state = msgspec.json.decode((run / SESSION_FILE).read_bytes())
    assert state["state"] == "stopped" and state["mode"] == "dry-run"
    assert state["outcome"] == "completed"
    found = summary(run / JOURNAL_FILE)
    assert found["complete"] and found["resumes"] == 0
    assert load_config(run / "config.yaml").live is not None


def test_a_session_killed_with_sigkill_resumes_from_its_journal(scripted_bars, tmp_path):
    config = live_config(scripted_bars, tmp_path / "runs", interval=0.05)
    path = _write(config, tmp_path / "live.yaml")
    run = tmp_path / "runs" / "k"
    journal = run / JOURNAL_FILE
    with _ml4t("live", str(path), "--dry-run", "--run-id", "k", "--no-view") as proc:
        _wait_for(journal, "market", 15)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    cut = JournalReader(journal)
    before = list(cut)
    assert cut.truncated  # no trailer: readable up to the last complete event
    seen = sum(isinstance(e.event, MarketBatch) for e in before)
    assert seen >= 15
    # the restart plays the bars the killed session had not seen
    code = main(
        ["live", "--resume", str(run), "--no-view", "--set", f"live.data.params.start={seen}"]
    )
    assert code == 0
    entries = _entries(run)
    assert entries[: len(before)] == before  # the same file, continued
    markers = [e for e in entries if isinstance(e.event, SessionResumed)]
    assert len(markers) == 1 and entries[len(before)].event == markers[0].event
    assert markers[0].event.previous_end.startswith("cut short")
    assert sum(isinstance(e.event, MarketBatch) for e in entries) == 40
    approved = [e.event.order_id for e in entries if isinstance(e.event, SubmitOrder)
                and e.topic == "orders.approved"]  # fmt: skip
    assert len(approved) == len(set(approved))  # no order made twice
    # and the run as a whole made the backtest's orders, as if it had never stopped
    backtest = _backtest(scripted_bars, config)
    orders = _results(run, "orders")
    assert orders.select(ORDER_COLUMNS).equals(backtest.orders.select(ORDER_COLUMNS))
    fills = _results(run, "fills")
    assert fills.select(FILL_COLUMNS[:4]).equals(backtest.fills.select(FILL_COLUMNS[:4]))


def test_ctrl_c_cancels_open_orders_and_the_session_resumes_after_it(scripted_bars, tmp_path):
    # bars slow enough that the signal lands mid-session on a loaded machine (it ends the
    # session at once; the resume below replays the rest fast)
    config = live_config(scripted_bars, tmp_path / "runs", strategy="RestingLimit", interval=0.5)
    path = _write(config, tmp_path / "live.yaml")
    run = tmp_path / "runs" / "c"
    with _ml4t("live", str(path), "--dry-run", "--run-id", "c", "--no-view") as proc:
        _wait_for(run / JOURNAL_FILE, "market", 10)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "interrupted (Ctrl-C): 1 open order(s) cancelled" in out.decode()
    manifest = msgspec.json.decode((run / "results" / "manifest.json").read_bytes())
    assert manifest["status"] == "incomplete"
    assert "interrupted (Ctrl-C)" in manifest["incomplete_reason"]
    orders = _results(run, "orders")
    resting = orders.filter(pl.col("reason") == "resting")
    assert resting["status"].to_list() == ["cancelled"]
    entries = _entries(run)
    stop = [e.event for e in entries if isinstance(e.event, StopTrading)]
    assert [(s.source, s.action.value) for s in stop] == [("session", "halt")]
    seen = sum(isinstance(e.event, MarketBatch) for e in entries)
    # resumed, the strategy knows it placed its resting order (the replay re-made its
    # state) and places no other; the cancel stays a cancel; trading goes on
    start = f"live.data.params.start={seen}"
    fast = "live.data.params.interval=0.01"
    assert main(["live", "--resume", str(run), "--no-view", "--set", start, "--set", fast]) == 0
    orders = _results(run, "orders")
    assert orders.filter(pl.col("reason") == "resting")["status"].to_list() == ["cancelled"]
    assert orders["order_id"].is_unique().all()
    assert summary(run / JOURNAL_FILE)["resumes"] == 1
    after = [e for e in _entries(run) if isinstance(e.event, MarketBatch)]
    assert len(after) == 40


def test_the_kill_switch_in_a_dry_run_flattens_within_one_bar_and_exits_3(
    scripted_bars, tmp_path, capsys
):
    # the first commission is a drawdown: the switch trips at the first fill's bar
    config = live_config(
        scripted_bars, tmp_path / "runs", risk={"kill_switch": {"max_drawdown": 1e-7}}
    )
    path = _write(config, tmp_path / "live.yaml")
    assert main(["live", str(path), "--dry-run", "--run-id", "ks", "--no-view"]) == 3
    out = capsys.readouterr().out
    assert "stopped      by the kill switch (drawdown, flatten)" in out
    entries = _entries(tmp_path / "runs" / "ks")
    (tripped,) = [i for i, e in enumerate(entries) if isinstance(e.event, TradingStopped)]
    event = entries[tripped].event
    assert event.source == "kill_switch" and event.closing
    later_bars = [e for e in entries[tripped:] if isinstance(e.event, MarketBatch)]
    assert len(later_bars) == 1  # stopped at the next bar, where the closing orders filled
    fills = _results(tmp_path / "runs" / "ks", "fills")
    closing = fills.filter(pl.col("order_id").is_in(event.closing))
    assert closing.height == len(event.closing)
    assert closing["timestamp"].dt.epoch("ns").to_list() == [later_bars[0].event.ts_event] * len(
        event.closing
    )
    # every position closed: no trade left open
    trades = _results(tmp_path / "runs" / "ks", "trades")
    assert trades["exit_reason"].null_count() == 0
    assert "flatten" in trades["exit_reason"].to_list()
    # a run the kill switch stopped does not resume
    assert main(["live", "--resume", str(tmp_path / "runs" / "ks"), "--no-view"]) == 2
    assert "a stopped run does not resume" in capsys.readouterr().err


def test_ml4t_live_halt_from_another_process_flattens_and_stops_the_session(
    scripted_bars, tmp_path
):
    # 40 bars of 0.5 s: the --halt process (a fresh interpreter) reaches the session
    # before its last bar even on a loaded machine; the halt ends it at once
    config = live_config(scripted_bars, tmp_path / "runs", interval=0.5)
    path = _write(config, tmp_path / "live.yaml")
    run = tmp_path / "runs" / "h"
    with _ml4t("live", str(path), "--dry-run", "--run-id", "h", "--no-view") as session:
        _wait_for(run / JOURNAL_FILE, "positions", 2)
        halt = _ml4t("live", "--halt", str(run), "--action", "flatten", "--reason", "test")
        halt_out, halt_err = halt.communicate(timeout=60)
        _, err = session.communicate(timeout=60)
    assert halt.returncode == 0, halt_err.decode()
    assert "session h stopped" in halt_out.decode()
    assert session.returncode == 3, err.decode()
    assert (run / HALT_ACCEPTED).is_file()
    entries = _entries(run)
    (request,) = [e.event for e in entries if isinstance(e.event, StopTrading)]
    assert request.source == "operator" and request.action.value == "flatten"
    assert "test" in request.reason
    (stopped,) = [e.event for e in entries if isinstance(e.event, TradingStopped)]
    assert stopped.rule == "requested" and stopped.source == "operator"
    portfolio = _results(run, "portfolio")
    assert portfolio["num_positions"][-1] == 0  # flat at the stop
    assert len([e for e in entries if isinstance(e.event, MarketBatch)]) < 40
    state = msgspec.json.decode((run / SESSION_FILE).read_bytes())
    assert state["state"] == "stopped" and "operator" in state["stopped"]


def test_halt_refuses_a_directory_without_a_running_session(tmp_path, capsys):
    assert main(["live", "--halt", str(tmp_path)]) == 2
    assert "not a live session's run directory" in capsys.readouterr().err
