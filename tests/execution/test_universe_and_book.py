"""Symbol codes and the order book's vectorised prefilter."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from ml4t.backtest import MarketBatch, OrderSide, OrderType, TimeInForce
from ml4t.backtest._universe import Universe, frame_codes, moved
from ml4t.backtest.codec import Codec
from ml4t.backtest.execution import BrokerConfig, Order, OrderBook, SimulatedBroker
from ml4t.backtest.portfolio import Portfolio
from ml4t.backtest.topics import FILLS, MARKET
from tests.execution._market import batch, day, flat, run

INF = math.inf


@pytest.mark.parametrize("n_categories", [3, 300, 70_000])  # u8, u16 and u32 indices
def test_batch_codes_match_the_physical_codes(n_categories) -> None:
    universe = [f"S{i:06d}" for i in range(n_categories)]
    picked = universe[::7][:40] + universe[-3:]
    big = pl.DataFrame({"symbol": pl.Series(picked * 3, dtype=pl.Enum(universe))})
    big = big.with_columns(
        pl.lit(1.0).alias(name) for name in ("open", "high", "low", "close", "volume")
    )
    physical = big["symbol"].to_physical().to_numpy().astype("<i4")
    for lo, n in ((0, big.height), (5, 20), (len(picked), len(picked)), (0, 0)):
        frame = big.slice(lo, n)
        expected = frame["symbol"].to_physical().to_numpy().tolist()
        assert frame_codes(frame).tolist() == expected
        carried = MarketBatch(ts_event=1, frame=frame, codes=physical[lo : lo + n].tobytes())
        bare = MarketBatch(ts_event=1, frame=frame)
        assert carried.symbol_codes().tolist() == bare.symbol_codes().tolist() == expected
        # the codes cross the wire with the batch
        assert Codec().roundtrip(carried).symbol_codes().tolist() == expected


def test_batch_codes_of_a_multi_chunk_frame() -> None:
    dtype = pl.Enum(["AAA", "BBB", "CCC"])
    a = pl.DataFrame({"symbol": pl.Series(["AAA", "CCC"], dtype=dtype)})
    b = pl.DataFrame({"symbol": pl.Series(["BBB"], dtype=dtype)})
    frame = pl.concat([a, b], rechunk=False)
    assert frame["symbol"].n_chunks() == 2
    assert frame_codes(frame).tolist() == [0, 2, 1]
    assert MarketBatch(ts_event=1, frame=frame).symbol_codes().tolist() == [0, 2, 1]


def test_universe_aligns_to_the_data_by_name() -> None:
    early = Universe(["ZZZ", "BBB"])  # built from events before any data
    merged, mapping = early.aligned_to(Universe(["AAA", "BBB", "CCC"]))
    assert merged.symbols == ["AAA", "BBB", "CCC", "ZZZ"]
    assert mapping.tolist() == [3, 1]
    assert moved(np.array([5.0, 7.0]), mapping, 4, 0.0).tolist() == [0.0, 7.0, 0.0, 5.0]


def test_portfolio_moves_early_positions_to_the_datas_codes() -> None:
    from tests.portfolio.test_accounting import fill

    portfolio = Portfolio(symbols=["CCC", "AAA"])  # not the data's order
    steps = [
        (day(0), FILLS, fill(day(0), "buy", 10, 30, symbol="CCC")),
        (day(1), MARKET, batch(day(1), {"AAA": flat(10), "CCC": flat(33)})),
    ]
    run(steps, portfolio)
    assert portfolio.position("CCC") == 10.0
    assert portfolio.equity == pytest.approx(100_000 + 30)


def _order(kind: OrderType, side: OrderSide, **fields) -> Order:
    return Order(
        order_id="o",
        strategy_id="s",
        symbol="AAA",
        code=0,
        side=side,
        quantity=1.0,
        order_type=kind,
        accepted_ns=0,
        **fields,
    )


WINDOWS = [
    ("market", _order(OrderType.MARKET, OrderSide.BUY), (INF, -INF)),
    ("buy_limit", _order(OrderType.LIMIT, OrderSide.BUY, limit_price=99.0), (99.0, INF)),
    ("sell_limit", _order(OrderType.LIMIT, OrderSide.SELL, limit_price=101.0), (-INF, 101.0)),
    ("buy_stop", _order(OrderType.STOP, OrderSide.BUY, stop_price=105.0), (-INF, 105.0)),
    ("sell_stop", _order(OrderType.STOP, OrderSide.SELL, stop_price=95.0), (95.0, INF)),
    (
        "ioc_limit_is_always_looked_at",
        _order(OrderType.LIMIT, OrderSide.BUY, limit_price=99.0, tif=TimeInForce.IOC),
        (INF, -INF),
    ),
    (
        "untriggered_stop_limit_watches_its_stop",
        _order(OrderType.STOP_LIMIT, OrderSide.BUY, stop_price=105.0, limit_price=106.0),
        (-INF, 105.0),
    ),
    (
        "new_trailing_stop_is_always_looked_at",
        _order(OrderType.TRAILING_STOP, OrderSide.SELL, trail_amount=5.0),
        (INF, -INF),
    ),
]


@pytest.mark.parametrize(("order", "window"), [pytest.param(*w[1:], id=w[0]) for w in WINDOWS])
def test_order_window(order, window) -> None:
    assert order.window() == window


def test_placed_trailing_stop_watches_its_stop_and_its_reference() -> None:
    order = _order(OrderType.TRAILING_STOP, OrderSide.SELL, trail_amount=5.0)
    order.extreme, order.stop_price = 110.0, 105.0
    assert order.window() == (105.0, 110.0)


def test_candidates_are_the_symbols_a_bar_can_reach() -> None:
    book = OrderBook()
    for i, (code, level) in enumerate([(0, 99.0), (1, 50.0), (2, 10.0)]):
        book.add(
            Order(
                order_id=f"o{i}",
                strategy_id="s",
                symbol="X",
                code=code,
                side=OrderSide.BUY,
                quantity=1.0,
                order_type=OrderType.LIMIT,
                accepted_ns=0,
                limit_price=level,
            )
        )
    low = np.array([98.0, 51.0, np.nan])  # symbol 2 has no bar
    high = np.array([100.0, 52.0, np.nan])
    assert book.candidates(low, high).tolist() == [0]
    book.close(book.get("o0"), "cancelled", 1)
    assert book.candidates(low, high).tolist() == []


def test_a_batch_with_no_open_orders_extracts_nothing() -> None:
    broker = SimulatedBroker(BrokerConfig())
    run([(day(i), MARKET, batch(day(i), {"AAA": flat(100)})) for i in range(3)], broker)
    assert broker._batch._columns is None and broker._batch._batch_no == 0
