"""12 short trailing stop: short entries with a 4 % trailing stop above the best price."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario, Stops

SCENARIO = Scenario(
    id="12",
    name="short_trailing_stop",
    description=(
        "Short entries with a 4 % trailing stop above the best price since entry (the "
        "lowest low under vectorbt, the lowest close under backtrader)."
    ),
    data=lambda small: make_panel(
        seed=112, n_bars=400 if small else 2000, entry_rate=0.0, exit_rate=0.0, short_rate=0.08
    ),
    long=False,
    short=True,
    stops=Stops(tsl=0.04),
)
