"""13 trailing take profit: Long entries with a 3 % trailing stop and a 5 % take-profit."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="13",
    name="trailing_take_profit",
    description="Long entries with a 3 % trailing stop and a 5 % take-profit.",
    data=lambda small: make_panel(seed=113, n_bars=400 if small else 2000),
    stops=Stops(tsl=0.03, tp=0.05),
)
