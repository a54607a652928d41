"""10 bracket: a 3 % stop-loss and a 5 % take-profit, one cancelling the other."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="10",
    name="bracket",
    description=(
        "Long entries with a 3 % stop-loss and a 5 % take-profit, one cancelling the other."
    ),
    data=lambda small: make_panel(seed=110, n_bars=400 if small else 2000, vol=0.025),
    stops=Stops(sl=0.03, tp=0.05),
)
