"""Live adapter interfaces: the simulated broker and a paper broker behind the execution
client protocol, reconciliation, reconnect with backoff, and a live feed."""

from __future__ import annotations

import anyio
import polars as pl
import pytest

from ml4t.backtest import (
    BacktestEngine,
    ComponentError,
    MarketBatch,
    OrderFilled,
    OrderSide,
    Portfolio,
    RiskManager,
    Runtime,
    SubmitOrder,
    WallClock,
    load_config,
)
from ml4t.backtest.live import (
    Backoff,
    BrokerAdapter,
    ConnectionLost,
    ExecutionClient,
    FeedAdapter,
    LoopbackMarketData,
    MarketDataClient,
    MarketDriven,
    PaperExecution,
    SimulatedExecution,
    reconcile,
)
from ml4t.backtest.testing import Capture
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS
from tests.live.conftest import run_config
from tests.live.strategies import Momentum

FAST = Backoff(initial=0.001, maximum=0.01, attempts=5)


def _run(ds, *, broker=None):
    cfg = load_config(run_config(ds, None))
    return BacktestEngine(cfg, strategy=Momentum("m"), broker=broker).run(), cfg


def test_clients_implement_the_protocols():
    for client in (SimulatedExecution(), PaperExecution()):
        assert isinstance(client, ExecutionClient) and isinstance(client, MarketDriven)
    assert isinstance(LoopbackMarketData(), MarketDataClient)
    with pytest.raises(TypeError, match="ExecutionClient protocol"):
        BrokerAdapter(object())  # type: ignore[arg-type]


def test_simulated_broker_behind_the_adapter_trades_like_the_simulated_broker(short_data):
    reference, cfg = _run(short_data)
    adapted, _ = _run(short_data, broker=BrokerAdapter(SimulatedExecution(cfg.execution)))
    assert reference.trades.height >= 20
    assert adapted.trades.equals(reference.trades)
    assert adapted.orders.equals(reference.orders)


def test_paper_broker_fills_market_orders_at_the_next_open_like_the_simulated_broker(short_data):
    reference, cfg = _run(short_data)
    paper, _ = _run(short_data, broker=BrokerAdapter(PaperExecution(cfg.execution)))
    assert paper.trades.equals(reference.trades)


