"""Identity (b) of the corporate-action rules, as a hypothesis test over random
multi-symbol schedules of trades, cash dividends and a borrow rate: at every portfolio
state, cash equals

    initial cash + the trading cash flows (every fill: -signed quantity x price)
    + exactly the entitlements booked by then (shares held at the ex-date x amount,
      positive for longs and negative for shorts, booked on the pay date)
    - the borrow fees accrued by then (each session's first bar: the shorts held into it,
      at the last close, x rate x calendar days / 365)

each term recomputed here from the fills and the bars alone, and equity = cash + the
market value of the positions throughout.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestEngine
from ml4t.backtest.config import load_config
from tests.engine._bars import Scripted

SYMBOLS = ("AAA", "BBB", "CCC")
CASH = 1_000_000.0


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    n_symbols = draw(st.integers(1, 3))
    symbols = SYMBOLS[:n_symbols]
    gaps = draw(st.lists(st.integers(1, 4), min_size=5, max_size=12))
    days = [date(2024, 1, 2)]
    for gap in gaps:
        days.append(days[-1] + timedelta(days=gap))
    closes = {s: [round(draw(st.floats(20.0, 80.0)), 2) for _ in days] for s in symbols}
    trades = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(days) - 2), st.sampled_from(symbols), st.integers(-20, 20)
            ).filter(lambda t: t[2] != 0),
            max_size=12,
        )
    )
    dividends = draw(
        st.dictionaries(
            st.tuples(st.sampled_from(symbols), st.integers(1, len(days) - 1)),
            st.tuples(st.integers(0, 5), st.floats(0.05, 2.0)),
            max_size=6,
        )
    )
    rate = draw(st.sampled_from([0.0, 0.02, 0.0365, 0.25]))
    return {
        "days": days,
        "closes": closes,
        "trades": trades,
        "dividends": dividends,
        "rate": rate,
    }


def bars_frame(world: dict[str, Any]) -> pl.DataFrame:
    rows = []
    for symbol, closes in world["closes"].items():
        for day, close in zip(world["days"], closes, strict=True):
            rows.append(
                {
                    "timestamp": datetime(day.year, day.month, day.day, 21, tzinfo=UTC),
                    "symbol": symbol,
                    "open": close,
                    "high": close,
                    "low": close,
                    "close": close,
                    "volume": 1e9,
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))
    return frame.sort("timestamp", "symbol")


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def expected_cash(world: dict[str, Any], fills: pl.DataFrame, at: datetime) -> float:
    days, closes = world["days"], world["closes"]
    bar_times = [midnight(d) + timedelta(hours=21) for d in days]
    fill_rows = fills.select("timestamp", "symbol", "side", "quantity", "price").to_dicts()

    def held(symbol: str, before: datetime) -> float:
        return sum(
            f["quantity"] * (1 if f["side"] == "buy" else -1)
            for f in fill_rows
            if f["symbol"] == symbol and f["timestamp"] < before
        )

    cash = CASH
    for f in fill_rows:
        if f["timestamp"] <= at:
            cash -= f["quantity"] * f["price"] * (1 if f["side"] == "buy" else -1)
    for (symbol, k), (pay_after, amount) in world["dividends"].items():
        entitled = held(symbol, bar_times[k])  # the position when the ex-date applies
        pay = midnight(days[k] + timedelta(days=pay_after))
        booked = bar_times[k] if pay_after == 0 else pay
        if booked <= at:
            cash += entitled * amount
    for i in range(1, len(days)):
        if bar_times[i] > at:
            break
        elapsed = (days[i] - days[i - 1]).days
        for symbol in closes:
            position = held(symbol, bar_times[i])  # held into the session, before its fills
            if position < 0:
                cash -= -position * closes[symbol][i - 1] * world["rate"] * elapsed / 365.0
    return cash


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds())
def test_cash_is_trading_flows_plus_entitlements_minus_fees_at_every_state(
    world: dict[str, Any], tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("dividends") / "actions.csv"
    rows = [
        {
            "symbol": symbol,
            "ex_date": world["days"][k].isoformat(),
            "action": "dividend",
            "amount": amount,
            "pay_date": (world["days"][k] + timedelta(days=pay_after)).isoformat(),
        }
        for (symbol, k), (pay_after, amount) in world["dividends"].items()
    ]
    schema = {c: pl.String for c in ("symbol", "ex_date", "action", "pay_date")}
    pl.DataFrame(rows, schema={**schema, "amount": pl.Float64}).write_csv(path)

    steps: dict[int, Any] = {}
    for bar, symbol, qty in world["trades"]:
        previous = steps.get(bar, lambda s: None)

        def step(s: Scripted, prev=previous, symbol=symbol, qty=qty) -> None:
            prev(s)
            (s.buy if qty > 0 else s.sell)(symbol, abs(qty))

        steps[bar] = step
    config = load_config(
        {
            "backtest": {"initial_capital": CASH},
            "risk": {"account": "margin"},
            "execution": {"borrow": {"rate": world["rate"]}},
            "data": {"corporate_actions": {"path": str(path)}},
            "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
        }
    )
    strategy = Scripted(steps)
    engine = BacktestEngine(config, strategy=strategy, asset=bars_frame(world))
    results = engine.run()
    states = results.portfolio.to_dicts()
    assert states, "the run produced no portfolio states"
    for state in states:
        want = expected_cash(world, results.fills, state["timestamp"])
        assert state["cash"] == pytest.approx(want, rel=1e-12, abs=1e-6), state["timestamp"]
        value = state["equity"] - state["cash"]
        assert value == pytest.approx(state["positions_value"], rel=1e-12, abs=1e-6)
    dividends = results.cash_flows.filter(pl.col("kind") == "dividend")["amount"].sum()
    fees = -results.cash_flows.filter(pl.col("kind") == "borrow_fee")["amount"].sum()
    assert engine.portfolio.income == pytest.approx(dividends, abs=1e-9)
    assert engine.portfolio.borrow_fees == pytest.approx(fees, abs=1e-9)
    engine.portfolio.check()  # equity = initial + realized + unrealized + income - fees
