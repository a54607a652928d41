"""DelayBroker: market orders fill at the open latency_bars bars after the next bar."""

from __future__ import annotations

import msgspec
import polars as pl
import pytest
from ml4t_delay_broker import DelayBroker

from ml4t.backtest import (
    BrokerConfig,
    CancelOrder,
    ConfigError,
    MarketBatch,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderType,
    SubmitOrder,
)
from ml4t.backtest.testing import Capture, Script, run_components
from ml4t.backtest.topics import FILLS, MARKET, ORDER_EVENTS, ORDERS_APPROVED

UNIVERSE = pl.Enum(["AAA", "BBB"])
MIN = 60_000_000_000


def _bar(i: int, open_: float, symbols: tuple[str, ...] = ("AAA", "BBB")) -> MarketBatch:
    n = len(symbols)
    frame = pl.DataFrame(
        {
            "symbol": pl.Series(symbols, dtype=UNIVERSE),
            "open": [open_] * n,
            "high": [open_ + 1] * n,
            "low": [open_ - 1] * n,
            "close": [open_] * n,
            "volume": [1000.0] * n,
        }
    )
    return MarketBatch(ts_event=i * MIN, ts_init=i * MIN, frame=frame)


def _order(order_id: str = "o1", **kw: object) -> SubmitOrder:
    fields = dict(order_id=order_id, strategy_id="s", symbol="AAA", side=OrderSide.BUY)
    return SubmitOrder(ts_event=0, ts_init=0, quantity=10.0, **{**fields, **kw})  # type: ignore[arg-type]


def _run(broker: DelayBroker, script: list) -> Capture:
    capture = Capture(ORDER_EVENTS, FILLS)
    run_components(broker, Script(script), capture)
    return capture


def test_latency_two_fills_at_the_open_of_the_third_bar_after_acceptance() -> None:
    commission = {"model": "PerShareCommission", "params": {"cost_per_share": 0.01, "minimum": 1}}
    broker = DelayBroker(msgspec.convert({"commission": commission}, BrokerConfig), latency_bars=2)
    script = [(0, MARKET, _bar(0, 100.0)), (0, ORDERS_APPROVED, _order())]
    script += [(i * MIN, MARKET, _bar(i, 100.0 + i)) for i in (1, 2, 3, 4)]
    capture = _run(broker, script)
    assert [type(e) for e in capture.events] == [OrderAccepted, OrderFilled]
    fill = capture.of_type(OrderFilled)[0]
    # accepted at bar 0; bars 1 and 2 are the latency; bar 3's open is 103
    assert (fill.ts_event, fill.price, fill.quantity) == (3 * MIN, 103.0, 10.0)
    assert fill.commission == 1.0  # 10 shares * 0.01 = 0.10, raised to the 1.0 minimum


def test_zero_latency_fills_at_the_next_bars_open_and_other_symbols_do_not_count() -> None:
    script = [(0, MARKET, _bar(0, 50.0)), (0, ORDERS_APPROVED, _order())]
    script += [(MIN, MARKET, _bar(1, 51.0, ("BBB",))), (2 * MIN, MARKET, _bar(2, 52.0))]
    fill = _run(DelayBroker(latency_bars=0), script).of_type(OrderFilled)[0]
    assert (fill.ts_event, fill.price) == (2 * MIN, 52.0)  # bar 1 had no AAA row


def test_cancel_while_waiting_cancels_and_nothing_fills() -> None:
    script = [(0, MARKET, _bar(0, 10.0)), (0, ORDERS_APPROVED, _order())]
    script += [
        (MIN, ORDERS_APPROVED, CancelOrder(ts_event=0, ts_init=0, order_id="o1", strategy_id="s"))
    ]
    script += [(i * MIN, MARKET, _bar(i, 10.0)) for i in (2, 3, 4)]
    capture = _run(DelayBroker(latency_bars=1), script)
    assert [type(e) for e in capture.events] == [OrderAccepted, OrderCancelled]


def test_limit_order_and_unknown_cancel_are_rejected_naming_the_rule() -> None:
    limit = _order("o2", order_type=OrderType.LIMIT, limit_price=9.0)
    unknown = CancelOrder(ts_event=0, ts_init=0, order_id="nope", strategy_id="s")
    script = [
        (0, MARKET, _bar(0, 10.0)),
        (0, ORDERS_APPROVED, limit),
        (0, ORDERS_APPROVED, unknown),
    ]
    rejected = _run(DelayBroker(), script).of_type(OrderRejected)
    assert [(r.order_id, r.rule, r.request.value) for r in rejected] == [
        ("o2", "delay_broker.unsupported", "submit"),
        ("nope", "delay_broker.unknown_order", "cancel"),
    ]
    assert "only market orders" in rejected[0].reason


def test_negative_latency_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="latency_bars must be a whole number >= 0, got -1"):
        DelayBroker(latency_bars=-1)
