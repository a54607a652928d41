"""18 shared cash panel: 50 symbols trading from one cash balance that runs out."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario

SCENARIO = Scenario(
    id="18",
    name="shared_cash_panel",
    description=(
        "50 symbols, each entry buys floor(10,000 / close) shares from one 100,000 cash "
        "balance with 0.1 % commission, so cash runs out: vectorbt resizes the buy to "
        "what the cash affords, backtrader rejects it (Margin) at submission or execution."
    ),
    data=lambda small: make_panel(
        seed=118, n_bars=250 if small else 1000, n_symbols=50, entry_rate=0.05, exit_rate=0.03
    ),
    sizing="value",
    value=10_000.0,
    initial_cash=100_000.0,
    costs=Costs(commission_percent=0.001),
    large=True,
)
