"""Reconciliation against a venue's account: the differences found, the three policies at
start (fail, warn, adopt: the account as the starting state), reconciling again after a
client reports its connection restored, a failed link stopping the run, and warm-up
bars replayed by the feed adapter with orders on them refused."""

from __future__ import annotations

import anyio
import polars as pl
import pytest

from ml4t.backtest import (
    AccountReconciled,
    BacktestEngine,
    ComponentError,
    MarketBatch,
    OrderRejected,
    Portfolio,
    RiskManager,
    Runtime,
    Strategy,
    VenueConnection,
    VenueLink,
    VenueOrder,
    load_config,
)
from ml4t.backtest.live import (
    AccountState,
    Backoff,
    BrokerAdapter,
    DrivenClock,
    FeedAdapter,
    LoopbackMarketData,
    PaperExecution,
    reconcile_account,
)
from ml4t.backtest.testing import Capture
from ml4t.backtest.topics import MARKET, ORDER_EVENTS, VENUE
from tests.live.conftest import run_config
from tests.live.strategies import Momentum

FAST = Backoff(initial=0.001, maximum=0.01, attempts=5)


def test_reconcile_account_lists_positions_missing_and_unexpected_orders_and_cash():
    state = AccountState(
        cash=900.0,
        positions={"AAA": 5.0, "BBB": -2.0},
        open_orders=[
            VenueOrder(order_id="s-2", symbol="AAA", side="buy", quantity=3),
            VenueOrder(order_id="", venue_order_id="v9", symbol="CCC", side="sell", quantity=1),
        ],
    )
    found = reconcile_account({"AAA": 5.0}, {"s-1": "BBB"}, state, cash=1000.0)
    assert [(d.kind, d.subject) for d in found] == [
        ("position", "BBB"),
        ("missing_order", "s-1"),
        ("unexpected_order", "s-2"),
        ("unexpected_order", "v9"),
        ("cash", "cash"),
    ]
    assert found[0].detail == "BBB: expected 0, venue has -2"
    assert "placed outside this session" in found[3].detail
    assert reconcile_account({"AAA": 5.0}, {}, AccountState(positions={"AAA": 5.0})) == []


class Account(PaperExecution):
    """A paper venue that holds an account already: cash, 5 AAA at 20, a working order."""

    async def account(self) -> AccountState:
        held = await self.positions()
        return AccountState(
            cash=50_000.0,
            equity=50_100.0,
            positions={"AAA": 5.0, **held},
            avg_prices={"AAA": 20.0},
            open_orders=[
                VenueOrder(order_id="", venue_order_id="x1", symbol="AAB", side="buy", quantity=1)
            ],
        )


def _run(ds, broker):
    cfg = load_config(run_config(ds, None))
    engine = BacktestEngine(cfg, strategy=Momentum("m"), broker=broker)
    capture = engine.add(Capture(VENUE))
    return engine.run(), engine, capture


def test_adopt_makes_the_venue_account_the_starting_state_and_reports_the_differences(
    short_data,
):
    broker = BrokerAdapter(Account(), on_mismatch="adopt", venue="paper")
    results, engine, capture = _run(short_data, broker)
    start = capture.of_type(AccountReconciled)[0]
    assert start.adopted and start.cash == 50_000.0
    assert [d.kind for d in start.differences] == ["position", "unexpected_order"]
    portfolio: Portfolio = engine.portfolio  # type: ignore[assignment]
    assert portfolio.initial_cash == 50_000.0 + 5 * 20.0
    fills = results.fills.filter(pl.col("symbol") == "AAA")
    traded = sum(q if side == "buy" else -q for q, side in fills.select("quantity", "side").rows())
    assert portfolio.quantity[portfolio._table.code["AAA"]] == pytest.approx(5.0 + traded)
    portfolio.check()  # the identity holds from the adopted state on
    assert results.trades.height > 0


def test_warn_reports_and_keeps_the_configured_state_and_fail_stops_the_start(short_data):
    broker = BrokerAdapter(Account(), on_mismatch="warn")
    _, engine, capture = _run(short_data, broker)
    start = capture.of_type(AccountReconciled)[0]
    assert not start.adopted and start.differences
    assert engine.portfolio.initial_cash == 100_000.0  # type: ignore[attr-defined]
    with pytest.raises(ComponentError, match=r"AAA: expected 0, venue has 5.*AAB"):
        _run(short_data, BrokerAdapter(Account()))


