"""11 short only: Short entries and exits only."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario

SCENARIO = Scenario(
    id="11",
    name="short_only",
    description="Short entries and exits only.",
    data=lambda small: make_panel(
        seed=111, n_bars=400 if small else 2000, entry_rate=0.0, exit_rate=0.0, short_rate=0.08
    ),
    long=False,
    short=True,
)
