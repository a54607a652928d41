"""15 all three: Long entries with a 2.5 % stop-loss, a 4 % trailing stop and a 5 % take-profit."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import VECTORBT_ONE_STOP_LOSS, Scenario, Stops

SCENARIO = Scenario(
    id="15",
    name="all_three",
    description="Long entries with a 2.5 % stop-loss, a 4 % trailing stop and a 5 % take-profit.",
    data=lambda small: make_panel(seed=115, n_bars=400 if small else 2000),
    stops=Stops(sl=0.025, tsl=0.04, tp=0.05),
    skip={"vectorbt": VECTORBT_ONE_STOP_LOSS},
)
