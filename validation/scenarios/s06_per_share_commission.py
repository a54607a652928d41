"""06 per share commission: Long only with a 0.005 per-share commission."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario

SCENARIO = Scenario(
    id="06",
    name="per_share_commission",
    description="Long only with a 0.005 per-share commission.",
    data=lambda small: make_panel(seed=106, n_bars=400 if small else 2000),
    costs=Costs(commission_per_share=0.005),
    skip={
        "vectorbt": (
            "vectorbt has no per-share commission: `fees` is a fraction of notional and "
            "`fixed_fees` a flat amount per order"
        )
    },
)
