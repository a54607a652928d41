"""The Recorder on real graphs: files, manifest, tables, frequencies, failures, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import polars as pl
import pyarrow.parquet as pq
import pytest

from ml4t.backtest import (
    Component,
    ComponentError,
    MarketBatch,
    OrderRejected,
    OrderSide,
    Phase,
    Runtime,
    SimulatedClock,
    on,
)
from ml4t.backtest.record import Recorder, ReportingConfig, diagnostic
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import MARKET, ORDER_EVENTS

from ._world import DAY, Tape, day, random_world

TABLES = (
    "trades",
    "fills",
    "orders",
    "order_history",
    "portfolio",
    "cash_flows",
    "daily_returns",
    "daily_positions",
)


def run(tape: Tape, out: Path | None, **config: Any) -> Recorder:
    options = {k: config.pop(k) for k in ("initial_equity", "run_config") if k in config}
    recorder = Recorder(
        ReportingConfig(output_dir=str(out) if out else None, **config),
        initial_equity=options.get("initial_equity", 100_000.0),
        run_config=options.get("run_config", {"strategy": "toy", "seed": 0}),
        data_fingerprint="sha256:test",
    )
    run_components(Script(tape.steps), recorder)
    return recorder


def assert_complete_files(out: Path) -> dict[str, Any]:
    """Every file parses, nothing temporary is left, the manifest matches the files."""
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names
    manifest = json.loads((out / "manifest.json").read_text())
    for name, info in manifest["files"].items():
        path = out / name
        assert path.stat().st_size == info["bytes"]
        if name.endswith(".parquet"):
            assert pq.ParquetFile(path).metadata.num_rows == info["rows"]
        elif name.endswith(".json"):
            json.loads(path.read_text())
    return manifest


def test_a_run_writes_every_table_metrics_config_and_a_complete_manifest(tmp_path: Path) -> None:
    tape = random_world(days=60, symbols=3)
    recorder = run(tape, tmp_path, row_group_size=50)
    manifest = assert_complete_files(tmp_path)
    assert manifest["complete"] is True and manifest["incomplete_reason"] is None
    assert set(manifest["files"]) == {f"{t}.parquet" for t in TABLES} | {
        "metrics.json",
        "config.yaml",
        *(f"diagnostic/{name}" for name in diagnostic.FILES),
    }
    assert manifest["data_fingerprint"] == "sha256:test"
    assert manifest["config_hash"].startswith("sha256:")
    assert manifest["versions"]["polars"] == pl.__version__
    assert manifest["events_processed"] == len(tape.steps)
    assert manifest["bar_events"] == 60 * 3 and manifest["market_batches"] == 60
    assert manifest["peak_memory_mb"] > 0 and manifest["wall_time_seconds"] > 0
    # row groups of at most 50 rows: the tables were streamed in chunks
    portfolio = pq.ParquetFile(tmp_path / "portfolio.parquet")
    assert portfolio.metadata.num_row_groups == 2
    results = recorder.results
    assert results is not None and results.complete
    assert results.portfolio.height == 60
    assert (tmp_path / "config.yaml").read_text() == "strategy: toy\nseed: 0\n"


def test_trade_pnl_adds_up_to_the_change_in_equity(tmp_path: Path) -> None:
    """Every fill's cash and cost lands in exactly one trade (open ones marked at the end)."""
    recorder = run(random_world(days=120, symbols=4, seed=3), None)
    results = recorder.results
    assert results is not None
    trades, metrics = results.trades, results.metrics
    assert trades.height > 20
    assert trades["pnl_net"].sum() == pytest.approx(
        metrics["final_equity"] - metrics["initial_equity"], abs=1e-6
    )
    fills = results.fills
    assert (trades["entry_commission"].sum() + trades["exit_commission"].sum()) == pytest.approx(
        fills["commission"].sum()
    )
    assert set(trades["exit_reason"]) <= {"signal", "stop_loss", "end_of_backtest"}
    assert (trades["max_favorable_excursion"] >= 0).all()
    assert (trades["max_adverse_excursion"] >= 0).all()


