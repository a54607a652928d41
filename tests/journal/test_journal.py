"""The event journal: written in publish order, read back, inspected, replayed exactly."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ml4t.backtest import (
    Component,
    ComponentError,
    MarketBatch,
    OrderFilled,
    OrderSide,
    Phase,
    SessionStarted,
    SubmitOrder,
    on,
)
from ml4t.backtest.journal import (
    JOURNAL_FILE,
    JournalError,
    JournalReader,
    JournalRecorder,
    JournalWriter,
    replay,
    show,
    summary,
)
from ml4t.backtest.record import Recorder, ReportingConfig
from ml4t.backtest.testing import Script, run_components
from ml4t.backtest.topics import FILLS, MARKET, ORDER_REQUESTS, ORDERS_APPROVED, SESSION
from tests.record._world import Tape, day, random_world

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


class Broker(Component):
    """Fills every approved order at the next bar's open (phase EXECUTION)."""

    def __init__(self) -> None:
        super().__init__("broker")
        self.pending: list[SubmitOrder] = []
        self.n = 0

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    def take(self, order: Any) -> None:
        if isinstance(order, SubmitOrder):
            self.pending.append(order)

    @on(MARKET, phase=Phase.EXECUTION)
    def match(self, batch: MarketBatch) -> None:
        opens = dict(
            zip(batch.frame["symbol"].cast(str), batch.frame["open"].to_list(), strict=True)
        )
        for order in self.pending:
            self.n += 1
            self.publish(
                FILLS,
                OrderFilled(
                    ts_event=batch.ts_event,
                    fill_id=f"bf{self.n}",
                    order_id=order.order_id,
                    strategy_id=order.strategy_id,
                    symbol=order.symbol,
                    side=order.side,
                    quantity=order.quantity,
                    price=opens[order.symbol],
                    commission=1.0,
                ),
            )
        self.pending = []


class Flipper(Component):
    """Buys on even days, sells on odd days (phase STRATEGY); risk approves (phase RISK)."""

    def __init__(self) -> None:
        super().__init__("flipper")
        self.n = 0

    @on(MARKET, phase=Phase.STRATEGY)
    def decide(self, batch: MarketBatch) -> None:
        self.n += 1
        side = OrderSide.BUY if self.n % 2 else OrderSide.SELL
        order = SubmitOrder(
            ts_event=batch.ts_event,
            order_id=f"fl{self.n}",
            strategy_id="flipper",
            symbol="S00",
            side=side,
            quantity=5.0,
            reason="signal",
        )
        self.publish(ORDER_REQUESTS, order)

    @on(ORDER_REQUESTS, phase=Phase.RISK)
    def approve(self, order: Any) -> None:
        self.publish(ORDERS_APPROVED, order)


def record(tape: Tape, out: Path, *, extra: tuple[Component, ...] = (), **config: Any) -> Recorder:
    """Run ``tape`` behind a session handshake, journaled as the engine journals: the
    header holds the run config only; the rest travels in ``SessionStarted``."""
    run_config = {"strategy": "toy", "reporting": config}
    recorder = Recorder(ReportingConfig(output_dir=str(out), **config), run_config=run_config)
    journal = JournalRecorder(out / JOURNAL_FILE, header={"config": run_config})
    run_components(Script(with_session(tape)), *extra, recorder, journal)
    return recorder


def with_session(tape: Tape) -> list[Any]:
    """The tape's steps after the handshake a feed publishes first."""
    first = tape.steps[0][0]
    session = SessionStarted(
        ts_event=first,
        ts_init=first,
        symbols=tape.symbols,
        initial_cash=100_000.0,
        data_fingerprint="sha256:abc",
    )
    return [(first, SESSION, session), *tape.steps]


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    tape = random_world(days=5, symbols=2)
    writer = JournalWriter(tmp_path / "j.ml4tj", ["market", "fills"], header={"config": {"a": 1}})
    expected = []
    for ts, topic, event in tape.steps:
        if topic.name in ("market", "fills"):
            writer.write(0 if topic.name == "market" else 1, ts, event)
            expected.append((topic.name, ts, event))
    assert not (tmp_path / "j.ml4tj").exists()  # a temporary name until closed
    writer.close()
    reader = JournalReader(tmp_path / "j.ml4tj")
    assert reader.header["config"] == {"a": 1} and reader.header["topics"] == ["market", "fills"]
    assert reader.header["versions"]["msgspec"]
    got = [(e.topic, e.clock_ns, e.event) for e in reader]
    assert got == expected
    assert reader.trailer == {"events": len(expected), "complete": True, "reason": None}
    assert not reader.truncated


def test_the_journal_holds_events_in_publish_order_across_phases(tmp_path: Path) -> None:
    tape = random_world(days=6, symbols=2)
    market_only = [step for step in tape.steps if step[1] is MARKET]
    tape.steps = market_only
    record(tape, tmp_path, extra=(Broker(), Flipper()))
    entries = list(JournalReader(tmp_path / JOURNAL_FILE))
    per_day: dict[int, list[str]] = {}
    for entry in entries:
        if entry.topic != "lifecycle":
            per_day.setdefault(entry.clock_ns, []).append(entry.topic)
    # at each bar: the feed publishes the bar; the broker (EXECUTION) fills yesterday's
    # order; the strategy (STRATEGY) requests; risk (RISK) approves
    days = list(per_day.values())
    assert days[0] == ["session", "market", "orders.requested", "orders.approved"]
    assert days[1:] == [["market", "fills", "orders.requested", "orders.approved"]] * 5


