"""Live adapter interfaces: the protocols a market-data and an execution client implement,
and the components that delegate to them.

The graph never talks to a venue directly. :class:`FeedAdapter` (a feed) and
:class:`BrokerAdapter` (a broker) are ordinary components on the bus; each holds one
client and turns bus events into client calls and client reports into bus events:

```
 MarketDataClient ──on_batch──▶ FeedAdapter ──MARKET──▶ ...
 ... ──ORDERS_APPROVED──▶ BrokerAdapter ──submit/cancel/modify──▶ ExecutionClient
                          BrokerAdapter ◀──on_event(fills, order events)──┘
```

- **Connect** at start, retried with :class:`Backoff` (exponential, capped, seeded
  jitter, a bounded number of attempts).
- **Reconcile** at start: the broker adapter asks the client for the account's positions
  and compares them with what the graph expects (flat, unless told otherwise); a mismatch
  fails the start (``on_mismatch="fail"``) or is logged (``"warn"``).
- **Reconnect**: a client call that raises :class:`ConnectionLost` is retried after
  reconnecting with the same backoff. Order ids are idempotency keys: a client must treat
  a second ``submit`` with an id it has seen as a no-op, so a retry never doubles an order.
- A client that needs the market to fill (a simulated or paper venue) also implements
  :class:`MarketDriven`; the broker adapter then hands it every batch at ``EXECUTION``.

``ml4t.backtest.live.clients`` has two real in-process execution clients (the simulated
broker behind this interface, and a paper broker filling against live bars) and a
loopback market-data client.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar, runtime_checkable

import anyio
import msgspec

from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.errors import ComponentError, ML4TError, ProtocolError
from ml4t.backtest.events import (
    CancelOrder,
    Event,
    MarketBatch,
    ModifyOrder,
    OrderFilled,
    SubmitOrder,
)
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED

__all__ = [
    "Backoff",
    "BrokerAdapter",
    "ConnectionLost",
    "ExecutionClient",
    "FeedAdapter",
    "MarketDataClient",
    "MarketDriven",
    "ReconcileError",
    "reconcile",
]

T = TypeVar("T")
QTY_TOLERANCE = 1e-9


class ConnectionLost(ML4TError):
    """A client lost (or could not open) its connection; the call may be retried."""


class ReconcileError(ML4TError):
    """The venue's positions differ from what the graph expects at start."""


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class MarketDataClient(Protocol):
    """A source of market data (a vendor's websocket, a bus bridge, a loopback)."""

    async def connect(self) -> None:
        """Open the session; raise :class:`ConnectionLost` if the venue is unreachable."""
        ...

    async def subscribe(
        self, symbols: Sequence[str], on_batch: Callable[[MarketBatch], None]
    ) -> None:
        """Deliver every batch for ``symbols`` (all if empty) to ``on_batch``, from any task
        of the running event loop, in time order."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class ExecutionClient(Protocol):
    """A venue that takes orders (a broker API, a simulated or paper venue)."""

    async def connect(self, on_event: Callable[[Event], None]) -> None:
        """Open the session. The client reports ``OrderAccepted``/``OrderRejected``/
        ``OrderUpdated``/``OrderCancelled``/``OrderExpired`` and ``OrderFilled`` events by
        calling ``on_event``. Calling ``connect`` again after a loss reconnects."""
        ...

    async def positions(self) -> dict[str, float]:
        """The account's signed positions by symbol (for reconciliation at start)."""
        ...

    async def submit(self, order: SubmitOrder) -> None:
        """Send ``order``. Idempotent on ``order.order_id``: a repeat is ignored."""
        ...

    async def cancel(self, request: CancelOrder) -> None: ...

    async def modify(self, request: ModifyOrder) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class MarketDriven(Protocol):
    """An execution client that fills against the bars it is shown (simulated, paper)."""

    async def on_market(self, batch: MarketBatch) -> None: ...


# --------------------------------------------------------------------------- backoff


