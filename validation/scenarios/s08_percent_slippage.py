"""08 percent slippage: Long only with 0.05 % slippage against every market order."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario

SCENARIO = Scenario(
    id="08",
    name="percent_slippage",
    description="Long only with 0.05 % slippage against every market order.",
    data=lambda small: make_panel(seed=108, n_bars=400 if small else 2000),
    costs=Costs(slippage_percent=0.0005),
)