def test_fills_orders_and_order_history_tables() -> None:
    tape = Tape(["X"])
    tape.bar(day(0), {"X": (10, 10, 10, 10)})
    tape.order(day(0), "A", "X", OrderSide.BUY, 100, reason="signal", stop_loss=9.0)
    tape.order(day(0), "B", "X", OrderSide.BUY, 1e9, accept=False)
    rejected = OrderRejected(
        ts_event=day(0),
        order_id="B",
        strategy_id="s",
        symbol="X",
        rule="max_order_notional",
        reason="1e10 > 1e6",
    )
    tape.steps.append((day(0), ORDER_EVENTS, rejected))
    tape.bar(day(1), {"X": (10, 11, 9.5, 10.5)})
    tape.fill(day(1), "A", "X", OrderSide.BUY, 60, 10.01, commission=0.5, remaining=40)
    tape.bar(day(2), {"X": (10.5, 11, 10, 10.8)})
    tape.fill(day(2), "A", "X", OrderSide.BUY, 40, 10.5, commission=0.5, slippage=0.2)

    results = run(tape, None).results
    assert results is not None
    fills = results.fills
    assert fills["fill_id"].to_list() == ["f1", "f2"]
    assert fills["notional"].to_list() == pytest.approx([600.6, 420.0])
    orders = {row["order_id"]: row for row in results.orders.to_dicts()}
    assert (
        orders["B"]["status"] == "rejected" and orders["B"]["reject_rule"] == "max_order_notional"
    )
    assert orders["A"]["status"] == "filled" and orders["A"]["filled_quantity"] == 100.0
    assert orders["A"]["avg_fill_price"] == pytest.approx((600.6 + 420.0) / 100)
    assert orders["A"]["stop_loss"] == 9.0 and orders["A"]["commission"] == 1.0
    history = results.order_history.filter(pl.col("order_id") == "A")
    assert history["event"].to_list() == [
        "submitted",
        "approved",
        "accepted",
        "partially_filled",
        "filled",
    ]
    assert history["status"].to_list()[-2:] == ["partially_filled", "filled"]
    assert results.metrics["num_orders"] == 2 and results.metrics["num_rejected_orders"] == 1


@pytest.mark.parametrize(
    ("frequency", "rows"),
    [("bar", 30), ("daily", 10), ("8h", 20), ("1d", 10)],
)
def test_portfolio_frequency_keeps_the_last_state_of_each_period(frequency: str, rows: int) -> None:
    # 3 snapshots a day at 09:00, 15:00 and 21:00 UTC: 8h buckets are aligned on the
    # epoch, so each day has a 08:00-16:00 and a 16:00-24:00 bucket
    tape = random_world(days=10, symbols=2, bars_per_day=3)
    results = run(tape, None, portfolio_frequency=frequency).results
    assert results is not None
    table = results.portfolio
    assert table.height == rows
    all_states = run(tape, None).results.portfolio  # type: ignore[union-attr]
    last_of_day = all_states.group_by(pl.col("timestamp").dt.date().alias("day")).agg(
        pl.all().last()
    )
    if frequency in ("daily", "1d"):
        assert table["timestamp"].to_list() == sorted(last_of_day["timestamp"].to_list())
        assert table["equity"].to_list() == all_states["equity"].gather_every(3, 2).to_list()
    # period returns chain to the cumulative return whatever the frequency
    chained = (table["period_return"] + 1).product() - 1
    assert chained == pytest.approx(table["cumulative_return"][-1], abs=1e-12)
    assert (table["drawdown"] <= 0).all()


def test_daily_frequency_follows_the_day_timezone() -> None:
    tape = random_world(days=3, symbols=1, bars_per_day=3)  # 09:00, 15:00, 21:00 UTC
    utc = run(tape, None, portfolio_frequency="daily").results.portfolio  # type: ignore[union-attr]
    tokyo = run(tape, None, portfolio_frequency="daily", day_timezone="Asia/Tokyo").results
    assert utc.height == 3
    # in Tokyo (UTC+9) 15:00 UTC is already the next day: 09:00 closes one Tokyo day
    assert tokyo is not None and tokyo.portfolio.height == 4


class Explodes(Component):
    @on(MARKET, phase=Phase.STRATEGY)
    def boom(self, batch: MarketBatch) -> None:
        if batch.ts_event >= day(20):
            raise RuntimeError("model server went away")


def test_a_failed_run_writes_complete_files_and_an_incomplete_manifest(tmp_path: Path) -> None:
    tape = random_world(days=40, symbols=2)
    recorder = Recorder(ReportingConfig(output_dir=str(tmp_path)), initial_equity=100_000.0)
    with pytest.raises(ComponentError, match="model server went away"):
        run_components(Script(tape.steps), Explodes("explodes"), recorder)
    manifest = assert_complete_files(tmp_path)
    assert manifest["complete"] is False and manifest["status"] == "failed"
    assert "'explodes' failed" in manifest["incomplete_reason"]
    assert "trades.parquet" in manifest["files"]
    before = [ts for ts, topic, _ in tape.steps if topic.name == "portfolio" and ts < day(20)]
    assert pl.read_parquet(tmp_path / "portfolio.parquet").height == len(before) == 14


