"""A point-in-time universe through the whole graph: strategies see members only.

Daily bars known at 21:00 UTC from 2024-01-02 (bar i is 2024-01-(2+i)). Membership is
half-open on known-at times: a symbol with ``start`` 2024-01-05 is a member from the
first bar known after 2024-01-05 00:00 (bar 3) on; one with ``end`` 2024-01-05 is one
up to bar 2 and not from bar 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from ml4t.backtest import BacktestEngine, BatchStrategy, OrderRejected
from ml4t.backtest.config import load_config

from ._bars import flat, frame

DAYS = 6


class Greedy(BatchStrategy):
    """Keeps the symbols of every batch it is given; buys 1 of each symbol the first
    time it sees it; at bar 4 also tries to buy LEFT, which it cannot see."""

    fractional = True

    def __init__(self) -> None:
        super().__init__("greedy")
        self.seen: list[list[str]] = []
        self.bought: set[str] = set()
        self.rejections: list[OrderRejected] = []

    def on_timestamp(self, timestamp, batch, context) -> None:
        symbols = batch["symbol"].cast(pl.String).to_list()
        self.seen.append(symbols)
        for symbol in symbols:
            if symbol not in self.bought:
                self.bought.add(symbol)
                self.buy(symbol, 1)
        if len(self.seen) == 5:
            self.buy("LEFT", 1)

    def on_reject(self, rejection: OrderRejected) -> None:
        self.rejections.append(rejection)


UNIVERSE = (
    "symbol,start,end\n"
    "STAY,2024-01-01,\n"
    "JOIN,2024-01-05,\n"  # listed all along, joins the index on the 5th
    "LEFT,2024-01-01,2024-01-05\n"  # leaves on the 5th, keeps trading
)


def run(tmp_path: Path, on_exit: str, text: str = UNIVERSE) -> tuple[Any, Greedy, BacktestEngine]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    universe = tmp_path / "universe.csv"
    universe.write_text(text)
    asset = frame({s: [flat(10.0 + i) for i in range(DAYS)] for s in ("STAY", "JOIN", "LEFT")})
    config = load_config(
        {
            "backtest": {"initial_capital": 10_000.0},
            "data": {"universe": {"path": str(universe), "on_exit": on_exit}},
            "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
        }
    )
    strategy = Greedy()
    engine = BacktestEngine(config, strategy=strategy, asset=asset)
    return engine.run(), strategy, engine


@pytest.mark.parametrize("on_exit", ["hold", "close"])
def test_the_strategy_sees_members_only_and_trades_none_outside(tmp_path, on_exit) -> None:
    results, strategy, engine = run(tmp_path, on_exit)
    # JOIN is never seen before bar 3; LEFT never from bar 3 on
    assert strategy.seen == [
        ["LEFT", "STAY"],
        ["LEFT", "STAY"],
        ["LEFT", "STAY"],
        ["JOIN", "STAY"],
        ["JOIN", "STAY"],
        ["JOIN", "STAY"],
    ]
    (rejection,) = strategy.rejections  # the blind buy of LEFT at bar 4
    assert rejection.rule == "not_in_universe" and rejection.symbol == "LEFT"
    fills = results.fills.select("timestamp", "symbol", "side", "reason").to_dicts()
    left = [f for f in fills if f["symbol"] == "LEFT"]
    assert left[0]["side"] == "buy" and left[0]["timestamp"].day == 3  # bought while in
    if on_exit == "hold":
        # kept, and still marked at its own prices: 1 share at the last close 15
        assert len(left) == 1
        assert engine.portfolio.position("LEFT") == 1.0
        assert engine.portfolio.positions().filter(pl.col("symbol") == "LEFT")[
            "last_price"
        ].to_list() == [15.0]
    else:
        # closed by a market order sent when it left (bar 3), filled at bar 4's open
        assert [(f["side"], f["timestamp"].day, f["reason"]) for f in left[1:]] == [
            ("sell", 6, "universe_exit")
        ]
        assert engine.portfolio.position("LEFT") == 0.0
    join = [f for f in fills if f["symbol"] == "JOIN"]
    assert join[0]["timestamp"].day == 6  # decided at bar 3, its first bar as a member


def test_membership_decided_later_changes_nothing_before_it(tmp_path) -> None:
    # the same run with JOIN joining a day later and LEFT leaving a day later: up to the
    # first change (bar 3, 2024-01-05) the strategy saw and did exactly the same
    base, strategy, _ = run(tmp_path / "a", "hold")
    later = UNIVERSE.replace("JOIN,2024-01-05", "JOIN,2024-01-06").replace(
        "2024-01-01,2024-01-05", "2024-01-01,2024-01-06"
    )
    moved, strategy2, _ = run(tmp_path / "b", "hold", later)
    assert strategy.seen[:3] == strategy2.seen[:3]
    assert strategy.seen[3] != strategy2.seen[3]  # the perturbation does show, then
    cut = pl.datetime(2024, 1, 5, time_zone="UTC")
    for name in ("fills", "orders"):
        a, b = (getattr(r, name) for r in (base, moved))
        column = "timestamp" if name == "fills" else "submitted_at"
        assert a.filter(pl.col(column) < cut).equals(b.filter(pl.col(column) < cut)), name
