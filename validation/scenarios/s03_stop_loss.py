"""03 stop loss: Long entries with a 3 % stop-loss; gaps through the stop fill at the open."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="03",
    name="stop_loss",
    description="Long entries with a 3 % stop-loss; gaps through the stop fill at the open.",
    data=lambda small: make_panel(seed=103, n_bars=400 if small else 2000),
    stops=Stops(sl=0.03),
)
