"""Slippage and commission models: formulas, and what fills carry."""

from __future__ import annotations

import math

import msgspec
import pytest

from ml4t.backtest import OrderFilled
from ml4t.backtest.execution import (
    BrokerConfig,
    CommissionConfig,
    FixedBpsSlippage,
    HalfSpreadSlippage,
    NoSlippage,
    PercentCommission,
    PerOrderCommission,
    PerShareCommission,
    SimulatedBroker,
    SlippageConfig,
    VolumeShareSlippage,
    commission_model,
    slippage_model,
)
from ml4t.backtest.topics import MARKET, ORDERS_APPROVED
from tests.execution._market import batch, day, flat, order, run, simulate, table

NAN = math.nan

SLIPPAGE = [
    # id, model, sign, rule price, quantity, bar volume, extra, expected fill price
    ("none", NoSlippage(), 1, 100.0, 10, 1000, NAN, 100.0),
    ("fixed_bps_buy", FixedBpsSlippage(bps=10), 1, 100.0, 10, 1000, NAN, 100.1),
    ("fixed_bps_sell", FixedBpsSlippage(bps=10), -1, 100.0, 10, 1000, NAN, 99.9),
    ("half_spread_bps_buy", HalfSpreadSlippage(spread_bps=20), 1, 100.0, 10, 1000, NAN, 100.1),
    (
        "half_spread_column_sell",
        HalfSpreadSlippage(spread_column="spread"),
        -1,
        100.0,
        10,
        1,
        0.04,
        99.98,
    ),
    # impact = 0.1 * (100 / 1000)^2 * 100 = 0.1
    ("volume_share_buy", VolumeShareSlippage(volume_limit=0.1), 1, 100.0, 100, 1000, NAN, 100.1),
    # impact = 0.2 * (50 / 1000)^2 * 80 = 0.04
    ("volume_share_sell", VolumeShareSlippage(price_impact=0.2), -1, 80.0, 50, 1000, NAN, 79.96),
    ("volume_share_no_volume", VolumeShareSlippage(), 1, 80.0, 50, 0, NAN, 80.0),
]


@pytest.mark.parametrize(
    ("model", "sign", "price", "qty", "volume", "extra", "expected"), table(SLIPPAGE)
)
def test_slippage_formula(model, sign, price, qty, volume, extra, expected) -> None:
    assert model.price(sign, price, qty, volume, extra) == pytest.approx(expected, abs=1e-12)


COMMISSION = [
    # id, model, fills of one order [(qty, price)], expected commission per fill
    ("per_share_plain", PerShareCommission(cost_per_share=0.005), [(1000, 10.0)], [5.0]),
    (
        "per_share_minimum",
        PerShareCommission(cost_per_share=0.005, minimum=1.0),
        [(100, 10.0)],
        [1.0],
    ),
    (
        "per_share_minimum_over_partial_fills",
        PerShareCommission(cost_per_share=0.005, minimum=1.0),
        [(100, 10.0), (900, 10.0)],
        [1.0, 4.0],
    ),
    (
        "per_share_maximum",
        PerShareCommission(cost_per_share=0.01, maximum=5.0),
        [(300, 10.0), (300, 10.0), (300, 10.0)],
        [3.0, 2.0, 0.0],
    ),
    ("per_order_first_fill_only", PerOrderCommission(cost=2.5), [(10, 5.0), (10, 5.0)], [2.5, 0.0]),
    ("percent_of_notional", PercentCommission(rate=0.001), [(100, 50.0), (100, 60.0)], [5.0, 6.0]),
    (
        "percent_minimum",
        PercentCommission(rate=0.001, minimum=10.0),
        [(100, 50.0), (100, 60.0)],
        [10.0, 1.0],
    ),
]


@pytest.mark.parametrize(("model", "fills", "expected"), table(COMMISSION))
def test_commission_formula(model, fills, expected) -> None:
    filled = notional = charged = 0.0
    got = []
    for qty, price in fills:
        fee = model.commission(qty, price, filled, notional, charged)
        got.append(fee)
        filled, notional, charged = filled + qty, notional + qty * price, charged + fee
    assert got == pytest.approx(expected)


