"""ml4t-diagnostic consumes a run's results with no glue, and its figures equal ours.

Two halves:

- our side of the contract, on this interpreter: the ``diagnostic/`` folder the recorder
  writes (the artifact layout ml4t-diagnostic reads, in its units) and the
  ``BacktestResult`` its bridge builds from it, whose daily returns are ours to the bit;
- ml4t-diagnostic itself (Python >= 3.12): a separate virtualenv with
  ``ml4t-diagnostic[viz]==0.2.0`` and this tree's ml4t side by side runs
  ``_diagnostic_probe.py`` (its entry points called as a user would, no adapter code)
  on the demo's results and on a long/short run without a calendar, and we compare its
  Sharpe, Sortino, CAGR, volatility, max drawdown, trade counts and costs with
  ``metrics.json``. The environment is built once (about a minute, see
  ``docs/results.md``) and kept under ``.cache/``; without a 3.12 interpreter those
  tests skip, saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from ml4t.backtest import BacktestConfig, BacktestResult, OrderSide, RecorderResults
from ml4t.backtest import metrics as m
from ml4t.backtest.analytics.annualization import get_annualization_factor
from ml4t.backtest.data.calendar import SessionCalendar
from ml4t.backtest.errors import ConfigError
from ml4t.backtest.record import Recorder, ReportingConfig, diagnostic
from ml4t.backtest.result import enrich_trades_with_signals
from ml4t.backtest.testing import Script, run_components

from ._world import Tape, day

REL = 1e-9
REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_diagnostic_probe.py")
REQUIREMENT = "ml4t-diagnostic[viz]==0.2.0"  # [viz]: plotly, which its tearsheet draws with


def close(ours: float | None, theirs: float | None) -> bool:
    if ours is None or theirs is None:  # undefined (metrics.json's null)
        return ours is None and theirs is None
    return math.isclose(ours, float(theirs), rel_tol=REL, abs_tol=1e-12)


# --------------------------------------------------------------------------- a long/short run


def long_short_tape() -> Tape:
    """Long 100 L (a win) and short 50 S (a loss), each with commission 1 and slippage in
    the fill price, entered on day 1's open and closed on day 3's; no calendar (days are
    UTC dates)."""
    tape = Tape(["L", "S"])
    marks: dict[str, float] = {}

    def bar(i: int, rows: dict[str, tuple[float, float, float, float]]) -> None:
        tape.bar(day(i), rows)
        marks.update({s: r[3] for s, r in rows.items()})

    cash, held = 100_000.0, {"L": 0.0, "S": 0.0}

    def fill(i: int, oid: str, symbol: str, side: OrderSide, qty: float, px: float) -> None:
        nonlocal cash
        # slippage 0.01 per unit, already in the price
        tape.fill(day(i), oid, symbol, side, qty, px, commission=1.0, slippage=0.01 * qty)
        held[symbol] += qty * side.sign
        cash -= qty * px * side.sign + 1.0

    def snapshot(i: int) -> None:
        equity = cash + sum(q * marks[s] for s, q in held.items())
        tape.snapshot(day(i), equity, cash, dict(held), marks)

    bar(0, {"L": (10.0, 10.2, 9.8, 10.0), "S": (20.0, 20.4, 19.6, 20.0)})
    snapshot(0)
    tape.order(day(0), "o1", "L", OrderSide.BUY, 100, reason="signal")
    tape.order(day(0), "o2", "S", OrderSide.SELL, 50, reason="signal")
    bar(1, {"L": (10.1, 10.6, 10.0, 10.5), "S": (19.9, 20.4, 19.8, 20.2)})
    fill(1, "o1", "L", OrderSide.BUY, 100, 10.11)
    fill(1, "o2", "S", OrderSide.SELL, 50, 19.89)
    snapshot(1)
    bar(2, {"L": (10.5, 10.9, 10.4, 10.8), "S": (20.2, 20.8, 20.1, 20.6)})
    snapshot(2)
    tape.order(day(2), "o3", "L", OrderSide.SELL, 100, reason="signal")
    tape.order(day(2), "o4", "S", OrderSide.BUY, 50, reason="signal")
    bar(3, {"L": (10.7, 10.8, 10.2, 10.3), "S": (20.7, 20.9, 20.5, 20.8)})
    fill(3, "o3", "L", OrderSide.SELL, 100, 10.69)
    fill(3, "o4", "S", OrderSide.BUY, 50, 20.71)
    snapshot(3)
    bar(4, {"L": (10.3, 10.4, 10.1, 10.2), "S": (20.8, 21.0, 20.6, 20.9)})
    snapshot(4)
    return tape


RUN_CONFIG = {
    "backtest": {"name": "long_short", "initial_capital": 100_000.0},
    "execution": {
        "fill_timing": "next_open",
        "commission": {"model": "per_order", "params": {"cost": 1.0}},
        "slippage": {"model": "fixed", "params": {"amount": 0.01}},
    },
    "risk": {"account": "margin"},
}


def record(out: Path, **reporting: Any) -> Recorder:
    recorder = Recorder(
        ReportingConfig(output_dir=str(out), periods_per_year=252, **reporting),
        run_config=RUN_CONFIG,
        initial_equity=100_000.0,
    )
    run_components(Script(long_short_tape().steps), recorder)
    return recorder


@pytest.fixture(scope="module")
def long_short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("long_short")
    record(out)
    return out


def folder(results: Path) -> dict[str, pl.DataFrame]:
    d = results / diagnostic.DIRECTORY
    return {p.name: pl.read_parquet(p) for p in sorted(d.glob("*.parquet"))}


def spec(results: Path) -> dict[str, Any]:
    return json.loads((results / diagnostic.DIRECTORY / "spec.json").read_text())


def contract_result(results: Path) -> BacktestResult:
    """What ml4t-diagnostic's bridge builds from the folder (its own reader does the
    same with these files; ``BacktestResult.from_frames`` is ours)."""
    config = BacktestConfig.from_dict(spec(results)["backtest_config"])
    return BacktestResult.from_frames(folder(results), config=config)


# --------------------------------------------------------------------------- our side


def test_the_folder_holds_every_artifact_and_the_manifest_lists_each(long_short: Path) -> None:
    d = long_short / diagnostic.DIRECTORY
    assert sorted(p.name for p in d.iterdir()) == sorted(diagnostic.FILES)
    manifest = json.loads((long_short / "manifest.json").read_text())
    for name in diagnostic.FILES:
        info = manifest["files"][f"{diagnostic.DIRECTORY}/{name}"]
        assert info["bytes"] == (d / name).stat().st_size
        assert info["sha256"] == "sha256:" + hashlib.sha256((d / name).read_bytes()).hexdigest()
        if name.endswith(".parquet"):
            assert info["rows"] == pq.ParquetFile(d / name).metadata.num_rows
    described = spec(long_short)
    assert described["preset_id"] == "long_short"
    config = BacktestConfig.from_dict(described["backtest_config"])
    assert config.resolved_calendar is None and config.timezone == "UTC"
    assert config.initial_cash == 100_000.0 and config.periods_per_year == 252
    assert config.get_effective_account_type() == "margin"
    assert config.execution_mode.value == "next_open" and config.execution_price.value == "open"
    assert config.commission_type.value == "per_order(cost=1.0)"
    assert config.slippage_type.value == "fixed(amount=0.01)"
    assert config.share_type.value == "integer"
    # the same folder from the same events: deterministic (no run id, no wall time in it)
    again = long_short.parent / "again"
    record(again)
    for name in diagnostic.FILES:
        assert (again / "diagnostic" / name).read_bytes() == (d / name).read_bytes(), name


def test_a_bad_backtest_config_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"backtest_config.*calendar"):
        BacktestConfig.from_dict({"name": "x", "timezone": "UTC", "initial_cash": 1.0})
    with pytest.raises(ConfigError, match="surprise"):
        BacktestConfig.from_dict(
            {
                "name": "x",
                "calendar": None,
                "timezone": "UTC",
                "initial_cash": 1.0,
                "periods_per_year": None,
                "surprise": 1,
            }
        )


def test_artifact_trades_are_in_the_other_packages_units(long_short: Path) -> None:
    ours = pl.read_parquet(long_short / "trades.parquet").sort("symbol")
    theirs = folder(long_short)["trades.parquet"].sort("symbol")
    assert theirs["symbol"].to_list() == ["L", "S"]
    assert theirs["quantity"].to_list() == [100.0, -50.0]  # signed: the short is negative
    assert theirs["direction"].to_list() == ["long", "short"]
    assert theirs["pnl"].to_list() == ours["pnl_net"].to_list()
    np.testing.assert_allclose(theirs["pnl"], [(10.69 - 10.11) * 100 - 2, (19.89 - 20.71) * 50 - 2])
    assert theirs["fees"].to_list() == [2.0, 2.0]
    # slippage per unit (ours is money), the price return as a fraction, direction-aware
    np.testing.assert_allclose(theirs["entry_slippage"], [0.01, 0.01])
    np.testing.assert_allclose(theirs["exit_slippage"], [0.01, 0.01])
    np.testing.assert_allclose(theirs["pnl_percent"], [0.58 / 10.11, -0.82 / 19.89])
    np.testing.assert_allclose(theirs["mfe"], ours["max_favorable_pct"] / 100)
    np.testing.assert_allclose(theirs["mae"], -ours["max_adverse_pct"] / 100)
    assert (theirs["mae"] <= 0).all() and (theirs["mfe"] >= 0).all()
    assert theirs["bars_held"].to_list() == ours["holding_period_bars"].to_list() == [2, 2]
    assert theirs["entry_time"].to_list() == ours["entry_timestamp"].to_list()
    assert set(theirs["status"]) == {"closed"}


def test_trade_records_pass_the_trade_record_price_and_time_rules(long_short: Path) -> None:
    """``TradeRecord``'s validators, restated: quantity > 0, duration = exit - entry,
    pnl = price move on the position - fees (- slippage, which we leave out: our
    prices include it)."""
    records = folder(long_short)["trade_records.parquet"]
    assert "slippage" not in records.columns
    for row in records.iter_rows(named=True):
        assert row["quantity"] > 0
        assert row["duration"] == row["timestamp"] - row["entry_timestamp"] >= timedelta(0)
        sign = 1.0 if row["direction"] == "long" else -1.0
        move = (row["exit_price"] - row["entry_price"]) * row["quantity"] * sign
        assert math.isclose(row["pnl"], move - row["fees"], rel_tol=1e-12)
        assert row["duration_days"] == row["duration"] / timedelta(days=1)


def test_artifact_fills_and_positions_name_the_asset_and_slip_per_unit(
    long_short: Path, demo_run: tuple[Any, RecorderResults]
) -> None:
    ours = pl.read_parquet(long_short / "fills.parquet")
    theirs = folder(long_short)["fills.parquet"]
    assert theirs["asset"].to_list() == ours["symbol"].to_list()
    np.testing.assert_allclose(theirs["slippage"] * theirs["quantity"], ours["slippage"])
    assert theirs["side"].to_list() == ["buy", "sell", "sell", "buy"]
    _, loaded = demo_run
    assert loaded.output_dir is not None
    positions = folder(loaded.output_dir)["positions.parquet"]
    assert positions.height > 100
    assert positions.equals(loaded.daily_positions.rename({"symbol": "asset"}))


def test_equity_starts_at_the_initial_equity_and_is_marked_where_each_day_ends(
    long_short: Path, demo_run: tuple[Any, RecorderResults]
) -> None:
    metrics = json.loads((long_short / "metrics.json").read_text())
    equity = folder(long_short)["equity.parquet"]
    daily = pl.read_parquet(long_short / "daily_returns.parquet")
    assert equity["timestamp"][0] == datetime.fromisoformat(metrics["start"])
    assert equity["equity"][0] == 100_000.0
    assert equity["equity"][1:].to_list() == daily["equity"].to_list()
    # no calendar: the midnight (UTC) that ends each date
    ends = [
        datetime.combine(d + timedelta(days=1), datetime.min.time(), UTC) for d in daily["date"]
    ]
    assert equity["timestamp"][1:].to_list() == ends
    # NYSE: each session's close (21:00 UTC in winter, 20:00 after the switch to EDT)
    _, loaded = demo_run
    assert loaded.output_dir is not None
    demo = folder(loaded.output_dir)["equity.parquet"]
    dates = loaded.daily_returns["date"]
    sessions = SessionCalendar("NYSE").sessions(
        int(demo["timestamp"].cast(pl.Int64)[1]) - 10**14, int(demo["timestamp"].cast(pl.Int64)[-1])
    )
    closes = dict(zip(sessions["date"], sessions["close"], strict=True))
    assert demo["timestamp"][1:].to_list() == [closes[d] for d in dates]
    assert {t.hour for t in demo["timestamp"][1:]} == {20, 21}


def test_the_contract_result_gives_our_daily_returns_to_the_bit(
    long_short: Path, demo_run: tuple[Any, RecorderResults]
) -> None:
    _, loaded = demo_run
    assert loaded.output_dir is not None
    result = contract_result(loaded.output_dir)
    assert result.config is not None and result.config.resolved_calendar == "NYSE"
    ours = loaded.daily_returns["return"].to_list()
    assert result.to_daily_returns().to_list() == ours  # the config's calendar
    assert result.to_daily_returns(calendar="NYSE").to_list() == ours
    daily = result.to_daily_pnl(session_aligned=result._auto_session_aligned("NYSE"))
    assert daily["date"].to_list() == loaded.daily_returns["date"].to_list()
    assert daily["return_pct"].to_list() == ours
    assert daily["close_equity"].to_list() == loaded.daily_returns["equity"].to_list()
    # without a calendar the start is one more point: its return is 0 (docs/results.md)
    plain = contract_result(long_short)
    days = pl.read_parquet(long_short / "daily_returns.parquet")["return"].to_list()
    assert plain.to_daily_returns().to_list() == [0.0, *days]
    assert plain.to_daily_pnl()["return_pct"].to_list() == days  # grouped into dates
    frame = plain.to_equity_dataframe()
    assert frame["equity"][0] == 100_000.0 and frame["drawdown"].max() <= 0.0


def test_a_first_day_move_counts_from_the_initial_equity() -> None:
    t0 = datetime(2024, 1, 2, 15, tzinfo=UTC)
    config = BacktestConfig(
        name="x", calendar="NYSE", timezone="America/New_York", initial_cash=100.0,
        periods_per_year=252,
    )  # fmt: skip
    result = BacktestResult(
        trades=[],
        fills=[],
        metrics={},
        config=config,
        equity_curve=[
            (t0, 100.0),
            (t0 + timedelta(hours=1), 104.0),  # the same session: only its last counts
            (datetime(2024, 1, 2, 21, tzinfo=UTC), 110.0),
            (datetime(2024, 1, 3, 21, tzinfo=UTC), 99.0),
        ],
    )
    np.testing.assert_allclose(result.to_daily_returns().to_numpy(), [0.1, -0.1], rtol=1e-15)
    pnl = result.to_daily_pnl(session_aligned=True)
    assert pnl["open_equity"].to_list() == [100.0, 110.0]
    assert pnl["high_equity"].to_list() == [110.0, 99.0] and pnl["num_bars"].to_list() == [3, 1]


def test_the_contract_tables_carry_the_trades_and_fills(long_short: Path) -> None:
    result = contract_result(long_short)
    trades = result.to_trades_dataframe().sort("symbol")
    assert trades["direction"].to_list() == ["long", "short"]
    np.testing.assert_allclose(trades["gross_pnl"], [58.0, -41.0])
    np.testing.assert_allclose(trades["total_slippage_cost"], [2.0, 1.0])
    np.testing.assert_allclose(trades["net_return"], trades["pnl"].to_numpy() / [1011.0, 994.5])
    fills = result.to_fills_dataframe()
    assert fills["signed_quantity"].to_list() == [100.0, -50.0, -100.0, 50.0]
    assert fills["fill_sequence"].to_list() == [0, 1, 2, 3]
    assert fills["bid_price"].null_count() == 4  # bar fills have no quotes
    state = result.to_portfolio_state_dataframe()
    assert state.height == 5 and state["open_positions"].to_list() == [0, 2, 2, 0, 0]
    # from the tables in memory: the same view
    loaded = BacktestResult.from_results(RecorderResults.load(long_short))
    assert loaded.trades == result.trades and loaded.fills == result.fills
    assert loaded.equity_curve == result.equity_curve and loaded.config == result.config


def test_engine_results_give_the_same_view(demo_run: tuple[Any, RecorderResults]) -> None:
    results, loaded = demo_run
    view = results.to_diagnostic()
    assert loaded.output_dir is not None
    assert view.to_daily_returns().to_list() == loaded.daily_returns["return"].to_list()
    assert len(view.trades) == results.metrics["num_trades"]
    assert view.config is not None and view.config.name == "ml_top25_demo"


def test_a_rerun_replaces_the_folder_and_a_killed_runs_temporary_folder_goes(
    tmp_path: Path,
) -> None:
    record(tmp_path)
    leftover = tmp_path / "diagnostic" / "notes.txt"  # the folder is the recorder's, whole
    leftover.write_text("not a result")
    killed = tmp_path / ".diagnostic.ml4t-20240102T030405Z-1a2b3c4d.tmp"
    killed.mkdir()
    (killed / "trades.parquet").write_bytes(b"half")
    record(tmp_path)
    assert not killed.exists() and not leftover.exists()
    assert sorted(p.name for p in (tmp_path / "diagnostic").iterdir()) == sorted(diagnostic.FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_no_folder_when_turned_off_or_without_the_trades_table(tmp_path: Path) -> None:
    record(tmp_path / "off", diagnostic=False)
    assert not (tmp_path / "off" / "diagnostic").exists()
    record(tmp_path / "few", tables=("fills", "daily_returns"))
    assert not (tmp_path / "few" / "diagnostic").exists()
    manifest = json.loads((tmp_path / "few" / "manifest.json").read_text())
    assert not [name for name in manifest["files"] if name.startswith("diagnostic")]
    record(tmp_path / "lean", tables=("trades", "daily_returns"), compression="none")
    assert sorted(p.name for p in (tmp_path / "lean" / "diagnostic").iterdir()) == [
        "daily_returns.parquet",
        "equity.parquet",
        "spec.json",
        "trade_records.parquet",
        "trades.parquet",
    ]


def test_annualisation_is_our_sessions_per_year(demo_run: tuple[Any, RecorderResults]) -> None:
    _, loaded = demo_run
    assert get_annualization_factor("NYSE") == loaded.metrics["periods_per_year"] == 252
    assert get_annualization_factor("24/7") == 365
    with pytest.raises(ConfigError, match="periods_per_year"):
        get_annualization_factor(None)


def test_signals_join_trades_as_of_entry_and_exit_never_later() -> None:
    t = datetime(2024, 1, 2, 15, tzinfo=UTC)
    trades = pl.DataFrame(
        {
            "symbol": ["A", "B"],
            "entry_time": [t, t + timedelta(hours=1)],
            "exit_time": [t + timedelta(hours=3), t + timedelta(hours=2)],
        }
    )
    signals = pl.DataFrame(
        {
            "timestamp": [
                t - timedelta(hours=1),
                t + timedelta(minutes=30),
                t,
                t + timedelta(hours=2),
            ],
            "asset": ["A", "A", "B", "B"],
            "score": [1.0, 2.0, 10.0, 20.0],
        }
    )
    out = enrich_trades_with_signals(trades, signals, timestamp_col="timestamp", asset_col="asset")
    assert out["symbol"].to_list() == ["A", "B"]
    assert out["entry_score"].to_list() == [1.0, 10.0]  # A's 15:30 value is later than entry
    assert out["exit_score"].to_list() == [2.0, 20.0]  # at or before the exit


# --------------------------------------------------------------------------- ml4t-diagnostic


def _python312() -> str | None:
    """A Python 3.12 interpreter: pyenv's, else ``python3.12`` on PATH."""
    candidates: list[str] = []
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if root.returncode == 0:
            found = Path(root.stdout.strip()).glob("versions/3.12*/bin/python3.12")
            candidates += [str(p) for p in sorted(found, reverse=True)]
    if shutil.which("python3.12"):
        candidates.append(str(shutil.which("python3.12")))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def _clean_env() -> dict[str, str]:
    """This process's environment (the package mirror's settings included) without what
    would point the other interpreter at this one's packages or tree."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` outside this tree (``python -c`` puts its working directory first on
    ``sys.path``: in the tree, it would import the tree's ml4t, not the installed one)."""
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd=cwd or tempfile.gettempdir(),
    )
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stderr[-4000:]}"
    return done


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # two test processes never build one venv at once
        yield


