"""``ml4t paper`` as a person sees it: in a real terminal (tmux) across an overnight gap,
the closed-market line, Ctrl-C, the summary and the results; ``--no-view`` prints a line
per fill and a summary; ``--skip-closed`` jumps the gap without changing a trade.

tmux comes from Debian (``scripts/system-deps.sh`` installs it). If it is missing the
terminal test fails with the command to fix it; it is never skipped.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import polars as pl
import pytest
import yaml

from ml4t.backtest import BacktestEngine, load_config
from ml4t.backtest.cli import main
from ml4t.backtest.live import PaperSession
from tests.live.conftest import GAP_DAY1, GAP_END, STRATEGIES, gap_config, run_config

ROOT = Path(__file__).resolve().parents[2]
SLIPPAGE = 2.0 / 10_000  # fixed_bps 2: a buy fills 2 bps above the open
PANE = (120, 40)
CLOSE_JAN3 = datetime(2023, 1, 3, 21, 0, tzinfo=UTC)  # 16:00 EST, the last bar of day one


def _write(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _bars(data: Path, symbol: str) -> pl.DataFrame:
    return pl.read_parquet(data).filter(pl.col("symbol") == symbol).sort("timestamp")


# --------------------------------------------------------------------------- tmux


@pytest.fixture(scope="module")
def tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=False, timeout=900)
        found = shutil.which("tmux")
    if found is None:
        pytest.fail(
            "tmux is needed to test ml4t paper in a terminal: install Debian's tmux "
            "(run scripts/system-deps.sh as root)"
        )
    return found


class Pane:
    """One detached tmux session on a private server (its socket in ``socket``), running
    one shell command."""

    def __init__(self, tmux: str, socket: Path, name: str = "ml4t-paper") -> None:
        self.base = [tmux, "-S", str(socket), "-f", os.devnull]
        self.target = name

    def start(self, command: str, cwd: Path) -> None:
        width, height = PANE
        subprocess.run(
            [*self.base, "new-session", "-d", "-s", self.target, "-x", str(width), "-y",
             str(height), "-c", str(cwd), command],
            check=True,
            timeout=10,
        )  # fmt: skip

    def text(self) -> str:
        done = subprocess.run(
            [*self.base, "capture-pane", "-p", "-J", "-t", self.target],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                pytest.fail(f"{pattern!r} did not show within {timeout} s; the pane:\n{text}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.target, *keys], check=True, timeout=10)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False, timeout=10, capture_output=True)


@pytest.fixture
def pane(tmux: str, tmp_path: Path) -> Iterator[Pane]:
    pane = Pane(tmux, tmp_path / "tmux.sock")
    try:
        yield pane
    finally:
        pane.close()


def test_paper_in_a_terminal_shows_the_closed_market_and_stops_cleanly_on_ctrl_c(
    pane, gap_data, tmp_path
):
    config = _write(gap_config(gap_data, tmp_path / "out"), tmp_path)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    paper = [sys.executable, "-m", "ml4t.backtest.cli", "paper", str(config), "--speed", "600"]
    command = (
        f"env {shlex.join(f'{k}={v}' for k, v in env.items())} {shlex.join(paper)}; "
        "echo ml4t-exit=$?; sleep 60"
    )
    pane.start(command, cwd=tmp_path)
    # ten bars take a wall second at x600; then the 17.5 h gap: 105 s of nothing but this
    screen = pane.wait_for(r"market closed until 2023-01-04 09:30 EST \(next bar in \d+ s", 30)
    assert "ml4t paper x600" in screen and "bars 10" in screen  # the whole of day one is in
    pane.keys("C-c")
    screen = pane.wait_for(r"ml4t-exit=\d+", 20)
    assert "ml4t-exit=130" in screen
    assert "paper x600: stopped (incomplete), 20 bar-events" in screen
    assert "  market time  2023-01-03 15:51 EST to 2023-01-03 16:00 EST" in screen
    assert "  trades       1 (open_at_stop 1)" in screen
    assert "  stopped      interrupted (Ctrl-C): 1 open order(s) cancelled" in screen
    out = tmp_path / "out-paper"
    assert f"results: {out}" in screen
    assert "partial results were flushed and marked incomplete" in screen
    assert "Traceback" not in screen
    # the results: flushed, marked incomplete, the open lot labelled open_at_stop
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and not manifest["complete"]
    assert manifest["incomplete_reason"] == (
        "the paper session was interrupted (Ctrl-C) before the end of its data"
    )
    aaa = _bars(gap_data, "AAA")
    entry_bar, last_bar = aaa.row(1, named=True), aaa.row(9, named=True)  # 20:52, 21:00
    trades = pl.read_parquet(out / "trades.parquet")
    assert trades.height == 1
    trade = trades.row(0, named=True)
    assert trade["symbol"] == "AAA" and trade["quantity"] == 10
    assert trade["exit_reason"] == "open_at_stop"
    assert trade["entry_price"] == pytest.approx(entry_bar["open"] * (1 + SLIPPAGE), rel=1e-12)
    assert trade["exit_price"] == pytest.approx(last_bar["close"], rel=1e-12)
    assert trade["exit_timestamp"] == last_bar["timestamp"] == CLOSE_JAN3
    orders = pl.read_parquet(out / "orders.parquet")
    assert orders.filter(pl.col("reason") == "resting")["status"].to_list() == ["cancelled"]


# --------------------------------------------------------------------------- --no-view


def test_no_view_prints_a_line_per_fill_and_a_summary(short_data, tmp_path, capsys):
    cfg = run_config(short_data, tmp_path / "out")
    cfg["strategy"] = {"path": str(STRATEGIES), "class": "Momentum", "name": "m"}
    config = _write(cfg, tmp_path)
    assert main(["paper", str(config), "--speed", "max", "--no-view"]) == 0
    out = capsys.readouterr().out.splitlines()
    results = tmp_path / "out-paper"
    fills = pl.read_parquet(results / "fills.parquet")
    trades = pl.read_parquet(results / "trades.parquet")
    assert fills.height > 20
    printed = [line for line in out if line.startswith("fill ")]
    assert len(printed) == fills.height
    first = fills.row(0, named=True)
    side = first["side"]
    assert printed[0] == (
        f"fill {first['timestamp'].isoformat()} m {side} {first['quantity']:g} "
        f"{first['symbol']} @ {first['price']:.4f} commission {first['commission']:.2f} "
        f"slippage {first['slippage']:.4f}"
    )
    summary = out[len(printed) :]
    assert summary[0].startswith("paper xinf: completed (complete), ")
    commission, slippage = float(fills["commission"].sum()), float(fills["slippage"].sum())
    assert (
        f"  fills        {fills.height:,} (commission {commission:,.2f}, slippage {slippage:,.2f})"
        in summary
    )
    counts = dict(trades.group_by("exit_reason").len().iter_rows())
    assert set(counts) <= {"signal", "end_of_backtest"} and counts["signal"] > 0
    by_reason = ", ".join(f"{r} {counts[r]:,}" for r in sorted(counts))
    assert f"  trades       {trades.height:,} ({by_reason})" in summary
    assert summary[-1] == f"results: {results}"


def test_no_view_says_once_that_the_market_is_closed_and_a_stop_labels_open_lots(
    gap_data, tmp_path
):
    echo = io.StringIO()
    session = PaperSession.from_config(
        load_config(gap_config(gap_data, tmp_path / "out")), speed=600.0, view=False, echo=echo
    )

    async def stop_when_closed() -> None:  # what Ctrl-C does, once the wait was announced
        while "market closed until" not in echo.getvalue():
            await anyio.sleep(0.05)
        await anyio.sleep(1.0)  # four more redraws of the view: still one line
        session.interrupt("interrupted (Ctrl-C)")

    async def replay() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_when_closed)
            await session.run()

    anyio.run(replay)
    lines = echo.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("fill 2023-01-03T20:52:00+00:00 h buy 10 AAA @ ")
    assert re.fullmatch(
        r"market closed until 2023-01-04 09:30 EST \(next bar in 10\d s at x600; "
        r"--skip-closed skips it\)",
        lines[1],
    )
    trades = pl.read_parquet(tmp_path / "out-paper" / "trades.parquet")
    assert trades["exit_reason"].to_list() == ["open_at_stop"]
    assert trades["exit_timestamp"].to_list() == [CLOSE_JAN3]


# --------------------------------------------------------------------------- --skip-closed


def test_skip_closed_jumps_the_overnight_gap_and_trades_like_the_backtest(
    gap_data, tmp_path, capsys
):
    backtest = BacktestEngine(load_config(gap_config(gap_data, tmp_path / "bt"))).run()
    capsys.readouterr()  # the library's log lines of that run
    config = _write(gap_config(gap_data, tmp_path / "out"), tmp_path)
    # unskipped, the gap alone would take 105 s at x600 (the per-test timeout is 120 s)
    args = ["paper", str(config), "--speed", "600", "--skip-closed", "--no-view"]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert re.fullmatch(
        r"skipped closed market 2023-01-03 16:0\d EST to 2023-01-04 09:20 EST \(17 h 1\d m\)",
        lines[1],
    ), out
    assert lines[2].startswith("paper x600: completed (complete), 60 bar-events")
    assert "  market time  2023-01-03 15:51 EST to 2023-01-04 09:50 EST" in lines
    assert re.search(r"^  skipped      17 h 1\d m of closed market in 1 gap\(s\)$", out, re.M)
    assert "  trades       1 (end_of_backtest 1)" in lines
    paper = tmp_path / "out-paper"
    assert pl.read_parquet(paper / "trades.parquet").equals(backtest.trades)
    assert pl.read_parquet(paper / "fills.parquet").equals(backtest.fills)
    # the one fill, as printed: 10 AAA at the 20:52 open plus 2 bps, $0.005 a share
    aaa = _bars(gap_data, "AAA")
    entry = aaa.row(1, named=True)
    assert entry["timestamp"] == GAP_DAY1.replace(minute=52)
    price, slippage = entry["open"] * (1 + SLIPPAGE), 10 * entry["open"] * SLIPPAGE
    assert lines[0] == (
        f"fill 2023-01-03T20:52:00+00:00 h buy 10 AAA @ {price:.4f} commission 0.05 "
        f"slippage {slippage:.4f}"
    )
    # and the trade closed at the last close as end_of_backtest, since the data ran out
    trade = backtest.trades.row(0, named=True)
    last = aaa.row(-1, named=True)
    assert trade["exit_reason"] == "end_of_backtest" and last["timestamp"] == GAP_END
    assert trade["exit_price"] == pytest.approx(last["close"], rel=1e-12)