class Flaky(SimulatedExecution):
    """Refuses the first two connects; loses the connection right after the 3rd submit
    reached the venue (so the adapter must retry a submit the venue already has)."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.connects = 0
        self.submits = 0

    async def connect(self, on_event) -> None:
        self.connects += 1
        if self.connects <= 2:
            raise ConnectionLost(f"refused #{self.connects}")
        await super().connect(on_event)

    async def submit(self, order: SubmitOrder) -> None:
        self.submits += 1
        await super().submit(order)
        if self.submits == 3:
            self.connected = False
            raise ConnectionLost("connection reset after send")


def test_adapter_reconnects_with_backoff_and_a_retried_submit_is_not_duplicated(short_data):
    reference, cfg = _run(short_data)
    client = Flaky(cfg.execution)
    adapter = BrokerAdapter(client, backoff=FAST)
    results, _ = _run(short_data, broker=adapter)
    assert client.connects == 4  # two refused, one at start, one after the reset
    assert adapter.reconnects == 1
    assert results.trades.equals(reference.trades)
    assert results.orders["order_id"].is_unique().all()
    assert results.orders.height == reference.orders.height


class Holding(SimulatedExecution):
    async def positions(self) -> dict[str, float]:
        return {"AAA": 5.0}


def test_positions_are_reconciled_at_start(short_data):
    cfg = load_config(run_config(short_data, None))
    with pytest.raises(ComponentError, match=r"AAA: expected 0, venue has 5.*flatten"):
        _run(short_data, broker=BrokerAdapter(Holding(cfg.execution)))
    adapter = BrokerAdapter(Holding(cfg.execution), on_mismatch="warn")
    _run(short_data, broker=adapter)
    assert adapter.mismatches == {"AAA": (0.0, 5.0)}
    assert reconcile({"AAA": 5.0}, {"AAA": 5.0}) == {}


def test_backoff_grows_is_capped_and_gives_up_naming_what_failed():
    delays = list(Backoff(initial=1, factor=2, maximum=5, jitter=0, attempts=6).delays())
    assert delays == [1, 2, 4, 5, 5]
    jittered = list(Backoff(initial=1, jitter=0.5, attempts=50, seed=3).delays())
    assert all(0.5 <= d / min(10, 2**i) <= 1.5 for i, d in enumerate(jittered))
    assert jittered == list(Backoff(initial=1, jitter=0.5, attempts=50, seed=3).delays())
    calls = 0

    async def never() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionLost("down")

    with pytest.raises(ConnectionLost, match="venue: connect failed after 5 attempt"):
        anyio.run(lambda: FAST.retry(never, what="venue: connect"))
    assert calls == 5


def test_paper_broker_fills_a_limit_order_when_a_live_bar_reaches_it():
    events = []
    venue = PaperExecution()

    def bar(ts: int, o: float, h: float, lo: float) -> MarketBatch:
        frame = pl.DataFrame(
            {
                "symbol": ["XYZ"],
                "open": [o],
                "high": [h],
                "low": [lo],
                "close": [o],
                "volume": [1e6],
            }
        )
        return MarketBatch(ts_event=ts, frame=frame)

    async def main() -> None:
        await venue.connect(events.append)
        await venue.on_market(bar(1, 100, 101, 99))
        order = SubmitOrder(
            ts_event=1, order_id="o1", strategy_id="s", symbol="XYZ", side=OrderSide.BUY,
            quantity=3, order_type="limit", limit_price=97.5,
        )  # fmt: skip
        await venue.submit(order)
        await venue.submit(order)  # idempotent
        await venue.on_market(bar(2, 99, 100, 98))  # does not reach 97.5
        await venue.on_market(bar(3, 98, 99, 97))  # reaches it: fills at the limit
        assert await venue.positions() == {"XYZ": 3.0}

    anyio.run(main)
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderFilled"]
    assert fills[0].ts_event == 3 and fills[0].price == 97.5 and fills[0].quantity == 3


def test_live_feed_and_paper_broker_trade_on_bars_as_they_arrive(short_data):
    """A wall-clock graph: bars pushed in real time through a market-data client; the
    paper broker fills each market order at the open of the next live bar."""
    frame = pl.read_parquet(short_data.asset).sort("timestamp", "symbol")
    stamps = frame["timestamp"].unique(maintain_order=True).to_list()[:120]
    market = LoopbackMarketData()
    runtime = Runtime(clock=WallClock(), exit_when_idle=False)
    runtime.add(Portfolio())
    runtime.add(BrokerAdapter(PaperExecution(), backoff=FAST))
    runtime.add(RiskManager())
    runtime.add(Momentum("m"))
    runtime.add(FeedAdapter(market, backoff=FAST))
    capture = runtime.add(Capture(MARKET, FILLS, ORDER_EVENTS))
    enum = pl.Enum(sorted(frame["symbol"].unique().to_list()))

    async def produce() -> None:
        while not market._subscribers:
            await anyio.sleep(0.001)
        for ts in stamps:
            rows = frame.filter(pl.col("timestamp") == ts).drop("timestamp")
            now = runtime.clock.now_ns()
            rows = rows.with_columns(pl.col("symbol").cast(enum))
            market.push(MarketBatch(ts_event=now, ts_init=now, frame=rows))
            await anyio.sleep(0.002)
        await anyio.sleep(0.05)
        runtime.stop()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            await runtime.run()

    anyio.run(main)
    batches = {b.ts_event: b for b in capture.of_type(MarketBatch)}
    fills = capture.of_type(OrderFilled)
    assert len(batches) == len(stamps) and len(fills) >= 5
    for fill in fills:
        row = batches[fill.ts_event].frame.filter(pl.col("symbol") == fill.symbol)
        assert fill.price == pytest.approx(row["open"][0])
