"""01 long only: Long entries and exits on signals, market orders, no costs."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Scenario

SCENARIO = Scenario(
    id="01",
    name="long_only",
    description="Long entries and exits on signals, market orders, no costs.",
    data=lambda small: make_panel(seed=101, n_bars=400 if small else 2000),
)
