"""The demo's top-25 strategy, unchanged, in the three places it can run, on the same
scripted bars: a backtest (``BacktestEngine``, journal on), forward testing (``ml4t live
--dry-run``: the stand-in's market-data stream, our simulated broker) and the stand-in
venue (``ml4t live --paper``: the stand-in's stream and its Trading API, which fills a
market order at the next minute's open with no costs, as the config's fill rule does).
The three journals' order decisions agree bar for bar; a bar changed for one side is
where ``journal.diff`` says they part.

The live sessions are real ``ml4t live`` processes. The strategy is the file ``ml4t
demo`` writes (``strategies/ml_top25.py``, ``MLTop25Strategy``). Its model columns
(``signal_entry``, ``signal_exit``, ``confidence``, ``rsi``, ``atr``) come as signal data
and the VIX as context, joined as of each bar in every mode: a live bar carries OHLCV
only, so indicators travel as signals, not as columns of the bar files.

The journals are compared with ``ml4t journal diff --kind SubmitOrder --kind
CancelOrder --kind ModifyOrder --by-bar`` (the command line: a plugin's tests use only
the public API): only the strategy's and the risk manager's order decisions, each at the
bar it followed. The
events between them legitimately differ: the venue's acknowledgements and fill times
(Alpaca stamps a fill with the minute it happened in), the reconciliation at start, and
the clock, which in a live session is the wall time at which a bar arrived.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from alpaca_fakes import FIRST, KEY_ID, SECRET
from alpaca_standin import AlpacaStandIn, start_standin

from ml4t.backtest import BacktestEngine, JournalReader, load_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = ROOT / "plugins" / "ml4t-alpaca"
SYMBOLS = tuple(f"S{k:02d}" for k in range(36))
MINUTES = 60
ORDER_DECISIONS = ("SubmitOrder", "CancelOrder", "ModifyOrder")
JOURNAL_FILE = "journal.ml4tj"
DEMO_STRATEGY = importlib.resources.files("ml4t.backtest.demo") / "ml_top25.py"
"""The strategy file ``ml4t demo`` writes into ``strategies/ml_top25.py``, as shipped."""
KEY_ENV, SECRET_ENV = "THREE_WAY_ALPACA_KEY", "THREE_WAY_ALPACA_SECRET"
SETTLE_S = 0.3  # a live journal that has not grown for this long has handled its bar
FILL_COLUMNS = ["order_id", "symbol", "side", "quantity", "price"]


# --------------------------------------------------------------------------- the data


def scripted_data(seed: int = 20) -> dict[str, pl.DataFrame]:
    """Minute bars of 36 symbols, the model's predictions every ten minutes (entries,
    exits, confidence, RSI, ATR) and the VIX every fifteen, above the strategy's
    threshold of 30 for one stretch: enough for the top 25 to fill, rotate and pause."""
    rng = np.random.default_rng(seed)
    times = [FIRST + timedelta(minutes=i) for i in range(MINUTES)]
    rows, signals = [], []
    for k, symbol in enumerate(SYMBOLS):
        price = 40.0 + 4.0 * k
        for i, ts in enumerate(times):
            close = max(1.0, price * (1 + rng.normal(0, 0.003)))
            high = max(price, close) * (1 + abs(rng.normal(0, 0.001)))
            low = min(price, close) * (1 - abs(rng.normal(0, 0.001)))
            volume = float(rng.integers(20_000, 200_000))
            rows.append((ts, symbol, round(price, 4), round(high, 4), round(low, 4),
                         round(close, 4), volume))  # fmt: skip
            if i % 10 == 0:
                signals.append(
                    (ts, symbol, int(rng.random() < 0.5), int(rng.random() < 0.25),
                     round(float(rng.uniform(0.5, 1.0)), 4), round(float(rng.uniform(30, 80)), 2),
                     round(price * float(rng.uniform(0.004, 0.02)), 4))
                )  # fmt: skip
            price = close
    bars = pl.DataFrame(
        rows, schema=["timestamp", "symbol", "open", "high", "low", "close", "volume"], orient="row"
    )
    signal_frame = pl.DataFrame(
        signals,
        schema=["timestamp", "symbol", "signal_entry", "signal_exit", "confidence", "rsi", "atr"],
        orient="row",
    )
    vix = pl.DataFrame(
        {
            "timestamp": [FIRST + timedelta(minutes=m) for m in range(0, MINUTES, 15)],
            "vix": [18.0, 33.5, 22.0, 25.0],
        }
    )
    ns = pl.col("timestamp").dt.cast_time_unit("ns")
    return {
        "bars": bars.with_columns(ns).sort("timestamp", "symbol"),
        "signals": signal_frame.with_columns(ns).sort("timestamp", "symbol"),
        "context": vix.with_columns(ns),
    }


def write_files(root: Path, frames: dict[str, pl.DataFrame]) -> dict[str, Path]:
    """The frames as parquet, and the strategy file ``ml4t demo`` writes."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in frames.items():
        paths[name] = root / f"{name}.parquet"
        frame.write_parquet(paths[name])
    strategy = root / "strategies" / "ml_top25.py"
    strategy.parent.mkdir(exist_ok=True)
    strategy.write_text(DEMO_STRATEGY.read_text())
    paths["strategy"] = strategy
    return paths


