"""02 long short: Long and short signals; an opposite entry reverses the position in one order."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario

SCENARIO = Scenario(
    id="02",
    name="long_short",
    description="Long and short signals; an opposite entry reverses the position in one order.",
    data=lambda small: make_panel(seed=102, n_bars=400 if small else 2000, short_rate=0.08),
    short=True,
)