def test_mark_incomplete_and_an_early_stop_mark_the_manifest(tmp_path: Path) -> None:
    tape = random_world(days=10, symbols=1)
    recorder = Recorder(ReportingConfig(output_dir=str(tmp_path / "a")))
    recorder.mark_incomplete("the feed lost its connection")
    run_components(Script(tape.steps), recorder)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["incomplete_reason"] == "the feed lost its connection"

    class StopAt(Component):
        def __init__(self, runtime: Runtime) -> None:
            super().__init__("stopper")
            self._stop = runtime.stop

        @on(MARKET)
        def check(self, batch: MarketBatch) -> None:
            if batch.ts_event >= day(5):
                self._stop()

    runtime = Runtime(clock=SimulatedClock(), strict=True)
    for component in (
        Script(tape.steps),
        StopAt(runtime),
        Recorder(ReportingConfig(output_dir=str(tmp_path / "b"))),
    ):
        runtime.add(component)
    runtime.run_sync()
    manifest = assert_complete_files(tmp_path / "b")
    assert manifest["complete"] is False
    assert "before the end of its data" in manifest["incomplete_reason"]


def test_results_can_stay_in_memory() -> None:
    recorder = run(random_world(days=20, symbols=2), None)
    results = recorder.results
    assert results is not None and results.output_dir is None
    assert results.manifest["complete"] is True and results.manifest["files"] == {}
    for name in TABLES:
        assert isinstance(results.table(name), pl.DataFrame)
    assert results.portfolio.height == 20


def test_only_the_configured_tables_are_written(tmp_path: Path) -> None:
    recorder = run(random_world(days=20, symbols=2), tmp_path, tables=("trades", "portfolio"))
    written = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert written == ["portfolio.parquet", "trades.parquet"]
    assert recorder.results is not None and recorder.results.fills.height == 0
    assert recorder.results.metrics["num_fills"] > 0  # metrics still count every fill


def test_two_runs_write_byte_identical_results(tmp_path: Path) -> None:
    tape = random_world(days=40, symbols=3, seed=7)
    run(tape, tmp_path / "one")
    run(tape, tmp_path / "two")
    for name in [f"{t}.parquet" for t in TABLES] + ["metrics.json", "config.yaml"]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_metrics_json_is_strict_json_with_nulls_for_undefined_values(tmp_path: Path) -> None:
    tape = Tape(["X"])
    tape.bar(day(0), {"X": (10, 10, 10, 10)})  # no snapshots, no trades
    run(tape, tmp_path)
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text)
    assert metrics["sharpe_ratio"] is None and metrics["num_trades"] == 0


class Root(msgspec.Struct, forbid_unknown_fields=True):
    reporting: ReportingConfig


def test_reporting_config_rejects_bad_values_with_the_key_path() -> None:
    decode = msgspec.json.Decoder(Root).decode
    with pytest.raises(msgspec.ValidationError, match=r"'hourly' is not .* at `\$\.reporting`"):
        decode(b'{"reporting": {"portfolio_frequency": "hourly"}}')
    with pytest.raises(msgspec.ValidationError, match="unknown field `tabels`"):
        decode(b'{"reporting": {"tabels": ["trades"]}}')
    with pytest.raises(msgspec.ValidationError, match="both as signals and as context"):
        decode(b'{"reporting": {"signals": ["vix"], "context": ["vix"]}}')
    with pytest.raises(msgspec.ValidationError, match="day_timezone"):
        decode(b'{"reporting": {"day_timezone": "Mars/Olympus"}}')
    with pytest.raises(msgspec.ValidationError, match=r"tables\[0\]"):
        decode(b'{"reporting": {"tables": ["positions"]}}')
    config = decode(b'{"reporting": {"portfolio_frequency": "5m"}}').reporting
    assert config.frequency_ns() == 5 * 60 * 10**9