def run_config(paths: dict[str, Path], out: Path) -> dict:
    """The demo's config on these files: the demo's strategy and risk settings, market
    orders at the next bar's open, no costs (the stand-in charges none)."""
    return {
        "backtest": {"name": "three_way", "initial_capital": 1_000_000},
        "data": {
            "asset": {"path": str(paths["bars"])},
            "signal_data": {
                "path": str(paths["signals"]),
                "columns": ["signal_entry", "signal_exit", "confidence", "rsi", "atr"],
            },
            "context": {"path": str(paths["context"]), "fields": ["vix"]},
        },
        "execution": {
            "fill_timing": "next_open",
            "commission": {"model": "none"},
            "slippage": {"model": "none"},
        },
        "risk": {"account": "cash", "max_position_pct": 0.10, "max_open_positions": 25},
        "reporting": {"output_dir": str(out), "journal": True, "html_report": False},
        "strategy": {
            "path": str(paths["strategy"]),
            "class": "MLTop25Strategy",
            "params": {"max_positions": 25, "position_size_pct": 0.04, "vix_threshold": 30},
        },
    }


def live_section(standin: AlpacaStandIn, runs: Path) -> dict:
    """``live:`` pointing both Alpaca adapters at ``standin``."""
    urls = {
        "trading_url": standin.base_url,
        "trading_stream_url": f"ws://127.0.0.1:{standin.port}/stream",
        "data_url": standin.base_url,
        "data_stream_url": f"ws://127.0.0.1:{standin.port}/v2/{standin.feed}",
        "request_timeout": 5.0,
    }
    return {
        "data": {"adapter": "alpaca", "params": {**urls, "feed": standin.feed, "grace": 0.5}},
        "broker": {"adapter": "alpaca", "params": {**urls, "session": "three-way"}},
        "symbols": list(SYMBOLS),
        "credentials_env": {"key_id": KEY_ENV, "secret_key": SECRET_ENV},
        "runs_dir": str(runs),
        "cancel_on_stop": False,  # the backtest ends with its open orders open too
    }


# --------------------------------------------------------------------------- running


def backtest(paths: dict[str, Path], out: Path) -> Path:
    """``BacktestEngine`` on the files; the journal it wrote."""
    results = BacktestEngine(load_config(run_config(paths, out))).run()
    assert results.complete
    return out / JOURNAL_FILE


def entry_points_dir(root: Path) -> Path:
    """A distribution's metadata declaring the plugin's entry points as this checkout's
    ``pyproject.toml`` does, for the ``ml4t live`` processes: the installed copy of the
    plugin may predate them (``pip install -e plugins/ml4t-alpaca`` refreshes it)."""
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = root / "ml4t_alpaca_checkout-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ml4t-alpaca-checkout\nVersion: 0.0.0\n"
    )
    lines = []
    for group, names in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in names.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return root


@dataclass
class LiveRun:
    journal: Path
    results: Path
    returncode: int
    stdout: str
    stderr: str


def _count(journal: Path, topic: str) -> int:
    if not journal.is_file():
        return 0
    return sum(1 for e in JournalReader(journal) if e.topic == topic)