class Backoff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exponential backoff: ``initial * factor**n`` seconds, capped at ``maximum``, each
    delay scaled by a random factor in ``[1 - jitter, 1 + jitter]`` (seeded), for at most
    ``attempts`` tries (None: forever)."""

    initial: Annotated[float, msgspec.Meta(ge=0)] = 0.1
    factor: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    maximum: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.1
    attempts: Annotated[int, msgspec.Meta(ge=1)] | None = 8
    seed: int = 0

    def delays(self) -> Iterator[float]:
        """The waits between attempts (one fewer than ``attempts``)."""
        rng = random.Random(self.seed)
        delay = self.initial
        n = 1
        while self.attempts is None or n < self.attempts:
            spread = 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
            yield min(self.maximum, delay) * spread
            delay *= self.factor
            n += 1

    async def retry(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        what: str,
        log: Any = None,
        retry_on: tuple[type[BaseException], ...] = (ConnectionLost, OSError),
    ) -> T:
        """``await call()``, retried after each delay while it raises ``retry_on``;
        :class:`ConnectionLost` naming ``what`` and the attempts once they run out."""
        delays = self.delays()
        attempt = 1
        while True:
            try:
                return await call()
            except retry_on as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ConnectionLost(
                        f"{what} failed after {attempt} attempt(s): {type(exc).__name__}: {exc}"
                    ) from exc
                if log is not None:
                    log.warning("retrying", what=what, attempt=attempt, delay=round(delay, 3))
                await anyio.sleep(delay)
                attempt += 1


def reconcile(
    expected: Mapping[str, float], actual: Mapping[str, float]
) -> dict[str, tuple[float, float]]:
    """Symbols whose positions differ: ``{symbol: (expected, actual)}``."""
    diff: dict[str, tuple[float, float]] = {}
    for symbol in sorted(set(expected) | set(actual)):
        want, have = float(expected.get(symbol, 0.0)), float(actual.get(symbol, 0.0))
        if abs(want - have) > QTY_TOLERANCE * max(1.0, abs(want)):
            diff[symbol] = (want, have)
    return diff


# --------------------------------------------------------------------------- components


class BrokerAdapter(Component):
    """The broker of a graph whose orders go to an :class:`ExecutionClient`.

    Subscribes like the simulated broker (approved requests at ``ROUTING``, market data at
    ``EXECUTION`` for a :class:`MarketDriven` client) and publishes what the client
    reports on ``FILLS`` and ``ORDER_EVENTS``, so the rest of the graph cannot tell which
    venue it trades with.
    """

    def __init__(
        self,
        client: ExecutionClient,
        *,
        expected_positions: Mapping[str, float] | None = None,
        on_mismatch: Literal["fail", "warn"] = "fail",
        backoff: Backoff | None = None,
        name: str = "broker",
    ) -> None:
        super().__init__(name)
        if not isinstance(client, ExecutionClient):
            raise ProtocolError(f"{client!r} does not implement the ExecutionClient protocol")
        self.client = client
        self.expected = dict(expected_positions or {})
        self.on_mismatch = on_mismatch
        self.backoff = backoff or Backoff()
        self.market_driven = isinstance(client, MarketDriven)
        self.reconnects = 0
        self.mismatches: dict[str, tuple[float, float]] = {}

    async def on_start(self) -> None:
        await self._connect()
        held = await self._call(self.client.positions, "positions")
        self.mismatches = reconcile(self.expected, held)
        if self.mismatches:
            lines = ", ".join(
                f"{s}: expected {e:g}, venue has {a:g}" for s, (e, a) in self.mismatches.items()
            )
            if self.on_mismatch == "fail":
                raise ReconcileError(
                    f"positions at the venue differ from the graph's: {lines}; flatten the "
                    "account, pass expected_positions, or use on_mismatch='warn'"
                )
            self.log.warning("positions_mismatch", mismatches=lines)

    async def on_stop(self) -> None:
        await self.client.close()

    def _report(self, event: Event) -> None:
        if isinstance(event, OrderFilled):
            self.publish(FILLS, event)
        else:
            self.publish(ORDER_EVENTS, event)

    async def _connect(self) -> None:
        await self.backoff.retry(
            lambda: self.client.connect(self._report), what=f"{self.name}: connect", log=self.log
        )

    async def _call(self, call: Callable[..., Awaitable[T]], what: str, *args: Any) -> T:
        """A client call; on ConnectionLost reconnect (with backoff) and call again."""
        try:
            return await call(*args)
        except ConnectionLost as exc:
            self.log.warning("connection_lost", during=what, error=str(exc))
            self.reconnects += 1
            await self._connect()
            return await call(*args)

    @on(MARKET, phase=Phase.EXECUTION)
    async def _on_market(self, batch: MarketBatch) -> None:
        if self.market_driven:
            await self._call(self.client.on_market, "on_market", batch)  # type: ignore[attr-defined]

    @on(ORDERS_APPROVED, phase=Phase.ROUTING)
    async def _on_request(self, request: SubmitOrder | CancelOrder | ModifyOrder) -> None:
        if isinstance(request, SubmitOrder):
            await self._call(self.client.submit, "submit", request)
        elif isinstance(request, CancelOrder):
            await self._call(self.client.cancel, "cancel", request)
        else:
            await self._call(self.client.modify, "modify", request)


class FeedAdapter(Component):
    """The feed of a graph whose market data comes from a :class:`MarketDataClient`.

    Connects (with backoff) and subscribes at start; each batch the client delivers is
    published on ``MARKET`` as it arrives. Run it on a wall clock.
    """

    def __init__(
        self,
        client: MarketDataClient,
        *,
        symbols: Sequence[str] = (),
        backoff: Backoff | None = None,
        name: str = "feed",
    ) -> None:
        super().__init__(name)
        if not isinstance(client, MarketDataClient):
            raise ProtocolError(f"{client!r} does not implement the MarketDataClient protocol")
        self.client = client
        self.symbols = tuple(symbols)
        self.backoff = backoff or Backoff()
        self.batches = 0

    async def on_start(self) -> None:
        if self.clock.is_simulated:
            raise ComponentError(
                f"{self.name}: a live feed needs a wall clock (its data arrives in real "
                "time); run the graph on WallClock",
                component=self.name,
            )
        await self.backoff.retry(self.client.connect, what=f"{self.name}: connect", log=self.log)
        await self.backoff.retry(
            lambda: self.client.subscribe(self.symbols, self._on_batch),
            what=f"{self.name}: subscribe",
            log=self.log,
        )

    async def on_stop(self) -> None:
        await self.client.close()

    def _on_batch(self, batch: MarketBatch) -> None:
        self.batches += 1
        self.publish(MARKET, batch)