def _environment(python: str) -> Path:
    """The cached virtualenv (``.cache/diag-venv-<key>``, git-ignored) with the pinned
    ml4t-diagnostic and ml4t's dependencies, keyed by the requirement, the interpreter's
    version and ml4t's dependency list; rebuilt when its stamp is missing or its
    interpreter or ml4t-diagnostic is gone. This tree's ml4t is reinstalled into it on
    every call (no deps)."""
    version = _run(python, "-c", "import sys; print(sys.version)").stdout.strip()
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = hashlib.sha256("\n".join([REQUIREMENT, version, *ours]).encode()).hexdigest()[:16]
    venv = REPO / ".cache" / f"diag-venv-{key}"
    py = venv / "bin" / "python"
    stamp = venv / ".built"
    with _locked(REPO / ".cache" / f"diag-venv-{key}.lock"):
        healthy = stamp.exists() and (
            subprocess.run(
                [
                    str(py),
                    "-c",
                    "from importlib.metadata import version; version('ml4t-diagnostic')",
                ],
                capture_output=True,
                env=_clean_env(),
                cwd=tempfile.gettempdir(),
                check=False,
            ).returncode
            == 0
        )
        if not healthy:
            shutil.rmtree(venv, ignore_errors=True)
            _run(python, "-m", "venv", venv)
            _run(py, "-m", "pip", "install", "--quiet", REQUIREMENT, "hatchling>=1.25")
            _run(py, "-m", "pip", "install", "--quiet", "--no-build-isolation", REPO)
            stamp.write_text(REQUIREMENT + "\n")
        _run(
            py, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
            "--force-reinstall", REPO,
        )  # fmt: skip
    return py