def test_a_replayed_journal_gives_byte_identical_results(tmp_path: Path) -> None:
    tape = random_world(days=80, symbols=4, seed=5)
    original = record(tape, tmp_path / "run", extra=(Broker(), Flipper()), row_group_size=100)
    assert original.results is not None and original.results.trades.height > 40
    replayed = replay(tmp_path / "run" / JOURNAL_FILE, tmp_path / "replay")
    for name in [f"{t}.parquet" for t in TABLES] + ["metrics.json", "config.yaml"]:
        a, b = tmp_path / "run" / name, tmp_path / "replay" / name
        assert a.read_bytes() == b.read_bytes(), name
    assert replayed.complete and replayed.manifest["replayed"] is True
    assert replayed.manifest["data_fingerprint"] == "sha256:abc"
    assert replayed.manifest["config_hash"] == original.results.manifest["config_hash"]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert JOURNAL_FILE in manifest["files"]


def test_replay_with_another_reporting_config(tmp_path: Path) -> None:
    tape = random_world(days=30, symbols=2, bars_per_day=3)
    record(tape, tmp_path / "run")
    results = replay(
        tmp_path / "run" / JOURNAL_FILE,
        reporting=ReportingConfig(output_dir=None, portfolio_frequency="daily"),
    )
    assert results.portfolio.height == 30 and results.output_dir is None


def test_inspect_filters_by_topic_symbol_and_time(tmp_path: Path) -> None:
    tape = random_world(days=10, symbols=3)
    record(tape, tmp_path)
    path = tmp_path / JOURNAL_FILE
    info = summary(path)
    assert info["complete"] and not info["truncated"]
    assert info["by_topic"]["market"] == 10
    assert info["by_topic"]["lifecycle"] > 0  # every topic: the graph's lifecycle too
    assert info["last"].startswith("2024-01-15")  # the last bar; the stop events follow it
    reader = JournalReader(path)
    fills = list(reader.entries(topics=["fills"], symbols=["S01"]))
    assert fills and all(e.event.symbol == "S01" for e in fills)  # type: ignore[attr-defined]
    bars = list(reader.entries(topics=["market"], symbols=["S02"], start=day(3), end=day(6)))
    assert [e.clock_ns for e in bars] == [day(3), day(6)]  # a weekend in between
    assert all(e.event.frame["symbol"].cast(str).to_list() == ["S02"] for e in bars)  # type: ignore[attr-defined]

    out = io.StringIO()
    shown = show(path, topics=["market"], symbols=["S00"], limit=2, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert shown == 2 and len(lines) == 2
    assert lines[0]["topic"] == "market" and lines[0]["event"]["rows"][0]["symbol"] == "S00"
    out = io.StringIO()
    show(path, topics=["fills"], limit=1, out=out)
    assert json.loads(out.getvalue())["event"]["type"] == "OrderFilled"


def test_a_cut_journal_is_read_as_far_as_it_goes_and_replays_incomplete(tmp_path: Path) -> None:
    tape = random_world(days=20, symbols=2)
    record(tape, tmp_path / "run")
    path = tmp_path / "run" / JOURNAL_FILE
    data = path.read_bytes()
    cut = tmp_path / "cut.ml4tj"
    cut.write_bytes(data[: len(data) * 2 // 3])
    reader = JournalReader(cut)
    entries = list(reader)
    assert reader.truncated and reader.trailer is None
    assert 0 < len(entries) < summary(path)["events"]
    results = replay(cut, tmp_path / "replayed")
    assert results.complete is False and "cut short" in results.manifest["incomplete_reason"]


def test_a_failed_run_journal_replays_as_incomplete(tmp_path: Path) -> None:
    class Explodes(Component):
        @on(MARKET, phase=Phase.STRATEGY)
        def boom(self, batch: MarketBatch) -> None:
            if batch.ts_event >= day(8):
                raise RuntimeError("boom")

    tape = random_world(days=20, symbols=2)
    with pytest.raises(ComponentError):
        record(tape, tmp_path / "run", extra=(Explodes("explodes"),))
    reader = JournalReader(tmp_path / "run" / JOURNAL_FILE)
    list(reader)
    assert reader.trailer is not None and reader.trailer["complete"] is False
    results = replay(tmp_path / "run" / JOURNAL_FILE, tmp_path / "again")
    assert results.complete is False
    assert (tmp_path / "run" / "trades.parquet").read_bytes() == (
        tmp_path / "again" / "trades.parquet"
    ).read_bytes()


def test_not_a_journal_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.ml4tj"
    bogus.write_bytes(b"PAR1 not a journal")
    with pytest.raises(JournalError, match="not an ml4t journal"):
        JournalReader(bogus)


def test_the_recorder_journals_the_run_itself_when_configured(tmp_path: Path) -> None:
    tape = random_world(days=40, symbols=3, seed=9)
    recorder = Recorder(
        ReportingConfig(output_dir=str(tmp_path / "run"), journal=True),
        run_config={"strategy": "toy", "reporting": {"journal": True}},
    )
    run_components(Script(with_session(tape)), Broker(), Flipper(), recorder)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert JOURNAL_FILE in manifest["files"] and manifest["complete"]
    header = JournalReader(tmp_path / "run" / JOURNAL_FILE).header
    # the run's config and id, nothing for the replay's sake: the rest is in the events
    assert set(header) == {"format", "versions", "topics", "created_at", "config", "run_id"}
    assert header["config"] == {"strategy": "toy", "reporting": {"journal": True}}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["initial_equity"] == 1e5
    replay(tmp_path / "run" / JOURNAL_FILE, tmp_path / "replay")
    for name in [f"{t}.parquet" for t in TABLES] + ["metrics.json"]:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "replay" / name).read_bytes()
    assert not (tmp_path / "replay" / JOURNAL_FILE).exists()  # a replay does not journal
