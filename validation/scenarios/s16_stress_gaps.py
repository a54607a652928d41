"""16 stress gaps: ±10 % overnight gaps and drift regime changes, with stops and costs."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario, Stops

SCENARIO = Scenario(
    id="16",
    name="stress_gaps",
    description=(
        "A stress path: ±10 % overnight gaps (6 % of bars) and drift regime changes; long "
        "entries with a 4 % stop-loss and a 6 % take-profit (gaps through either fill at "
        "the open, and both inside one bar exercise the exit-conflict rule), 0.1 % "
        "commission and 0.05 % slippage."
    ),
    data=lambda small: make_panel(
        seed=116, n_bars=400 if small else 2000, vol=0.03, regime_gaps=0.06
    ),
    stops=Stops(sl=0.04, tp=0.06),
    costs=Costs(commission_percent=0.001, slippage_percent=0.0005),
)
