"""09 trailing stop: Long entries with a 4 % trailing stop."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="09",
    name="trailing_stop",
    description="Long entries with a 4 % trailing stop.",
    data=lambda small: make_panel(seed=109, n_bars=400 if small else 2000),
    stops=Stops(tsl=0.04),
)
