"""04 take profit: long entries with a 4 % take-profit (a gap through it fills at the open)."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="04",
    name="take_profit",
    description="Long entries with a 4 % take-profit; gaps through it fill at the (better) open.",
    data=lambda small: make_panel(seed=104, n_bars=400 if small else 2000),
    stops=Stops(tp=0.04),
)
