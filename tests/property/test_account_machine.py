"""A state-machine test of the account guarantees over random strategies.

Hypothesis draws a whole machine run: bars for one to three symbols over three to eight
timestamps (gaps: opens up to 30 % away from the previous close; missing bars: a symbol
absent at some timestamps; volumes small enough that volume limits give partial fills),
an account (cash or margin), costs (per-share commission; fixed-bps or volume-share
slippage), a fill timing (next open or same close), integer or fractional quantities, and
a script: per timestamp a list of actions (market, limit, stop and bracket orders, cancel
and modify of a working order, cancel-and-replace on one bar, ``close_position``,
reduce-only orders). The script runs through the real graph (``BacktestEngine`` over a
polars frame); :class:`~tests.property._account_harness.AccountChecks`, added to the
graph, checks after every fill and every timestamp:

1. a cash account's cash is >= 0, with no tolerance (the broker compares strictly);
2. a cash account holds no short;
3. no fill of a reduce-only order or a bracket child increases |position| or flips it;
4. equity == cash + positions value, and positions value == sum(quantity * last
   close), within 1e-9 of the gross exposure (the sums of a few float fills);
5. the strategy's ``position()`` equals the portfolio's for every symbol, exactly (one
   accounting function, the same fills in the same order);

and after the run: 6. the orders table, the order history and the fills agree.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ml4t.backtest import BacktestEngine, RunOutcome
from ml4t.backtest.config import load_config

from ._account_harness import (
    AccountChecks,
    FractionalMachine,
    ScriptedMachine,
    frame,
    table_disagreements,
)

SYMBOLS = ("AAA", "BBB", "CCC")
SIDES = st.sampled_from(["buy", "sell"])


@st.composite
def bar_rows(draw: Any, symbols: list[str]) -> list[dict[str, tuple]]:
    """Bars with gaps and missing bars; every symbol has at least one bar."""
    n = draw(st.integers(3, 8))
    close = {s: float(draw(st.integers(20, 150))) for s in symbols}
    present = {s: draw(st.lists(st.booleans(), min_size=n, max_size=n)) for s in symbols}
    for s in symbols:
        present[s][draw(st.integers(0, n - 1))] = True
    rows: list[dict[str, tuple]] = [{} for _ in range(n)]
    for i in range(n):
        for s in symbols:
            if not (present[s][i] or draw(st.integers(0, 3)) > 0):
                continue
            gap = draw(st.sampled_from([0.0, 0.0, 0.0, -0.3, -0.12, 0.12, 0.3]))
            o = round(max(1.0, close[s] * (1 + gap) + draw(st.integers(-4, 4)) / 2), 2)
            c = max(1.0, o + draw(st.integers(-8, 8)) / 2)
            h = max(o, c) + draw(st.integers(0, 6)) / 2
            lo = max(0.5, min(o, c) - draw(st.integers(0, 6)) / 2)
            v = float(draw(st.sampled_from([8, 40, 300, 1e6, 1e6])))
            rows[i][s] = (o, h, lo, c, v)
            close[s] = c
    return [row for row in rows if row]


def order_actions(n_symbols: int, quantities: st.SearchStrategy[float]) -> st.SearchStrategy:
    sym = st.integers(0, n_symbols - 1)
    ticks = st.integers(-6, 6)
    plain = st.tuples(
        st.just("order"),
        sym,
        SIDES,
        st.sampled_from(["market", "market", "limit", "stop"]),
        quantities,
        ticks,
        st.sampled_from(["gtc", "gtc", "day"]),
        st.booleans(),
    )
    bracket = st.tuples(
        st.just("bracket"),
        sym,
        SIDES,
        st.sampled_from(["market", "limit"]),
        quantities,
        st.integers(1, 8),
        st.integers(1, 8),
    )
    return st.one_of(plain, plain, bracket)


def actions(n_symbols: int, quantities: st.SearchStrategy[float]) -> st.SearchStrategy:
    new = order_actions(n_symbols, quantities)
    k = st.integers(0, 5)
    return st.one_of(
        new,
        new,
        st.tuples(st.just("cancel"), k),
        st.tuples(
            st.just("modify"),
            k,
            st.sampled_from(["quantity", "limit", "stop"]),
            quantities,
            st.integers(-6, 6),
        ),
        st.tuples(st.just("replace"), k, new),
        st.tuples(st.just("close"), st.integers(0, n_symbols - 1), st.booleans()),
    )


QUANTITIES = {
    False: st.integers(1, 80).map(float),
    True: st.integers(1, 560).map(lambda q: q / 7),  # sevenths: not binary fractions
}
SCRIPTS = {
    (n, fractional): st.lists(actions(n, quantities), max_size=4)
    for n in (1, 2, 3)
    for fractional, quantities in QUANTITIES.items()
}


@st.composite
def machines(draw: Any) -> dict[str, Any]:
    symbols = list(SYMBOLS[: draw(st.integers(1, 3))])
    bars = draw(bar_rows(symbols))
    fractional = draw(st.booleans())
    steps = SCRIPTS[(len(symbols), fractional)]
    script = draw(st.lists(steps, min_size=len(bars), max_size=len(bars)))
    execution: dict[str, Any] = {
        "fill_timing": draw(st.sampled_from(["next_open", "same_close"])),
        "volume_limit": draw(st.sampled_from([None, None, 0.5])),
        "commission": draw(
            st.sampled_from(
                [
                    {"model": "none"},
                    {"model": "per_share", "params": {"cost_per_share": 0.01, "minimum": 1.0}},
                ]
            )
        ),
        "slippage": draw(
            st.sampled_from(
                [
                    {"model": "none"},
                    {"model": "fixed_bps", "params": {"bps": 10.0}},
                    {
                        "model": "volume_share",
                        "params": {"volume_limit": 0.25, "price_impact": 0.1},
                    },
                ]
            )
        ),
    }
    return {
        "symbols": symbols,
        "bars": bars,
        "script": script,
        "fractional": fractional,
        "account": draw(st.sampled_from(["cash", "margin"])),
        "capital": float(draw(st.sampled_from([2_000, 10_000]))),
        "execution": execution,
    }


def run_machine(machine: dict[str, Any]) -> tuple[Any, ScriptedMachine, AccountChecks]:
    config = load_config(
        {
            "backtest": {"initial_capital": machine["capital"]},
            "risk": {"account": machine["account"]},
            "execution": machine["execution"],
            "reporting": {"output_dir": None, "portfolio_frequency": "bar"},
        }
    )
    cls = FractionalMachine if machine["fractional"] else ScriptedMachine
    strategy = cls(machine["symbols"], machine["script"])
    engine = BacktestEngine(config, strategy=strategy, asset=frame(machine["bars"]))
    checks = engine.add(
        AccountChecks(engine.portfolio, strategy, cash_account=machine["account"] == "cash")
    )
    assert isinstance(checks, AccountChecks)
    return engine.run(), strategy, checks


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # no explain phase: its line tracer makes each replay of a whole run ~10x slower,
    # so a failure would hit the per-test timeout before the shrunk example is printed
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(machines())
def test_random_strategies_keep_the_account_guarantees_at_every_timestamp(machine) -> None:
    results, _, checks = run_machine(machine)
    assert results.outcome is RunOutcome.COMPLETED
    assert checks.timestamps == len(machine["bars"]), "the checks did not run at every timestamp"
    assert not checks.violations, "\n".join(checks.violations)
    problems = table_disagreements(results)
    assert not problems, "\n".join(problems)
