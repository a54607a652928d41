"""Every plugin kind the loader knows can be named in a run's config, at the key
``CONFIG_KEYS`` (and docs/plugins.md) gives for it: one run names a plugin of each kind
and each is the one that runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ml4t.backtest import BacktestEngine, load_config
from ml4t.backtest.plugins import CONFIG_KEYS, GROUPS
from tests.engine._bars import frame

DOCS = Path(__file__).parents[2] / "docs" / "plugins.md"

EVERY_KIND = """
from typing import Annotated
from msgspec import Meta
from ml4t.backtest import (
    CommissionModel, Component, OrderFilled, ParquetFeed, Recorder, Rejection, RiskRule,
    SimulatedBroker, SlippageModel, Strategy, on,
)
from ml4t.backtest.topics import FILLS

class Fee(CommissionModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fee: float = 1.0
    def commission(self, quantity, price, filled, notional, charged):
        return self.fee if filled == 0 else 0.0

class Cents(SlippageModel, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cents: int = 1
    def price(self, sign, price, quantity, volume, extra):
        return price + sign * self.cents / 100

class MaxQty(RiskRule, frozen=True, kw_only=True, forbid_unknown_fields=True):
    limit: Annotated[float, Meta(gt=0)]
    def check(self, request, view, config):
        if request.quantity > self.limit:
            return Rejection("max_qty", f"{request.quantity:g} > {self.limit:g}")
        return None

class Buyer(Strategy):
    def __init__(self, name=None, *, params=None):
        super().__init__(name, params=params)
        self.bars, self.rejected = 0, []
    def on_bar(self, bar):
        self.bars += 1
        if self.bars == 1:
            self.buy(bar.symbol, 2000)  # refused by max_qty
            self.buy(bar.symbol, 10)
        elif self.bars == 3:
            self.sell(bar.symbol, 10)
    def on_reject(self, rejection):
        self.rejected.append(rejection.rule)

class TaggedFeed(ParquetFeed):
    pass

class TaggedBroker(SimulatedBroker):
    pass

class TaggedRecorder(Recorder):
    pass

class Ear(Component):
    def __init__(self):
        super().__init__("ear")
        self.heard = []
    @on(FILLS)
    def _fill(self, fill: OrderFilled) -> None:
        self.heard.append(fill.quantity)
"""

NAMED = {
    "commission": ("execution.commission", {"model": "fee", "params": {"fee": 2.5}}),
    "slippage": ("execution.slippage", {"model": "cents", "params": {"cents": 3}}),
    "risk_rules": ("risk.rules", [{"rule": "max_qty", "params": {"limit": 100}}]),
    "strategies": ("strategy.plugin", "buyer"),
    "feeds": ("plugins.feed", "tagged"),
    "brokers": ("plugins.broker", "tagged"),
    "recorders": ("plugins.recorder", "tagged"),
    "components": ("plugins.components", ["ear"]),
}
"""Plugin kind -> the config key naming it in this test, and what it is given."""

LIVE_KINDS = {"live_data", "live_brokers"}
"""Named under ``live.data`` / ``live.broker``, which only ``ml4t live`` reads: a
registered adapter of each runs in ``tests/live/test_session.py``."""


@pytest.fixture
def every_kind(distribution):
    return distribution(
        "acme-all",
        "0.9.0",
        modules={"acme_all": EVERY_KIND},
        entry_points={
            GROUPS["commission"]: {"fee": "acme_all:Fee"},
            GROUPS["slippage"]: {"cents": "acme_all:Cents"},
            GROUPS["risk_rules"]: {"max_qty": "acme_all:MaxQty"},
            GROUPS["strategies"]: {"buyer": "acme_all:Buyer"},
            GROUPS["feeds"]: {"tagged": "acme_all:TaggedFeed"},
            GROUPS["brokers"]: {"tagged": "acme_all:TaggedBroker"},
            GROUPS["recorders"]: {"tagged": "acme_all:TaggedRecorder"},
            GROUPS["components"]: {"ear": "acme_all:Ear"},
        },
    )


def test_the_config_key_of_every_kind_is_the_one_documented():
    assert set(NAMED) | LIVE_KINDS == set(GROUPS) == set(CONFIG_KEYS)
    for kind, (key, _) in NAMED.items():
        assert CONFIG_KEYS[kind].startswith(key.split(".model")[0]), kind
    table = {}
    for line in DOCS.read_text().splitlines():
        row = re.match(r"\| `(\w+)` \| `([\w.]+)` \|.*\| `([^`]+)` \|$", line)
        if row:
            table[row[1]] = (row[2], row[3])
    assert table == {kind: (GROUPS[kind], CONFIG_KEYS[kind].format(name="NAME")) for kind in GROUPS}


def test_one_run_names_a_plugin_of_every_kind_and_each_one_runs(every_kind, tmp_path):
    bars = frame({"AAA": [(10.0, 11.0, 9.0, 10.5, 1e6)] * 4})
    bars.write_parquet(tmp_path / "bars.parquet")
    config: dict = {
        "data": {"asset": {"path": str(tmp_path / "bars.parquet")}},
        "reporting": {"output_dir": None},
    }
    for key, value in NAMED.values():
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    engine = BacktestEngine(load_config(config))
    names = {type(c).__name__ for c in (engine.feed, engine.broker, engine.recorder)}
    assert names == {"TaggedFeed", "TaggedBroker", "TaggedRecorder"}
    results = engine.run()
    assert results.complete
    (strategy,) = engine.strategies
    (ear,) = engine.extras
    assert type(strategy).__name__ == "Buyer" and strategy.rejected == ["max_qty"]
    assert ear.heard == [10.0, 10.0]
    fills = results.fills
    assert fills["commission"].to_list() == [2.5, 2.5]
    assert fills["price"].to_list() == pytest.approx([10.03, 9.97])  # 3 cents against each
