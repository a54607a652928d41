"""07 fixed slippage: long only, 0.02 (price units) of slippage per share against each order."""

from __future__ import annotations

from validation.data import make_panel
from validation.spec import Costs, Scenario

SCENARIO = Scenario(
    id="07",
    name="fixed_slippage",
    description="Long only with 0.02 (price units) of slippage per share against every order.",
    data=lambda small: make_panel(seed=107, n_bars=400 if small else 2000),
    costs=Costs(slippage_fixed=0.02),
    skip={
        "vectorbt": (
            "vectorbt's `slippage` is a fraction of the price; "
            "a fixed amount per share cannot be expressed"
        )
    },
)