def test_drawdown_statistics_come_from_every_snapshot() -> None:
    tape = Tape(["X"])
    equities = [100, 110, 99, 104, 111, 105, 108]  # peak 110 -> trough 99 -> new high 111
    for i, equity in enumerate(equities):
        tape.bar(day(i), {"X": (10, 10, 10, 10)})
        tape.snapshot(day(i), float(equity), float(equity), {}, {"X": 10.0})
    results = run(tape, None, initial_equity=100.0).results
    assert results is not None
    metrics = results.metrics
    assert metrics["max_drawdown"] == pytest.approx(99 / 110 - 1)
    assert metrics["max_drawdown_start"].startswith("2024-01-03")
    assert metrics["max_drawdown_trough"].startswith("2024-01-04")
    assert metrics["max_drawdown_end"].startswith("2024-01-06")
    # the longest time under water: 111 on day 4, never recovered by day 6 (2 days) vs
    # 110 on day 1 to 111 on day 4 (3 days)
    assert metrics["max_drawdown_duration_days"] == 3.0
    assert metrics["total_return"] == pytest.approx(0.08)
    assert metrics["return_periods"] == len(equities)
    assert (
        math.isclose(results.portfolio["drawdown"][-1], 108 / 111 - 1, rel_tol=1e-12)
        and results.portfolio["drawdown"][0] == 0.0
    )
    assert DAY == 86_400 * 10**9


def test_results_load_from_a_results_directory(tmp_path: Path) -> None:
    from ml4t.backtest.record import RecorderResults

    recorder = run(random_world(days=10, symbols=2), tmp_path)
    loaded = RecorderResults.load(tmp_path)
    assert loaded.complete and loaded.metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert recorder.results is not None
    assert loaded.trades.equals(recorder.results.trades)
    with pytest.raises(KeyError, match="no table 'positions'"):
        loaded.table("positions")


def same_close_tape() -> Tape:
    """Three bars of X; a buy of 5 at d0's close (commission 1) is held to the end. As in
    a real graph, d0 has two snapshots: the bar's mark, then the one after the fill."""
    tape = Tape(["X"])
    tape.bar(day(0), {"X": (100, 100, 100, 100)})
    tape.snapshot(day(0), 1000.0, 1000.0, {}, {"X": 100.0})
    tape.order(day(0), "A", "X", OrderSide.BUY, 5)
    tape.fill(day(0), "A", "X", OrderSide.BUY, 5, 100.0, commission=1.0)
    tape.snapshot(day(0), 999.0, 499.0, {"X": 5.0}, {"X": 100.0})
    tape.bar(day(1), {"X": (100, 102, 100, 102)})
    tape.snapshot(day(1), 1009.0, 499.0, {"X": 5.0}, {"X": 102.0})
    tape.bar(day(2), {"X": (102, 102, 98, 98)})
    tape.snapshot(day(2), 989.0, 499.0, {"X": 5.0}, {"X": 98.0})
    return tape


def test_two_snapshots_at_one_timestamp_give_one_row_the_later_state() -> None:
    results = run(same_close_tape(), None, initial_equity=1000.0).results
    assert results is not None
    table = results.portfolio
    assert table["timestamp"].dt.day().to_list() == [2, 3, 4]  # d0, d1, d2: one row each
    first = table.row(0, named=True)
    assert (first["cash"], first["equity"], first["num_positions"]) == (499.0, 999.0, 1)
    assert first["period_return"] == pytest.approx(999 / 1000 - 1)
    assert table["period_return"][1] == pytest.approx(1009 / 999 - 1)


def test_two_snapshots_at_one_timestamp_count_once_in_the_metrics() -> None:
    results = run(same_close_tape(), None, initial_equity=1000.0).results
    assert results is not None
    metrics = results.metrics
    assert metrics["exposure"] == 1.0  # 3 of 3 timestamps invested (0.75 if d0 counts twice)
    gross = [500 / 999, 510 / 1009, 490 / 989]
    assert metrics["average_gross_leverage"] == pytest.approx(sum(gross) / 3, rel=1e-12)
    # turnover: 500 traded over the mean equity of the three states
    assert metrics["turnover"] == pytest.approx(500 / ((999 + 1009 + 989) / 3), rel=1e-12)
    assert metrics["return_periods"] == 3
    assert metrics["max_drawdown"] == pytest.approx(989 / 1009 - 1)


def test_without_an_initial_equity_the_first_snapshot_before_any_fill_is_the_base() -> None:
    # d0's first snapshot (1000) is the account before the fill; the commission of the
    # fill at d0's close is part of the return
    results = run(same_close_tape(), None, initial_equity=None).results
    assert results is not None
    assert results.metrics["initial_equity"] == 1000.0
    assert results.metrics["total_return"] == pytest.approx(989 / 1000 - 1)
    assert results.portfolio["period_return"][0] == pytest.approx(999 / 1000 - 1)