def _wait(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _settled(journal: Path, standin: AlpacaStandIn, venue: bool) -> None:
    """Until ``journal`` has not grown for :data:`SETTLE_S`, the venue has answered every
    approved order and, against the stand-in, every one has reached it: what a bar
    caused is done before the next is played."""
    size, since = -1, time.monotonic()
    while True:
        now = journal.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= SETTLE_S:
            approved, answered = _orders(journal)
            if approved <= answered and (not venue or len(standin.orders) == len(approved)):
                return
            since = time.monotonic()
        time.sleep(0.02)


def _orders(journal: Path) -> tuple[set[str], set[str]]:
    """The ids of the orders approved, and of those the venue accepted or rejected."""
    approved, answered = set(), set()
    for entry in JournalReader(journal):
        kind = type(entry.event).__name__
        if entry.topic == "orders.approved" and kind == "SubmitOrder":
            approved.add(entry.event.order_id)
        elif kind in ("OrderAccepted", "OrderRejected"):
            answered.add(entry.event.order_id)
    return approved, answered


def live(paths: dict[str, Path], bars: pl.DataFrame, work: Path, mode: str) -> LiveRun:
    """``ml4t live CONFIG --<mode>`` against a fresh stand-in playing ``bars`` minute by
    minute, each once the session has handled the one before; then Ctrl-C."""
    standin = start_standin(bars, key_id=KEY_ID, secret_key=SECRET, cash=1_000_000.0)
    try:
        config = run_config(paths, work / "results")
        config["live"] = live_section(standin, work / "runs")
        work.mkdir(parents=True, exist_ok=True)
        path = work / "live.yaml"
        path.write_text(yaml.safe_dump(config))
        pythonpath = [str(entry_points_dir(work / "meta")), str(ROOT), str(PLUGIN / "src")]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(pythonpath),
            KEY_ENV: KEY_ID,
            SECRET_ENV: SECRET,
        }
        run = work / "runs" / mode
        journal = run / JOURNAL_FILE
        command = [sys.executable, "-m", "ml4t.backtest.cli", "live", str(path), f"--{mode}"]
        out, err = work / "stdout.txt", work / "stderr.txt"  # files: a pipe could fill up
        with (
            out.open("wb") as stdout,
            err.open("wb") as stderr,
            subprocess.Popen(
                [*command, "--run-id", mode, "--no-view"], stdout=stdout, stderr=stderr, env=env
            ) as proc,
        ):
            try:
                venue = mode == "paper"
                _wait(
                    lambda: (
                        any(standin._data_sockets.values())
                        and (not venue or standin._trade_sockets)
                        and _count(journal, "session") > 0
                    ),
                    "the session to connect and subscribe",
                )
                _settled(journal, standin, venue)
                for i in range(standin.remaining):
                    standin.step()
                    _wait(lambda i=i: _count(journal, "market") > i, f"bar {i} in the journal")
                    _settled(journal, standin, venue)
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        return LiveRun(journal, run / "results", proc.returncode, out.read_text(), err.read_text())
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The data, and the three runs' journals and results."""
    root = tmp_path_factory.mktemp("three-way")
    frames = scripted_data()
    paths = write_files(root / "data", frames)
    out: dict[str, object] = {"frames": frames, "paths": paths, "root": root}
    out["backtest"] = backtest(paths, root / "backtest")
    out["dry-run"] = live(paths, frames["bars"], root / "dry-run", "dry-run")
    out["paper"] = live(paths, frames["bars"], root / "paper", "paper")
    return out


def bar_number(frames: dict[str, pl.DataFrame], stamp: str) -> int:
    """Which market batch (1 for the first) is the one of ``stamp``."""
    times = [t.isoformat() for t in frames["bars"]["timestamp"].unique().sort()]
    return times.index(stamp) + 1


@dataclass
class Diff:
    """What ``ml4t journal diff`` reported: its text, and at the first divergence the
    fields that differ and the two events (with their ``bar`` and ``bar_time``)."""

    equal: bool
    report: str
    fields: list[str]
    event_a: dict | None
    event_b: dict | None