def test_fill_carries_commission_and_slippage_separately() -> None:
    config = BrokerConfig(
        slippage=SlippageConfig(model="fixed_bps", params={"bps": 10}),
        commission=CommissionConfig(
            model="per_share", params={"cost_per_share": 0.01, "minimum": 1}
        ),
    )
    capture, _ = simulate([flat(100), (100, 101, 99, 100, 1e6)], [order("o1", "buy", 200)], config)
    (fill,) = capture.of_type(OrderFilled)
    assert fill.price == pytest.approx(100.1)
    assert fill.slippage == pytest.approx(0.1 * 200)
    assert fill.commission == pytest.approx(2.0)


def test_volume_share_slippage_limits_and_prices_each_partial_fill() -> None:
    config = BrokerConfig(
        slippage=SlippageConfig(
            model="VolumeShareSlippage", params={"volume_limit": 0.1, "price_impact": 0.1}
        )
    )
    bars = [flat(100), (100, 101, 99, 100, 1000), (100, 101, 99, 100, 500)]
    capture, _ = simulate(bars, [order("o1", "buy", 150)], config)
    first, second = capture.of_type(OrderFilled)
    assert (first.quantity, second.quantity) == (100.0, 50.0)
    assert first.price == pytest.approx(100 + 0.1 * 0.1**2 * 100)  # 100.1
    assert second.price == pytest.approx(100 + 0.1 * 0.1**2 * 100)  # 50/500 = 0.1 too
    assert first.slippage == pytest.approx(0.1 * 100)


def test_half_spread_slippage_reads_the_spread_column() -> None:
    config = BrokerConfig(
        slippage=SlippageConfig(model="half_spread", params={"spread_column": "spread"})
    )
    steps = [
        (day(0), MARKET, batch(day(0), {"AAA": flat(100)}, spread={"AAA": 0.1})),
        (day(0), ORDERS_APPROVED, order("o1", "sell", 10)),
        (day(1), MARKET, batch(day(1), {"AAA": flat(100)}, spread={"AAA": 0.04})),
    ]

    capture = run(steps, SimulatedBroker(config))
    (fill,) = capture.of_type(OrderFilled)
    assert fill.price == pytest.approx(99.98)
    assert fill.slippage == pytest.approx(0.02 * 10)


def test_slippage_may_leave_the_bar_only_by_its_own_amount() -> None:
    config = BrokerConfig(slippage=SlippageConfig(model="fixed_bps", params={"bps": 50}))
    capture, _ = simulate([flat(100), (100, 100, 99, 99.5, 1e6)], [order("o1", "buy", 10)], config)
    (fill,) = capture.of_type(OrderFilled)
    high = 100.0
    assert fill.price > high
    assert fill.price - high == pytest.approx(fill.slippage / fill.quantity)


def test_models_are_found_by_short_name_and_by_class_name() -> None:
    assert slippage_model("volume_share") == slippage_model("VolumeShareSlippage")
    assert commission_model("PerShareCommission", {"cost_per_share": 0.01}) == PerShareCommission(
        cost_per_share=0.01
    )


def test_unknown_model_or_bad_params_fail_with_the_path() -> None:
    class Root(msgspec.Struct, forbid_unknown_fields=True):
        execution: BrokerConfig

    with pytest.raises(
        msgspec.ValidationError, match=r"unknown slippage model 'Bogus'.*\$\.execution\.slippage"
    ):
        msgspec.convert({"execution": {"slippage": {"model": "Bogus"}}}, Root)
    with pytest.raises(
        msgspec.ValidationError, match=r"params\.volume_limit.*\$\.execution\.slippage"
    ):
        msgspec.convert(
            {"execution": {"slippage": {"model": "volume_share", "params": {"volume_limit": 2}}}},
            Root,
        )
    with pytest.raises(msgspec.ValidationError, match="unknown field `cost`"):
        msgspec.convert(
            {"execution": {"commission": {"model": "per_share", "params": {"cost": 1}}}}, Root
        )
    with pytest.raises(msgspec.ValidationError, match=r"\$\.execution\.fill_timing"):
        msgspec.convert({"execution": {"fill_timing": "tomorrow"}}, Root)


def test_the_proposals_config_decodes() -> None:
    yaml_like = {
        "slippage": {"model": "VolumeShareSlippage", "params": {"volume_limit": 0.1}},
        "commission": {"model": "PerShareCommission", "params": {"cost_per_share": 0.005}},
    }
    config = msgspec.convert(yaml_like, BrokerConfig)
    assert config.slippage.build() == VolumeShareSlippage(volume_limit=0.1)
    assert config.commission.build() == PerShareCommission(cost_per_share=0.005)
