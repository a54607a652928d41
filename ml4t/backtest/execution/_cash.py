"""What the account's cash affords at fill time (``insufficient_cash: reject | resize``).

Pure functions of the fill's quantity, price and commission and the cash the broker
tracks (the portfolio's last snapshot, moved by the broker's own fills since). Costs are
compared within a relative 1e-9 (float noise: a buy sized to spend exactly the cash must
not be refused for the last bit of a rounding error), as vectorbt does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["affordable", "within_cash"]

REL_TOL = 1e-9
ABS_TOL = 1e-12


def within_cash(
    qty: float, price: float, commission: float, cash: float, *, tolerant: bool = True
) -> bool:
    """Whether ``qty * price + commission`` fits in ``cash`` (NaN cash: unknown, fits),
    within a relative 1e-9 when ``tolerant``, else strictly (backtrader).

    >>> within_cash(10, 10.0, 1.0, 111.0), within_cash(10, 10.0, 1.0, 110.0)
    (True, True)
    >>> within_cash(10, 10.0, 1.0, 109.0)
    False
    """
    if math.isnan(cash):
        return True
    cost = qty * price + commission
    if cost <= cash:
        return True
    return tolerant and abs(cost - cash) <= max(REL_TOL * max(abs(cost), abs(cash)), ABS_TOL)


def affordable(
    qty: float,
    cash: float,
    price_of: Callable[[float], float],
    commission_of: Callable[[float, float], float],
    *,
    integer: bool,
    tolerant: bool = True,
) -> float:
    """The largest quantity up to ``qty`` whose cost fits in ``cash`` (0 if none).

    ``price_of(q)`` is the fill price for ``q`` (slippage may depend on size) and
    ``commission_of(q, price)`` its commission. The commission is taken as linear in the
    quantity (``a + b * q``, exact for percent, per-share and per-order fees) to solve
    for the quantity, then the answer is checked and shrunk until it fits; ``integer``
    floors it to whole shares; ``tolerant`` as in :func:`within_cash` (a cash account
    asks for the strict comparison). Less than 1e-9 of ``qty`` is float dust left by an earlier
    resize that spent the cash: nothing fills.

    >>> affordable(100, 1_000.0, lambda q: 10.0, lambda q, p: 0.0, integer=True)
    100.0
    >>> affordable(200, 1_000.0, lambda q: 10.0, lambda q, p: 0.01 * q * p, integer=False)
    99.00990099009901
    """
    if not cash > 0:
        return 0.0
    price = price_of(qty)
    full = commission_of(qty, price)
    half = commission_of(qty / 2.0, price)
    per_unit = (full - half) / (qty / 2.0)
    fixed = full - per_unit * qty
    q = min(qty, (cash - fixed) / (price + per_unit))
    if integer:
        q = float(math.floor(q + 1e-9))
    for _ in range(64):
        if q <= qty * REL_TOL:
            return 0.0
        p = price_of(q)
        if within_cash(q, p, commission_of(q, p), cash, tolerant=tolerant):
            return q
        q = q - 1.0 if integer else q * (1.0 - 1e-12)
    return 0.0
