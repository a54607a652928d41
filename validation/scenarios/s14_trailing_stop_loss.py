"""14 trailing stop loss: Long entries with a 4 % trailing stop and a fixed 2.5 % stop-loss."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import VECTORBT_ONE_STOP_LOSS, Scenario, Stops

SCENARIO = Scenario(
    id="14",
    name="trailing_stop_loss",
    description="Long entries with a 4 % trailing stop and a fixed 2.5 % stop-loss.",
    data=lambda small: make_panel(seed=114, n_bars=400 if small else 2000),
    stops=Stops(sl=0.025, tsl=0.04),
    skip={"vectorbt": VECTORBT_ONE_STOP_LOSS},
)
