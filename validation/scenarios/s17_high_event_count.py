"""17 high event count: hundreds of round trips with stops and commission."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario, Stops

SCENARIO = Scenario(
    id="17",
    name="high_event_count",
    description="Hundreds of round trips: frequent signals, stop-loss and take-profit, commission.",
    data=lambda small: make_panel(
        seed=117, n_bars=1500 if small else 6000, entry_rate=0.3, exit_rate=0.2
    ),
    stops=Stops(sl=0.02, tp=0.02),
    costs=Costs(commission_percent=0.0005),
)
