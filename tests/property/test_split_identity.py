"""Identity (a) of the corporate-action rules, over random multi-symbol split schedules:
buy-and-hold over raw prices plus the split actions has the same equity at every bar as
the same holding over split-adjusted prices (``data.adjustment.adjusted``), to 1e-9
relative.

The holdings are fractional (a strategy that trades fractions), so splits multiply them
exactly; a whole-share holding would differ only by the documented cash in lieu of a
reverse split's fraction (``tests/engine/test_corporate_actions.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestEngine
from ml4t.backtest.config import load_config
from ml4t.backtest.data.actions import parse_corporate_actions
from ml4t.backtest.data.adjustment import adjusted
from tests.engine._bars import START, Scripted, frame

RATIOS = (2.0, 3.0, 4.0, 1.5, 0.5, 0.25, 0.1)
SYMBOLS = ("AAA", "BBB", "CCC")


@st.composite
def worlds(draw: Any) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """Raw daily bars, their splits (ex-date from day 2 on, after the buys filled) and
    the quantity bought of each symbol."""
    n_symbols = draw(st.integers(1, 3))
    days = draw(st.integers(5, 12))
    bars: dict[str, list[tuple[float, ...]]] = {}
    splits: list[dict[str, Any]] = []
    quantity: dict[str, float] = {}
    for symbol in SYMBOLS[:n_symbols]:
        moves = draw(st.lists(st.floats(-0.05, 0.05), min_size=days, max_size=days))
        split_days = draw(st.lists(st.integers(2, days - 1), max_size=3, unique=True))
        ratio = {d: draw(st.sampled_from(RATIOS)) for d in split_days}
        price, factor, series = 50.0, 1.0, []
        for day, move in enumerate(moves):
            factor /= ratio.get(day, 1.0)  # raw prices jump by 1/r at the ex-date
            value = price * factor
            close = value * (1 + move / 2)
            high, low = max(value, close) * 1.01, min(value, close) * 0.99
            series.append((value, high, low, close, 1e6))
            price *= 1 + move
        bars[symbol] = series
        for day, r in ratio.items():
            ex = (START + timedelta(days=day)).date().isoformat()
            splits.append({"symbol": symbol, "ex_date": ex, "action": "split", "ratio": r})
        quantity[symbol] = round(draw(st.floats(1.0, 30.0)), 3) + 0.0005
    schema = {"symbol": pl.String, "ex_date": pl.String, "action": pl.String, "ratio": pl.Float64}
    return frame(bars), pl.DataFrame(splits, schema=schema), quantity


def equity(asset: pl.DataFrame, quantity: dict[str, float], data: dict[str, Any]) -> list[float]:
    def buy_all(s: Scripted) -> None:
        for symbol, q in quantity.items():
            s.buy(symbol, q)

    config = load_config(
        {
            "backtest": {"initial_capital": 100_000.0},
            "risk": {"account": "margin"},
            "data": data,
            "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
        }
    )
    engine = BacktestEngine(config, strategy=Scripted({0: buy_all}), asset=asset)
    return engine.run().portfolio["equity"].to_list()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds())
def test_raw_prices_with_splits_hold_the_same_value_as_split_adjusted_prices(
    world: tuple[pl.DataFrame, pl.DataFrame, dict[str, float]], tmp_path_factory: Any
) -> None:
    raw, splits, quantity = world
    path = tmp_path_factory.mktemp("splits") / "actions.csv"
    splits.write_csv(path)
    schedule = parse_corporate_actions(splits, symbols=set(quantity), timezone="UTC")
    ratio_after = {
        s: float(splits.filter(pl.col("symbol") == s)["ratio"].product() or 1.0)
        if splits.height
        else 1.0
        for s in quantity
    }
    with_actions = equity(raw, quantity, {"corporate_actions": {"path": str(path)}})
    # on adjusted prices the same holding is q x (every later ratio) shares
    scaled = {s: q * ratio_after[s] for s, q in quantity.items()}
    on_adjusted = equity(adjusted(raw, schedule, dividends=False), scaled, {})
    assert with_actions == pytest.approx(on_adjusted, rel=1e-9)