def journal_diff(a: Path, b: Path) -> Diff:
    """``ml4t journal diff A B`` of the order decisions, bar by bar."""
    kinds = [arg for kind in ORDER_DECISIONS for arg in ("--kind", kind)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(PLUGIN / "src")])}
    done = subprocess.run(
        [sys.executable, "-m", "ml4t.backtest.cli", "journal", "diff", str(a), str(b), *kinds,
         "--by-bar", "--context", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    events = {p: json.loads(line[3:]) for line in lines for p in ("A", "B")
              if line.startswith(f"{p}> ") and not line.endswith("<end of journal>")}  # fmt: skip
    fields = lines[0].partition("): ")[2].split(", ") if done.returncode else []
    return Diff(done.returncode == 0, done.stdout, fields, events.get("A"), events.get("B"))


def _decisions(journal: Path) -> list:
    return [e.event for e in JournalReader(journal) if type(e.event).__name__ in ORDER_DECISIONS]


# --------------------------------------------------------------------------- the tests


@pytest.mark.timeout(420)
def test_the_demo_strategy_makes_the_same_orders_in_a_backtest_a_forward_test_and_at_the_venue(
    three,
):
    reference = three["backtest"]
    orders = [e for e in _decisions(reference) if type(e).__name__ == "SubmitOrder"]
    assert len(orders) >= 60  # the top 25 filled, rotated and refilled: a real comparison
    assert len({o.symbol for o in orders}) > 25  # more names than slots: exits made room
    assert sum(o.side.value == "sell" for o in orders) >= 20
    for mode in ("dry-run", "paper"):
        run: LiveRun = three[mode]
        assert run.returncode == 130, run.stderr  # stopped by Ctrl-C after the last bar
        assert f"live ({mode}) {mode}: " in run.stdout  # the summary of ml4t live
        assert _count(run.journal, "market") == MINUTES
        result = journal_diff(reference, run.journal)
        assert result.equal, result.report
        assert f"journals agree: {len(_decisions(reference)):,} events" in result.report
    # and the fills agree too: ours in the forward test, the venue's at the stand-in
    fills = {
        "backtest": pl.read_parquet(reference.parent / "fills.parquet"),
        **{m: pl.read_parquet(three[m].results / "fills.parquet") for m in ("dry-run", "paper")},
    }
    expected = fills["backtest"].select(FILL_COLUMNS).sort("order_id")
    assert expected.height >= 40
    for mode in ("dry-run", "paper"):
        got = fills[mode].select(FILL_COLUMNS).sort("order_id")
        assert got.equals(expected), mode


@pytest.mark.timeout(420)
def test_a_bar_changed_for_the_backtest_is_where_the_diff_says_the_orders_part(three, tmp_path):
    """The same check can fail: a close changed in the backtest's bars changes the size
    of an order placed on that bar, and the diff names that bar as the first divergence."""
    frames: dict[str, pl.DataFrame] = three["frames"]
    reference = three["backtest"]
    orders = [e for e in _decisions(reference) if type(e).__name__ == "SubmitOrder"]
    first = orders[0].ts_event
    target = next(o for o in orders if o.side.value == "buy" and o.ts_event > first + 10 * 60e9)
    hit = (pl.col("timestamp").dt.epoch("ns") == target.ts_event) & (
        pl.col("symbol") == target.symbol
    )
    close = pl.when(hit).then(pl.col("close") * 2).otherwise(pl.col("close"))
    bars = (
        frames["bars"]
        .with_columns(close.alias("close"))
        .with_columns(pl.max_horizontal("high", "close").alias("high"))
    )
    assert not bars.equals(frames["bars"])
    paths = write_files(tmp_path / "data", {**frames, "bars": bars})
    changed = backtest(paths, tmp_path / "backtest")
    result = journal_diff(changed, three["paper"].journal)
    assert not result.equal, result.report
    assert result.event_a is not None and result.event_b is not None
    stamp = datetime.fromtimestamp(target.ts_event // 10**9, tz=UTC).isoformat()
    assert result.event_b["bar_time"] == stamp  # the first divergence is at the changed bar...
    assert result.event_a["bar"] == result.event_b["bar"] == bar_number(frames, stamp)
    assert result.event_a["event"]["symbol"] == target.symbol  # ...in that symbol's order
    assert "event.quantity" in result.fields  # ...whose size changed
