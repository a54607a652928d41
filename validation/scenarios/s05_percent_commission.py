"""05 percent commission: Long only with a 0.1 % commission on every fill's notional."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario

SCENARIO = Scenario(
    id="05",
    name="percent_commission",
    description="Long only with a 0.1 % commission on every fill's notional.",
    data=lambda small: make_panel(seed=105, n_bars=400 if small else 2000),
    costs=Costs(commission_percent=0.001),
)
