"""Requests that reach the bus without the order helpers (a plugin, another component):
validated at the first component that receives them, recorded whatever they carry, and
never the cause of lost results."""

from __future__ import annotations

import msgspec
import polars as pl
import pytest

from ml4t.backtest import BacktestEngine, ComponentError, MarketBatch, OrderSide, SubmitOrder
from ml4t.backtest.bus import Phase
from ml4t.backtest.component import Component, on
from ml4t.backtest.config import load_config
from ml4t.backtest.errors import BusError
from ml4t.backtest.topics import MARKET, ORDER_REQUESTS

from ._bars import Scripted, flat, frame, run_script

TABLES = (
    "fills",
    "orders",
    "order_history",
    "portfolio",
    "trades",
    "cash_flows",
    "daily_returns",
    "daily_positions",
)


def _request(**fields: object) -> SubmitOrder:
    good = SubmitOrder(
        ts_event=0,
        order_id="raw-1",
        strategy_id="plugin",
        symbol="AAA",
        side=OrderSide.BUY,
        quantity=1.0,
    )
    return msgspec.structs.replace(good, **fields)


class Publisher(Component):
    """Publishes ``requests`` at the first bar, as a plugin would."""

    def __init__(self, name: str, requests: list[SubmitOrder]) -> None:
        super().__init__(name)
        self.requests = requests
        self.sent = False

    @on(MARKET, phase=Phase.STRATEGY)
    def _on_market(self, batch: MarketBatch) -> None:
        if not self.sent:
            self.sent = True
            for request in self.requests:
                self.publish(
                    ORDER_REQUESTS, msgspec.structs.replace(request, ts_event=batch.ts_event)
                )


def _engine(tmp_path, *extra: Component, strategy: Scripted | None = None) -> BacktestEngine:
    config = load_config({"reporting": {"output_dir": str(tmp_path / "out")}})
    engine = BacktestEngine(
        config, strategy=strategy or Scripted({}), asset=frame({"AAA": [flat(100)] * 3})
    )
    for component in extra:
        engine.add(component)
    return engine


def test_malformed_requests_are_rejected_and_every_table_is_written(tmp_path) -> None:
    bad = [
        _request(order_id="raw-1", symbol=123),
        _request(order_id="raw-2", quantity="ten"),
        _request(order_id="raw-3", side="hold"),
        _request(order_id="raw-4", time_in_force="week", limit_price=float("nan")),
        _request(order_id="raw-5", quantity=1e-12),
    ]
    results = _engine(tmp_path, Publisher("plugin", bad)).run()
    assert results.complete
    for name in TABLES:
        assert (tmp_path / "out" / f"{name}.parquet").exists(), name
    orders = results.orders.sort("order_id")
    assert orders["order_id"].to_list() == [f"raw-{i}" for i in range(1, 6)]
    assert set(orders["status"].to_list()) == {"rejected"}
    assert set(orders["reject_rule"].to_list()) == {"invalid_order"}
    reasons = dict(zip(orders["order_id"], orders["reject_reason"], strict=True))
    assert reasons["raw-1"] == "symbol must be a string, got 123"
    assert reasons["raw-2"].startswith("quantity must be a number, got 'ten'")
    assert reasons["raw-3"] == "side must be one of ['buy', 'sell'], got 'hold'"
    assert reasons["raw-4"].startswith("time_in_force must be one of")
    assert "below the minimum order quantity 1e-08" in reasons["raw-5"]
    assert results.fills.height == 0


def test_malformed_strategy_id_is_recorded_as_text(tmp_path) -> None:
    class Relay(Publisher):
        relay = True

    results = _engine(tmp_path, Relay("relay", [_request(strategy_id=7)])).run()
    (row,) = results.orders.to_dicts()
    assert (row["strategy_id"], row["status"]) == ("7", "rejected")
    assert row["reject_reason"] == "strategy_id must be a string, got 7"


def test_a_request_naming_another_strategy_is_refused_at_the_publish_call(tmp_path) -> None:
    forged = _request(strategy_id="strategy", quantity=1_000.0)
    engine = _engine(tmp_path, Publisher("intruder", [forged]))
    with pytest.raises(ComponentError, match="component 'intruder' failed") as info:
        engine.run()
    cause = info.value.__cause__
    assert isinstance(cause, BusError)
    assert "cannot publish SubmitOrder on 'orders.requested' with strategy_id='strategy'" in str(
        cause
    )
    orders = pl.read_parquet(tmp_path / "out" / "orders.parquet")
    assert orders.height == 0  # nothing reached the risk manager or the broker
    fills = pl.read_parquet(tmp_path / "out" / "fills.parquet")
    assert fills.height == 0


def test_orders_sent_in_on_start_are_recorded() -> None:
    class BuysAtStart(Scripted):
        def on_start(self) -> None:
            self.buy("AAA", 1)

    strategy = BuysAtStart({})
    engine = BacktestEngine(
        load_config({"reporting": {"output_dir": None}}),
        strategy=strategy,
        asset=frame({"AAA": [flat(100)] * 3}),
    )
    results = engine.run()
    (rejected,) = strategy.rejections
    (row,) = results.orders.to_dicts()
    assert (row["order_id"], row["status"], row["reject_rule"]) == (
        "strategy-1",
        "rejected",
        rejected.rule,
    )
    assert "no price known for AAA yet" in row["reject_reason"]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"stop_loss": 101.0, "take_profit": 110.0}, "buy bracket needs stop_loss below"),
        ({"stop_loss": 95.0, "take_profit": 99.0}, "buy bracket needs take_profit above"),
        ({"stop": 105.0, "stop_loss": 106.0, "take_profit": 110.0}, "stop_loss below the entry"),
    ],
    ids=["market_sl_above_close", "market_tp_below_close", "stop_entry_sl_above_stop"],
)
def test_bracket_levels_on_the_wrong_side_of_the_entry_are_rejected(kwargs, words) -> None:
    steps = {1: lambda s: s.buy("AAA", 1, **kwargs)}
    results, strategy, _ = run_script({"AAA": [flat(100)] * 4}, steps)
    (rejected,) = strategy.rejections
    assert rejected.rule == "invalid_order"
    assert words in rejected.reason
    assert results.fills.height == 0


def test_a_stop_entry_bracket_with_levels_around_its_stop_is_accepted() -> None:
    steps = {1: lambda s: s.buy("AAA", 1, stop=105.0, stop_loss=102.0, take_profit=110.0)}
    _, strategy, _ = run_script({"AAA": [flat(100)] * 4}, steps)
    assert strategy.rejections == []
