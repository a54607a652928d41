"""The tiered commission plugin: its schedule, its validation, and a backtest that finds
it by name through its entry point. Uses only the public API ``ml4t.backtest``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from ml4t_commission_schedule import Tier, TieredCommission

from ml4t.backtest import (
    BacktestEngine,
    CommissionConfig,
    ConfigError,
    RunConfig,
    Strategy,
    load_config,
)
from ml4t.backtest.plugins import discover


def test_marginal_tiers_charge_each_band_at_its_rate():
    model = TieredCommission(minimum=0.0, maximum_pct=None)
    assert model.schedule(100) == pytest.approx(0.35)
    assert model.schedule(500) == pytest.approx(300 * 0.0035 + 200 * 0.002)
    assert model.schedule(5000) == pytest.approx(1.05 + 2700 * 0.002 + 2000 * 0.001)


def test_minimum_and_cap_apply_per_order_across_partial_fills():
    model = TieredCommission(minimum=1.0, maximum_pct=0.01)
    first = model.commission(10, 50.0, 0.0, 0.0, 0.0)
    assert first == pytest.approx(1.0)  # the minimum, with the first fill
    second = model.commission(490, 50.0, 10, 500.0, first)
    assert first + second == pytest.approx(300 * 0.0035 + 200 * 0.002)
    capped = model.commission(100, 0.5, 0.0, 0.0, 0.0)  # a 50-dollar order pays at most 0.50
    assert capped == pytest.approx(0.5)


def test_bad_tiers_fail_when_the_config_is_read_with_the_key_path():
    with pytest.raises(ValueError, match="up_to must increase"):
        TieredCommission(tiers=(Tier(up_to=10, per_share=0.01), Tier(up_to=5, per_share=0.0)))
    with pytest.raises(ConfigError, match=r"\$\.execution\.commission"):
        load_config({"execution": {"commission": {"model": "tiered", "params": {"bogus": 1}}}})


def test_the_plugin_is_installed_and_found_by_name():
    (info,) = [p for p in discover(["commission"], load=True) if p.name == "tiered"]
    assert info.ok and info.package == "ml4t-commission-schedule" and info.version == "0.1.0"
    model = CommissionConfig(model="tiered", params={"minimum": 0.5}).build()
    assert isinstance(model, TieredCommission) and model.minimum == 0.5


class BuyOnceEach(Strategy):
    def on_bar(self, bar) -> None:
        if self.position(bar.symbol) == 0 and not self.open_orders:
            self.buy(bar.symbol, 400)


def test_a_backtest_charges_the_schedule_on_every_fill():
    start = datetime(2024, 1, 2, 15, tzinfo=UTC)
    ts = pl.datetime_range(start, start + timedelta(minutes=4), "1m", eager=True)
    bars = pl.DataFrame(
        {
            "timestamp": ts,
            "symbol": ["XYZ"] * len(ts),
            "open": [100.0] * len(ts),
            "high": [101.0] * len(ts),
            "low": [99.0] * len(ts),
            "close": [100.0] * len(ts),
            "volume": [1e6] * len(ts),
        }
    )
    config = RunConfig(
        execution=load_config(
            {"execution": {"commission": {"model": "tiered", "params": {"minimum": 0.0}}}}
        ).execution,
        reporting=load_config({"reporting": {"output_dir": None}}).reporting,
    )
    results = BacktestEngine(config, strategy=BuyOnceEach("s"), asset=bars).run()
    assert results.fills.height == 1
    assert results.fills["commission"][0] == pytest.approx(300 * 0.0035 + 100 * 0.002)
