"""20 target-weight rebalance: 100 symbols, the top 20 of a score held at equal weight."""

from __future__ import annotations

import numpy as np

from validation.data import Panel, make_panel
from validation.spec import Costs, Scenario

TOP = 20
WEIGHT = 0.045  # 20 x 4.5 % = 90 % invested: the rest pays costs and price moves


def top_weights(panel: Panel, i: int) -> dict[str, float]:
    """Equal weights on the 20 symbols with the best trailing 20-bar return at bar ``i``
    (a deterministic cross-sectional score); every other symbol goes to zero."""
    close = panel.wide("close")
    score = close[i] / close[max(i - 20, 0)]
    order = np.argsort(-score, kind="stable")[:TOP]
    return {panel.symbols[k]: WEIGHT for k in sorted(order.tolist())}


SCENARIO = Scenario(
    id="20",
    name="target_weight_rebalance",
    description=(
        "100 symbols; every 5 bars the 20 with the best 20-bar return are held at 4.5 % of "
        "equity each (the rest sold), sells before buys, with 0.1 % commission: vectorbt "
        "`from_orders` with target percentages (fractional shares, at the close), "
        "backtrader `order_target_percent` (whole shares, at the next open)."
    ),
    data=lambda small: make_panel(seed=120, n_bars=120 if small else 500, n_symbols=100),
    sizing="rebalance",
    rebalance_every=5,
    weights=top_weights,
    costs=Costs(commission_percent=0.001),
    large=True,
)
