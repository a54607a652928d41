"""Whether the broker takes a submitted order: the checks it runs before a request
becomes an :class:`~ml4t.backtest.execution.orders.Order` (the risk manager's rules ran
before; these are the venue's own): :func:`admit` gives the symbol's code, or the
``(rule, reason)`` of the ``OrderRejected``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ml4t.backtest._accounting import QTY_EPSILON
from ml4t.backtest._universe import Universe
from ml4t.backtest._validation import INVALID_ORDER, invalid_submit
from ml4t.backtest.events import OrderSide, SubmitOrder

__all__ = ["admit"]

_RESERVED_SUFFIXES = (".sl", ".tp")


def admit(
    request: SubmitOrder,
    *,
    universe: Universe | None,
    known_ids: Collection[str],
    held: Mapping[tuple[str, int], float],
    hard_to_borrow: Collection[str],
) -> int | tuple[str, str]:
    """The symbol's code when the broker takes the order, else ``(rule, reason)``.
    ``held`` is the broker's per-(strategy, code) position."""
    problem = invalid_submit(request)
    if problem is not None:
        return INVALID_ORDER, problem
    code = universe.code.get(request.symbol) if universe is not None else None
    if code is None:
        why = "no market data has been seen yet" if universe is None else "not in the universe"
        return (
            "unknown_symbol",
            f"unknown symbol {request.symbol!r} ({why}); order {request.order_id} refused",
        )
    if request.order_id.endswith(_RESERVED_SUFFIXES):
        return (
            INVALID_ORDER,
            f"order id {request.order_id!r}: ids ending in .sl or .tp are reserved for the "
            "children of bracket orders",
        )
    if request.order_id in known_ids:
        return (
            "duplicate_order_id",
            f"order id {request.order_id!r} is already used; give every order a new id",
        )
    position = held.get((request.strategy_id, code), 0.0)
    if request.reduce_only and position * request.side.sign >= 0.0:
        return (
            "reduce_only",
            f"reduce-only order {request.order_id} ({request.side} {request.quantity:g} "
            f"{request.symbol}) has no position to reduce: {position:+g} held",
        )
    if (
        request.symbol in hard_to_borrow
        and request.side is OrderSide.SELL
        and request.quantity > position * (1 + QTY_EPSILON)
    ):
        return (
            "hard_to_borrow",
            f"{request.symbol} is hard to borrow (execution.borrow): selling "
            f"{request.quantity:g} with {position:+g} held would open or increase a short",
        )
    return code
