"""A quiet span's states taken at once equal the same states taken one by one: every
statistic, the daily series and the portfolio table, to the bit (the recorder's and
the risk manager's side of ``ml4t.backtest._span``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ml4t.backtest._span import PortfolioSpan
from ml4t.backtest._time import NS_PER_DAY
from ml4t.backtest.events import PortfolioSnapshot
from ml4t.backtest.record.daily import RunDays
from ml4t.backtest.record.states import PortfolioStates
from ml4t.backtest.record.tables import PORTFOLIO_SCHEMA, TableBuffer
from ml4t.backtest.risk.view import RiskView

START = int(datetime(2024, 1, 2, 14, 31, tzinfo=UTC).timestamp()) * 10**9
MINUTE = 60 * 10**9
FREQUENCIES = {"bar": 0, "daily": None, "5m": 5 * MINUTE}


def snapshot(ts: int, cash: float, value: float, gross: float, cost: float, n: int) -> Any:
    return PortfolioSnapshot(
        ts_event=ts,
        ts_init=ts,
        equity=cash + value,
        cash=cash,
        positions_value=value,
        gross_exposure=gross,
        net_exposure=value,
        num_positions=n,
        realized_pnl=12.5,
        unrealized_pnl=value - cost,
        commission=1.25,
    )


@st.composite
def paths(draw: st.DrawFn) -> dict[str, Any]:
    """States before a span, the span (some of it maybe on the next day), states after."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    before, steps, after = (
        draw(st.integers(0, 6)),
        draw(st.integers(1, 40)),
        draw(st.integers(0, 4)),
    )
    total = before + steps + after
    walk = draw(st.sampled_from(["flat", "noisy", "rising", "falling", "ties"]))
    if walk == "flat":
        values = np.zeros(total)
    elif walk == "ties":
        values = np.round(rng.normal(0, 1, total)) * 100.0
    else:
        drift = {"noisy": 0.0, "rising": 0.002, "falling": -0.002}[walk]
        values = 50_000.0 * np.cumprod(1 + rng.normal(drift, 0.003, total))
    gross = np.abs(values) * draw(st.sampled_from([1.0, 1.7]))
    cash = draw(st.sampled_from([50_000.0, 0.0, -60_000.0]))
    times = [START + i * MINUTE for i in range(total)]
    crossing = draw(st.integers(0, total))  # the next day starts here (total: never)
    times = [t + NS_PER_DAY * (i >= crossing) for i, t in enumerate(times)]
    return {
        "times": times,
        "values": values,
        "gross": gross,
        "cash": cash,
        "cost": 40_000.0,
        "n": 0 if walk == "flat" else 3,
        "before": before,
        "steps": steps,
        "flat": walk == "flat",
        "frequency": draw(st.sampled_from(sorted(FREQUENCIES))),
    }


def holdings(step: int) -> Any:
    return (("AAA",), np.array([float(step)]), np.array([1.0 + step]))


def states_of(path: dict[str, Any], *, spans: bool) -> PortfolioStates:
    table = TableBuffer("portfolio", PORTFOLIO_SCHEMA, output_dir=None, row_group_size=7)
    states = PortfolioStates(table, frequency_ns=FREQUENCIES[path["frequency"]], days=RunDays())
    b, steps = path["before"], path["steps"]
    times, values, gross = path["times"], path["values"], path["gross"]
    snaps = [
        snapshot(t, path["cash"], float(values[i]), float(gross[i]), path["cost"], path["n"])
        for i, t in enumerate(times)
    ]
    for i in range(b):
        states.on_snapshot(snaps[i], math.nan, holdings(i))
    span = make_span(path, b, b + steps, snaps[b + steps - 1])
    if spans:
        states.on_span(span, lambda step: holdings(b + step))
    else:
        for step in range(steps):
            states.on_snapshot(span.snapshot(step), math.nan, holdings(b + step))
    for i in range(b + steps, len(times)):
        states.on_snapshot(snaps[i], math.nan, holdings(i))
    states.finish()
    return states


def make_span(path: dict[str, Any], lo: int, hi: int, last: Any) -> PortfolioSpan:
    times = path["times"][lo:hi]
    if path["flat"]:
        return PortfolioSpan(ts_event=times[-1], ts_init=times[-1], times=times, last=last)
    return PortfolioSpan(
        ts_event=times[-1],
        ts_init=times[-1],
        times=times,
        last=last,
        values=path["values"][lo:hi].tolist(),
        gross=path["gross"][lo:hi].tolist(),
        cost=path["cost"],
    )


def _state(states: PortfolioStates) -> dict[str, Any]:
    names = [
        "snapshots",
        "first_ts",
        "last_ts",
        "peak",
        "max_drawdown",
        "max_drawdown_start",
        "max_drawdown_trough",
        "max_drawdown_end",
        "invested",
        "gross_sum",
        "net_sum",
        "equity_sum",
        "initial_equity",
    ]
    found = {name: getattr(states, name) for name in names}
    found["longest"] = states.max_drawdown_duration_ns
    found["last"] = states.last
    daily = states.daily
    found["daily"] = (daily.ts, daily.dates, daily.equity, daily.cash)
    found["holdings"] = [
        None if h is None else (h[0], h[1].tolist(), h[2].tolist()) for h in daily.holdings
    ]
    return {k: repr(v) for k, v in found.items()}  # repr: nan equal to nan, 0.0 to 0.0 only


@settings(max_examples=300, deadline=None)
@given(path=paths())
def test_a_span_taken_at_once_equals_its_states_one_by_one(path: dict[str, Any]) -> None:
    slow, fast = states_of(path, spans=False), states_of(path, spans=True)
    assert _state(fast) == _state(slow)
    assert fast.table is not None and slow.table is not None
    assert fast.table.frame().equals(slow.table.frame(), null_equal=True)


def _observed(path: dict[str, Any], *, spans: bool) -> tuple[Any, ...]:
    view = RiskView(None)
    b, steps = path["before"], path["steps"]
    equity = path["cash"] + path["values"]
    times = path["times"]
    for i in range(b):
        view.observe_equity(times[i], float(equity[i]))
    took = spans and view.observe_span(times[b : b + steps], equity[b : b + steps])
    if not took:
        for i in range(b, b + steps):
            view.observe_equity(times[i], float(equity[i]))
    for i in range(b + steps, len(times)):
        view.observe_equity(times[i], float(equity[i]))
    one_day = view.days.bar_day_end(times[b]) == view.days.bar_day_end(times[b + steps - 1])
    assert took == (spans and one_day)
    return tuple(
        repr(getattr(view, n))
        for n in (
            "equity",
            "peak_equity",
            "max_drawdown_seen",
            "day",
            "day_start_equity",
            "day_worst_loss",
        )
    )


@settings(max_examples=200, deadline=None)
@given(path=paths())
def test_the_risk_view_observes_a_span_as_its_equities_one_by_one(path: dict[str, Any]) -> None:
    assert _observed(path, spans=True) == _observed(path, spans=False)
