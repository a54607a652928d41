"""Helpers shared by the execution, portfolio, risk and property tests: market batches
built by hand, orders, and a broker run over a scripted bar sequence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from ml4t.backtest import (
    Event,
    MarketBatch,
    OrderFilled,
    OrderSide,
    OrderType,
    SubmitOrder,
)
from ml4t.backtest._time import NS_PER_DAY, NS_PER_MINUTE, to_ns
from ml4t.backtest.component import Component
from ml4t.backtest.execution import BrokerConfig, SimulatedBroker
from ml4t.backtest.testing import Capture, Script, run_components
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED, Topic

UNIVERSE = ("AAA", "BBB", "CCC")
DAY0 = to_ns("2024-01-02T21:00:00+00:00")  # a daily bar, labelled at its close
MIN0 = to_ns("2024-01-02T14:31:00+00:00")  # a minute bar

Bar = tuple[float, float, float, float, float]  # open, high, low, close, volume


def day(i: int) -> int:
    return DAY0 + i * NS_PER_DAY


def minute(i: int) -> int:
    return MIN0 + i * NS_PER_MINUTE


def frame(
    rows: dict[str, Bar], universe: Sequence[str] = UNIVERSE, **extra: dict[str, float]
) -> pl.DataFrame:
    """A market frame: one row per symbol in ``rows`` (sorted), ``symbol`` as the
    universe's Enum, OHLCV as Float64, then any ``extra`` column (symbol -> value)."""
    symbols = sorted(rows)
    data: dict[str, Any] = {"symbol": pl.Series(symbols, dtype=pl.Enum(sorted(universe)))}
    for i, name in enumerate(("open", "high", "low", "close", "volume")):
        data[name] = pl.Series([float(rows[s][i]) for s in symbols], dtype=pl.Float64)
    for name, values in extra.items():
        data[name] = pl.Series([values.get(s) for s in symbols], dtype=pl.Float64)
    return pl.DataFrame(data)


def batch(
    ts: int, rows: dict[str, Bar], universe: Sequence[str] = UNIVERSE, **extra: Any
) -> MarketBatch:
    return MarketBatch(ts_event=ts, ts_init=ts, frame=frame(rows, universe, **extra))


def flat(price: float, volume: float = 1_000_000.0) -> Bar:
    return (price, price, price, price, volume)


def order(
    order_id: str,
    side: str,
    quantity: float,
    symbol: str = "AAA",
    kind: str = "market",
    strategy_id: str = "s1",
    **fields: Any,
) -> SubmitOrder:
    return SubmitOrder(
        ts_event=0,
        order_id=order_id,
        strategy_id=strategy_id,
        symbol=symbol,
        side=OrderSide(side),
        quantity=quantity,
        order_type=OrderType(kind),
        **fields,
    )


def run(
    steps: Iterable[tuple[int, Topic[Any], Event]],
    *components: Component,
    topics: Sequence[Topic[Any]] = (FILLS, ORDER_EVENTS),
    strict: bool = True,
) -> Capture:
    capture = Capture(*topics)
    run_components(*components, Script(list(steps)), capture, strict=strict)
    return capture


def simulate(
    bars: Sequence[Bar],
    requests: Sequence[Event],
    config: BrokerConfig | None = None,
    *,
    times: Callable[[int], int] = day,
    calendar: Any = None,
    strict: bool = True,
    later: Sequence[tuple[int, Event]] = (),
    symbol: str = "AAA",
) -> tuple[Capture, SimulatedBroker]:
    """Bar 0 of ``symbol``, then ``requests`` (approved, so accepted at bar 0's time and
    eligible from bar 1), then bars 1..n; ``later`` adds ``(bar index, request)`` routed
    after that bar."""
    steps: list[tuple[int, Topic[Any], Event]] = []
    extra = {i: [r for j, r in later if j == i] for i in range(len(bars))}
    for i, bar in enumerate(bars):
        steps.append((times(i), MARKET, batch(times(i), {symbol: bar})))
        if i == 0:
            steps.extend((times(0), ORDERS_APPROVED, r) for r in requests)
        steps.extend((times(i), ORDERS_APPROVED, r) for r in extra[i])
    broker = SimulatedBroker(config, calendar=calendar)
    return run(steps, broker, strict=strict), broker


def fills_of(capture: Capture, times: Callable[[int], int] = day) -> list[tuple[int, float, float]]:
    """``(bar index, quantity, price)`` of every fill."""
    index: dict[int, int] = {}
    for i in range(10_000):
        try:
            index[times(i)] = i
        except IndexError:
            break
    fills = capture.of_type(OrderFilled)
    return [(index[f.ts_event], f.quantity, round(f.price, 10)) for f in fills]


__all__ = [
    "DAY0",
    "MIN0",
    "UNIVERSE",
    "Bar",
    "batch",
    "day",
    "fills_of",
    "flat",
    "frame",
    "minute",
    "order",
    "run",
    "simulate",
    "table",
]


def table(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Parametrize rows whose first item is the case id."""
    import pytest

    return [pytest.param(*row[1:], id=row[0]) for row in rows]
