"""Position accounting: pure functions of (position, fill) and the account identity.

Conventions (see ``docs/execution.md``):

- a position's quantity is signed (short < 0); its average price is the quantity-weighted
  price of the fills that opened or increased it, commission *not* included;
- a fill that reduces a position realizes ``closed * (price - avg) * sign(position)``
  and leaves the average price unchanged; one that crosses zero (a flip) closes the old
  position at the fill price and opens the rest at the fill price;
- cash moves by ``-signed_quantity * price - commission`` (short sales credit cash);
- realized P&L is gross of commission; slippage is inside the fill prices.

So for every account, in exact arithmetic::

    cash + sum(quantity * last)  ==  initial cash + realized + unrealized - commission

where ``unrealized = sum(quantity * (last - avg))``. :func:`identity_gap` measures how far
the float state is from it.
"""

from __future__ import annotations

from ml4t.backtest.errors import ML4TError

__all__ = [
    "MIN_QUANTITY",
    "QTY_EPSILON",
    "AccountingError",
    "apply_fill",
    "identity_gap",
    "is_dust",
]

QTY_EPSILON = 1e-9
"""Relative tolerance under which a quantity is zero (float fill sums): the one tolerance
every role that keeps positions or order quantities uses."""

MIN_QUANTITY = 1e-8
"""The smallest quantity an order may ask for (a smaller one is rejected as invalid)."""


def is_dust(quantity: float, scale: float) -> bool:
    """Whether ``quantity`` is float noise relative to ``scale`` (within
    :data:`QTY_EPSILON`), e.g. what is left of a position after equal buys and sells.

    >>> is_dust(0.1 + 0.2 - 0.3, 0.3), is_dust(1e-6, 1.0)
    (True, False)
    """
    return abs(quantity) <= QTY_EPSILON * abs(scale)


class AccountingError(ML4TError):
    """The account identity no longer holds: a bug, reported with the numbers."""


def apply_fill(
    quantity: float, avg_price: float, signed_qty: float, price: float
) -> tuple[float, float, float]:
    """``(new quantity, new average price, realized P&L)`` after a fill of ``signed_qty``
    (buy > 0, sell < 0) at ``price`` on a position of ``quantity`` at ``avg_price``.

    >>> apply_fill(100.0, 10.0, -150.0, 12.0)   # long 100 @ 10, sell 150 @ 12: a flip
    (-50.0, 12.0, 200.0)
    """
    new = quantity + signed_qty
    scale = max(abs(quantity), abs(signed_qty))
    if is_dust(new, scale):
        new = 0.0
    if quantity == 0.0 or (quantity > 0) == (signed_qty > 0):
        # open or increase
        if new == 0.0:
            return 0.0, 0.0, 0.0
        return new, (quantity * avg_price + signed_qty * price) / new, 0.0
    closed = min(abs(signed_qty), abs(quantity))
    realized = closed * (price - avg_price) * (1.0 if quantity > 0 else -1.0)
    if new == 0.0:
        return 0.0, 0.0, realized
    if (new > 0) == (quantity > 0):
        return new, avg_price, realized
    return new, price, realized  # flipped: the remainder opened at the fill price


def identity_gap(
    cash: float,
    positions_value: float,
    initial_cash: float,
    realized: float,
    unrealized: float,
    commission: float,
) -> float:
    """``(cash + positions value) - (initial + realized + unrealized - commission)``."""
    return (cash + positions_value) - (initial_cash + realized + unrealized - commission)