class Flapping(PaperExecution):
    """Reports its stream lost and restored after the 3rd bar, then failed after the 6th."""

    def __init__(self) -> None:
        super().__init__()
        self.bars = 0

    def _link(self, state: VenueLink) -> None:
        assert self._listener is not None
        self._listener(
            VenueConnection(
                ts_event=self._last_ts, venue="paper", link="trade_updates", state=state
            )
        )

    async def on_market(self, batch: MarketBatch) -> None:
        await super().on_market(batch)
        self.bars += 1
        if self.bars == 3:
            self._link(VenueLink.LOST)
            self._link(VenueLink.RESTORED)
        if self.bars == 6:
            self._link(VenueLink.FAILED)


def test_a_restored_link_is_reconciled_again_and_a_failed_one_stops_the_run(short_data):
    broker = BrokerAdapter(Flapping(), backoff=FAST, venue="paper")
    cfg = load_config(run_config(short_data, None))
    engine = BacktestEngine(cfg, strategy=Momentum("m"), broker=broker)
    capture = engine.add(Capture(VENUE))
    with pytest.raises(ComponentError, match="paper trade_updates: connection failed"):
        engine.run()
    assert [e.reason for e in capture.of_type(AccountReconciled)] == ["start", "reconnect"]
    assert broker.reconnects == 1
    assert [e.state for e in capture.of_type(VenueConnection)] == [
        VenueLink.LOST,
        VenueLink.RESTORED,
        VenueLink.FAILED,
    ]


class History(LoopbackMarketData):
    def __init__(self, batches: list[MarketBatch]) -> None:
        super().__init__()
        self.batches = batches

    async def history(self, symbols, bars):
        return self.batches[:bars]


class BuyFirst(Strategy):
    def on_bar(self, bar) -> None:
        if not self.open_orders and not self.position(bar.symbol):
            self.buy(bar.symbol, 1)


def test_warmup_bars_are_replayed_first_in_order_and_orders_on_them_are_refused(short_data):
    frame = pl.read_parquet(short_data.asset).sort("timestamp", "symbol")
    enum = pl.Enum(sorted(frame["symbol"].unique().to_list()))
    stamps = frame["timestamp"].unique(maintain_order=True).to_list()[:8]
    batches = []
    for ts in stamps:
        rows = frame.filter(pl.col("timestamp") == ts).drop("timestamp")
        rows = rows.with_columns(pl.col("symbol").cast(enum)).filter(pl.col("symbol") == "AAA")
        batches.append(MarketBatch(ts_event=int(ts.timestamp()) * 10**9, frame=rows))
    market = History(batches[:5])
    runtime = Runtime(clock=DrivenClock(), exit_when_idle=False)
    runtime.add(Portfolio())
    runtime.add(BrokerAdapter(PaperExecution(), backoff=FAST))
    runtime.add(RiskManager())
    runtime.add(BuyFirst("b"))
    feed = runtime.add(FeedAdapter(market, warmup=3, backoff=FAST))
    capture = runtime.add(Capture(MARKET, ORDER_EVENTS, VENUE))

    async def produce() -> None:
        while not market._subscribers:
            await anyio.sleep(0.001)
        market.push(batches[2])  # a live bar already covered by the warm-up: dropped
        for batch in batches[5:]:
            market.push(batch)
            await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        runtime.stop()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await runtime.run()

    anyio.run(main)
    seen = [b.ts_event for b in capture.of_type(MarketBatch)]
    assert seen == [b.ts_event for b in batches[:3] + batches[5:]] and feed.dropped == 1
    refused = [e for e in capture.of_type(OrderRejected) if e.rule == "warmup"]
    assert len(refused) == 3  # one per warm-up bar: nothing reached the venue
    links = [e.state for e in capture.of_type(VenueConnection)]
    assert links == [VenueLink.WARMING_UP, VenueLink.CONNECTED]
    assert runtime.clock.now_ns() == batches[-1].ts_event  # driven by the data
