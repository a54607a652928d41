"""Is an order request well formed? Pure checks shared by the risk manager and the broker.

Each function returns ``None`` for a good request or a sentence saying what is wrong,
with the offending value, so the caller can publish it as an
:class:`~ml4t.backtest.events.OrderRejected` reason. Nothing here raises on bad input:
a NaN, an infinity or a negative number is an expected outcome, not a crash.
"""

from __future__ import annotations

import math

from ml4t.backtest._accounting import MIN_QUANTITY
from ml4t.backtest.events import (
    CancelOrder,
    ModifyOrder,
    OrderSide,
    OrderType,
    SubmitOrder,
    TimeInForce,
)

__all__ = [
    "INVALID_ORDER",
    "MIN_QUANTITY",
    "invalid_amendment",
    "invalid_cancel",
    "invalid_modify",
    "invalid_submit",
]

INVALID_ORDER = "invalid_order"
"""The ``rule`` of a rejection for a malformed request."""

_NEEDS_LIMIT = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_NEEDS_STOP = (OrderType.STOP, OrderType.STOP_LIMIT)


def _bad_positive(name: str, value: float | None) -> str | None:
    """Why ``value`` is not a finite number > 0 (None if it is, or if it is absent)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if not math.isfinite(value):
        return f"{name} must be finite, got {value!r}"
    if value <= 0:
        return f"{name} must be positive, got {value!r}"
    return None


def _bad_text(name: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        return f"{name} must be a string, got {value!r}"
    if not value and not optional:
        return f"{name} is empty"
    return None


def _well_typed(order: SubmitOrder) -> bool:
    """Every field of ``order`` exactly of its type (the common case, checked at once;
    anything else goes through :func:`_bad_fields`, which names the field)."""
    return (
        type(order.order_id) is str
        and type(order.strategy_id) is str
        and type(order.symbol) is str
        and bool(order.order_id and order.strategy_id and order.symbol)
        and type(order.side) is OrderSide
        and type(order.order_type) is OrderType
        and type(order.time_in_force) is TimeInForce
        and type(order.reduce_only) is bool
        and (order.parent_id is None or type(order.parent_id) is str)
        and (order.reason is None or type(order.reason) is str)
    )


def _bad_fields(order: SubmitOrder) -> str | None:
    """Why a field of ``order`` has the wrong type (a request built without the codec,
    by a plugin or another component, is not type-checked by msgspec)."""
    if _well_typed(order):
        return None
    for name in ("order_id", "strategy_id", "symbol"):
        problem = _bad_text(name, getattr(order, name))
        if problem is not None:
            return problem
    if not isinstance(order.side, OrderSide):
        return f"side must be one of {[s.value for s in OrderSide]}, got {order.side!r}"
    if not isinstance(order.order_type, OrderType):
        return f"order_type must be one of {[t.value for t in OrderType]}, got {order.order_type!r}"
    if not isinstance(order.time_in_force, TimeInForce):
        return (
            f"time_in_force must be one of {[t.value for t in TimeInForce]}, got "
            f"{order.time_in_force!r}"
        )
    if not isinstance(order.reduce_only, bool):
        return f"reduce_only must be True or False, got {order.reduce_only!r}"
    for name in ("parent_id", "reason"):
        problem = _bad_text(name, getattr(order, name), optional=True)
        if problem is not None:
            return problem
    return None


def invalid_cancel(request: CancelOrder) -> str | None:
    """Why a cancel request is malformed (ids that are not strings), or None."""
    for name in ("order_id", "strategy_id"):
        problem = _bad_text(name, getattr(request, name))
        if problem is not None:
            return f"{problem} (cancel request)"
    return None


def invalid_submit(order: SubmitOrder) -> str | None:
    """Why ``order`` is malformed, or None.

    Checks: every field of the right type; quantity and every given price finite and
    positive, the quantity at least :data:`MIN_QUANTITY`; the prices each order type
    needs (limit for limit/stop-limit, stop for stop/stop-limit, one trail for a
    trailing stop, a trail percent below 1); no price an order type would ignore; a
    bracket's stop-loss and take-profit on the right sides of each other (and of the
    limit price, when there is one).
    """
    problem = _bad_fields(order)
    if problem is not None:
        return problem
    for name in (
        "quantity",
        "limit_price",
        "stop_price",
        "trail_amount",
        "trail_percent",
        "stop_loss",
        "take_profit",
    ):
        problem = _bad_positive(name, getattr(order, name))
        if problem is not None:
            return f"{problem} ({_describe(order)})"
    if order.quantity < MIN_QUANTITY:
        return (
            f"quantity {order.quantity!r} is below the minimum order quantity {MIN_QUANTITY:g} "
            f"({_describe(order)})"
        )
    kind = order.order_type
    if kind in _NEEDS_LIMIT and order.limit_price is None:
        return f"a {kind.value} order needs limit_price ({_describe(order)})"
    if kind in _NEEDS_STOP and order.stop_price is None:
        return f"a {kind.value} order needs stop_price ({_describe(order)})"
    if kind not in _NEEDS_LIMIT and order.limit_price is not None:
        return f"a {kind.value} order takes no limit_price ({_describe(order)})"
    if kind is OrderType.TRAILING_STOP:
        given = (order.trail_amount is not None) + (order.trail_percent is not None)
        if given != 1:
            return (
                "a trailing_stop order needs exactly one of trail_amount and trail_percent "
                f"({_describe(order)})"
            )
        if order.trail_percent is not None and order.trail_percent >= 1:
            return (
                f"trail_percent is a fraction below 1 (0.05 = 5 %), got {order.trail_percent} "
                f"({_describe(order)})"
            )
    else:
        if order.trail_amount is not None or order.trail_percent is not None:
            return f"only a trailing_stop order takes a trail ({_describe(order)})"
        if kind not in _NEEDS_STOP and order.stop_price is not None:
            return f"a {kind.value} order takes no stop_price ({_describe(order)})"
    return _bad_bracket(order)


def _bad_bracket(order: SubmitOrder) -> str | None:
    sl, tp = order.stop_loss, order.take_profit
    if sl is None and tp is None:
        return None
    buy = order.side.sign > 0
    if sl is not None and tp is not None and (sl >= tp if buy else sl <= tp):
        side = "below" if buy else "above"
        return (
            f"a {order.side.value} bracket needs stop_loss {side} take_profit, got "
            f"stop_loss={sl} take_profit={tp} ({_describe(order)})"
        )
    entry = order.limit_price
    if entry is not None:
        if sl is not None and (sl >= entry if buy else sl <= entry):
            side = "below" if buy else "above"
            return (
                f"a {order.side.value} bracket needs stop_loss {side} the limit price, got "
                f"stop_loss={sl} limit_price={entry} ({_describe(order)})"
            )
        if tp is not None and (tp <= entry if buy else tp >= entry):
            side = "above" if buy else "below"
            return (
                f"a {order.side.value} bracket needs take_profit {side} the limit price, got "
                f"take_profit={tp} limit_price={entry} ({_describe(order)})"
            )
    return None


def invalid_modify(request: ModifyOrder) -> str | None:
    """Why ``request`` is malformed (a bad or missing new value), or None."""
    for name in ("order_id", "strategy_id"):
        problem = _bad_text(name, getattr(request, name))
        if problem is not None:
            return f"{problem} (modify request)"
    if request.quantity is None and request.limit_price is None and request.stop_price is None:
        return (
            f"modify of {request.order_id} changes nothing: give quantity, limit_price "
            "or stop_price"
        )
    for name in ("quantity", "limit_price", "stop_price"):
        problem = _bad_positive(name, getattr(request, name))
        if problem is not None:
            return f"{problem} (modify of {request.order_id})"
    if request.quantity is not None and request.quantity < MIN_QUANTITY:
        return (
            f"quantity {request.quantity!r} is below the minimum order quantity "
            f"{MIN_QUANTITY:g} (modify of {request.order_id})"
        )
    return None


def invalid_amendment(request: ModifyOrder, kind: OrderType, filled: float) -> str | None:
    """Why ``request`` cannot apply to a working order of type ``kind`` with ``filled``
    already filled (checked after :func:`invalid_modify`), or None."""
    order_id = request.order_id
    if request.quantity is not None and request.quantity <= filled:
        return (
            f"new quantity {request.quantity:g} of {order_id} must exceed the "
            f"{filled:g} already filled (cancel the order instead)"
        )
    if request.limit_price is not None and kind not in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return f"{order_id} is a {kind.value} order and has no limit price"
    stops = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)
    if request.stop_price is not None and kind not in stops:
        return f"{order_id} is a {kind.value} order and has no stop price"
    return None


def _describe(order: SubmitOrder) -> str:
    return f"{order.order_id}: {order.side} {order.quantity!r} {order.symbol}"