@pytest.fixture(scope="module")
def diagnostic_python() -> Path:
    python = _python312()
    if python is None:
        pytest.skip(
            "ml4t-diagnostic needs Python >= 3.12 and no 3.12 interpreter was found "
            "(pyenv versions/3.12*, or python3.12 on PATH)"
        )
    py = _environment(python)
    where = _run(py, "-c", "import ml4t.backtest as b; print(b.__file__)").stdout.strip()
    # the copy installed into the environment (from this tree), not the tree itself
    assert Path(where).is_relative_to(py.parent.parent / "lib"), where
    return py


def _probe(py: Path, results: Path, out: Path, *args: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    done = _run(py, PROBE, results, out, *args, cwd=out)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(scope="module")
def demo_report(
    diagnostic_python: Path,
    demo_run: tuple[Any, RecorderResults],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], dict[str, Any]]:
    _, loaded = demo_run
    assert loaded.output_dir is not None
    out = tmp_path_factory.mktemp("diagnostic_demo")
    return _probe(diagnostic_python, loaded.output_dir, out), loaded.metrics


@pytest.fixture(scope="module")
def long_short_report(
    diagnostic_python: Path, long_short: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path_factory.mktemp("diagnostic_long_short")
    metrics = json.loads((long_short / "metrics.json").read_text())
    metrics["daily_returns"] = pl.read_parquet(long_short / "daily_returns.parquet")["return"]
    return _probe(diagnostic_python, long_short, out, "252"), metrics


def _check_trades(report: dict[str, Any], metrics: dict[str, Any]) -> None:
    total = metrics["expectancy"] * metrics["num_trades"]
    for stats in (
        report["trade_analysis"],
        report["trade_statistics"],
        report["trade_statistics_artifact"],
    ):
        assert stats["n_trades"] == metrics["num_trades"]
        assert close(metrics["win_rate"], stats["win_rate"])
        assert close(metrics["profit_factor"], stats["profit_factor"])
        assert close(metrics["average_holding_days"], stats["avg_duration_days"])
        assert close(total, stats["total_pnl"])
    assert close(metrics["worst_trade"], report["trade_analysis"]["worst"][0])
    assert close(metrics["best_trade"], report["trade_analysis"]["best"][0])
    assert report["trade_analysis"]["analyzed"] == metrics["num_trades"]
    assert report["warnings"] == []


# the first of these builds the environment (about a minute, once): hence the timeout
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_its_trade_analysis_reads_our_trades(demo_report) -> None:
    _check_trades(*demo_report)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_its_trade_records_take_a_short_as_a_short(long_short_report) -> None:
    _check_trades(*long_short_report)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_its_portfolio_analysis_equals_our_metrics(demo_report) -> None:
    report, metrics = demo_report
    for stats in (
        report["portfolio"],
        report["portfolio_full"],
        report["from_result"]["portfolio"],
    ):
        for key in ("sharpe_ratio", "sortino_ratio", "annual_return", "annual_volatility"):
            assert close(metrics[key], stats[key]), key
        assert close(metrics["max_drawdown"], stats["max_drawdown"])
        assert close(metrics["total_return"], stats["total_return"])
    full = report["portfolio_full"]
    assert close(metrics["total_costs"], full["total_implementation_cost"])  # per-unit slippage
    assert full["num_fills"] == metrics["num_fills"]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_its_run_artifact_profile_equals_our_metrics(demo_report) -> None:
    report, metrics = demo_report
    profile = report["profile"]
    assert profile["calendar"] == "NYSE" and profile["periods_per_year"] == 252
    assert profile["days"] == metrics["return_periods"] == 60
    assert close(metrics["sharpe_ratio"], profile["sharpe_ratio"])
    assert close(metrics["sortino_ratio"], profile["sortino_ratio"])
    assert close(metrics["annual_return"], profile["cagr"])
    assert close(metrics["annual_volatility"], profile["annualized_volatility"])
    assert close(-metrics["max_drawdown"], profile["max_drawdown"])  # its profile: a magnitude
    assert close(metrics["total_return"], profile["total_return"])
    assert profile["num_trades"] == metrics["num_trades"]
    assert close(metrics["win_rate"], profile["win_rate"])
    assert close(metrics["profit_factor"], profile["profit_factor"])
    assert close(metrics["total_commission"], profile["total_fees"])
    assert close(metrics["total_costs"], profile["total_implementation_cost"])
    assert set(profile["surfaces"].values()) == {"available", "unavailable"}
    assert [k for k, v in profile["surfaces"].items() if v == "unavailable"] == [
        "predictions",  # a model's predictions and signals are not results of a run
        "signals",
    ]
    assert profile["strategy_name"] == "ml_top25_demo"
    computed = report["from_result"]
    for key, ours in (
        ("sharpe_ratio", "sharpe_ratio"),
        ("sortino_ratio", "sortino_ratio"),
        ("cagr", "annual_return"),
        ("annualized_volatility", "annual_volatility"),
        ("max_drawdown", "max_drawdown"),  # here from the equity curve: signed, as ours
        ("win_rate", "win_rate"),
    ):
        assert close(metrics[ours], computed[key]), key
    assert computed["num_trades"] == metrics["num_trades"]
    assert report["warnings"] == []


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_its_tearsheets_are_written_with_our_numbers(demo_report) -> None:
    report, metrics = demo_report
    page = Path(report["tearsheet"]["path"])
    html = page.read_text()
    assert report["tearsheet"]["bytes"] == page.stat().st_size > 500_000
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "ml_top25_demo" in html and "plotly" in html.lower()
    assert f"{metrics['sharpe_ratio']:.2f}" in html and f"{metrics['num_trades']}" in html
    assert report["from_result"]["tearsheet_bytes"] > 500_000


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_without_a_calendar_it_counts_the_start_as_one_more_return(long_short_report) -> None:
    """The documented relation: no calendar, so ml4t-diagnostic (given periods_per_year)
    takes one return per row of equity.parquet, the start's being 0."""
    report, metrics = long_short_report
    assert metrics["periods_per_year"] == 252 and metrics["calendar"] is None
    profile = report["profile"]
    assert profile["calendar"] is None and profile["days"] == metrics["return_periods"] + 1
    daily = np.r_[0.0, metrics["daily_returns"].to_numpy()]
    assert close(m.sharpe_ratio(daily, 252), profile["sharpe_ratio"])
    assert close(m.sortino_ratio(daily, 252), profile["sortino_ratio"])
    assert close(m.annual_volatility(daily, 252), profile["annualized_volatility"])
    assert close(m.annual_return(daily, 252), profile["cagr"])
    assert close(-metrics["max_drawdown"], profile["max_drawdown"])
    assert close(metrics["total_return"], profile["total_return"])
    # its portfolio analysis on our daily returns themselves: equal, no relation needed
    for key in ("sharpe_ratio", "sortino_ratio", "annual_return", "annual_volatility"):
        assert close(metrics[key], report["portfolio"][key]), key
    assert close(metrics["total_costs"], profile["total_implementation_cost"])
    assert profile["num_trades"] == 2 and close(metrics["win_rate"], profile["win_rate"])
    assert report["warnings"] == []
