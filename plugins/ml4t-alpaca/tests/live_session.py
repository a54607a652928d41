"""A live graph against the stand-in, played minute by minute: the harness the tests
(and an end-to-end comparison with a backtest) use.

:func:`live_graph` builds the standard roles on a :class:`~ml4t.backtest.live.DrivenClock`
(the batches' times are the graph's *now*, so an order placed on bar t is stamped t as
in a backtest): a portfolio, an :class:`~ml4t_alpaca.AlpacaBroker`-like broker adapter
over :class:`~ml4t_alpaca.AlpacaExecution`, a risk manager, the strategies, a
:class:`~ml4t_alpaca.AlpacaFeed`-like feed adapter over
:class:`~ml4t_alpaca.AlpacaMarketData`, and a capture of every topic.
:func:`play` runs it while the stand-in plays its minutes, waiting after each minute
until the graph is quiescent, so the orders a bar caused reach the venue before the
next minute is played (as the next bar's open follows the orders in a backtest).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from alpaca_standin import AlpacaStandIn
from ml4t_alpaca import AlpacaConfig, AlpacaExecution, AlpacaMarketData, Credentials

from ml4t.backtest import (
    Portfolio,
    PortfolioConfig,
    RiskManager,
    Runtime,
    StrategyBase,
    VenueOrder,
)
from ml4t.backtest.live import (
    Backoff,
    BrokerAdapter,
    DrivenClock,
    ExecutionClient,
    FeedAdapter,
)
from ml4t.backtest.testing import Capture
from ml4t.backtest.topics import FILLS, ORDER_EVENTS, ORDER_REQUESTS, POSITIONS, SESSION, VENUE

FAST = Backoff(initial=0.02, maximum=0.2, attempts=30, seed=1)


@dataclass
class LiveGraph:
    runtime: Runtime
    broker: BrokerAdapter
    feed: FeedAdapter
    execution: AlpacaExecution
    market: AlpacaMarketData
    portfolio: Portfolio
    capture: Capture


def live_graph(
    standin: AlpacaStandIn,
    strategies: Sequence[StrategyBase],
    credentials: Credentials,
    *,
    config: AlpacaConfig | None = None,
    symbols: Sequence[str] | None = None,
    on_mismatch: str = "adopt",
    expected_positions: dict[str, float] | None = None,
    expected_orders: Sequence[VenueOrder] = (),
    warmup: int = 0,
    initial_cash: float = 100_000.0,
    venue: ExecutionClient | None = None,
) -> LiveGraph:
    """The graph; ``venue`` replaces the Alpaca execution client (forward testing: the
    live data with the simulated broker, ``SimulatedExecution``)."""
    config = config or standin.config(session="test", backoff=FAST)
    universe = tuple(
        symbols or sorted({row["symbol"] for _, rows in standin.minutes for row in rows})
    )
    runtime = Runtime(clock=DrivenClock(), exit_when_idle=False, strict=True)
    portfolio = runtime.add(Portfolio(PortfolioConfig(initial_cash=initial_cash)))
    execution = AlpacaExecution(config, credentials=credentials)
    broker = runtime.add(
        BrokerAdapter(
            venue or execution,
            on_mismatch=on_mismatch,  # type: ignore[arg-type]
            expected_positions=expected_positions,
            expected_orders=expected_orders,
            backoff=FAST,
            venue=config.venue,
        )
    )
    runtime.add(RiskManager())
    for strategy in strategies:
        runtime.add(strategy)
    capture = runtime.add(Capture(SESSION, VENUE, ORDER_REQUESTS, ORDER_EVENTS, FILLS, POSITIONS))
    market = AlpacaMarketData(config, symbols=universe, credentials=credentials)
    feed = runtime.add(
        FeedAdapter(
            market,
            symbols=universe,
            session=market.session_started(),
            warmup=warmup,
            backoff=FAST,
            venue=config.venue,
        )
    )
    return LiveGraph(runtime, broker, feed, execution, market, portfolio, capture)


async def quiescent(graph: LiveGraph, batches: int, *, timeout: float = 10.0) -> None:
    """Until the feed has published ``batches`` and the graph has nothing pending for a
    little while (orders sent, news handled)."""
    with anyio.fail_after(timeout):
        calm = 0
        while calm < 3:
            await anyio.sleep(0.01)
            busy = graph.feed.batches < batches or graph.runtime.bus.dispatcher.pending
            calm = 0 if busy else calm + 1


async def play(
    graph: LiveGraph,
    standin: AlpacaStandIn,
    minutes: int | None = None,
    *,
    between: Callable[[int], Awaitable[Any]] | None = None,
    linger: float = 0.1,
) -> None:
    """Run ``graph`` while ``standin`` plays ``minutes`` (all left: None); ``between(i)``
    runs after minute i (a fault to inject). The graph stops afterwards."""
    count = standin.remaining if minutes is None else minutes
    runtime = graph.runtime

    async def drive() -> None:
        with anyio.fail_after(10):
            while not standin._data_sockets or graph.feed._held is not None:
                await anyio.sleep(0.01)
        start = graph.feed.batches
        for i in range(count):
            await standin.astep()
            await quiescent(graph, start + i + 1)
            if between is not None:
                await between(i)
        await anyio.sleep(linger)
        runtime.stop()

    async with anyio.create_task_group() as tg:
        tg.start_soon(drive)
        await runtime.run()


def run(
    graph: LiveGraph, standin: AlpacaStandIn, minutes: int | None = None, **kwargs: Any
) -> None:
    anyio.run(lambda: play(graph, standin, minutes, **kwargs))
