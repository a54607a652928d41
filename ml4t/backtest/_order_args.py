"""The arguments of the strategy's order helpers: their types, and the request they make.

:func:`order_request` checks every argument of an order helper at the call (an
:class:`~ml4t.backtest.errors.OrderError` naming the argument and its value, before
anything is sent) and builds the :class:`~ml4t.backtest.events.SubmitOrder`.
:class:`OrderOptions` / :class:`TargetOptions` type the keywords the target helpers pass
on (``**options: Unpack[TargetOptions]``), so a type checker or an IDE catches a
misspelt keyword such as ``limt=``; ``buy`` and ``sell`` spell them out.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, TypedDict, TypeVar

import numpy as np

from ml4t.backtest.errors import OrderError
from ml4t.backtest.events import OrderSide, OrderType, SubmitOrder, TimeInForce

__all__ = ["OrderOptions", "TargetOptions", "finite", "optional_price", "order_request", "positive"]


class OrderOptions(TypedDict, total=False):
    """The keywords of an order the target helpers pass on to
    :meth:`StrategyBase.submit_order` (typed, so a type checker or an IDE catches
    ``limt=``); see there for their meaning."""

    order_type: OrderType | str | None
    limit: float | None
    stop: float | None
    trail_amount: float | None
    trail_percent: float | None
    tif: TimeInForce | str
    stop_loss: float | None
    take_profit: float | None
    reduce_only: bool


class TargetOptions(OrderOptions, total=False):
    """:class:`OrderOptions` and the order's ``reason``."""

    reason: str


def order_request(
    order_id: str,
    strategy_id: str,
    now_ns: int,
    symbol: str,
    side: OrderSide | str,
    quantity: float,
    *,
    order_type: OrderType | str | None = None,
    limit: float | None = None,
    stop: float | None = None,
    trail_amount: float | None = None,
    trail_percent: float | None = None,
    tif: TimeInForce | str = TimeInForce.GTC,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    reduce_only: bool = False,
    reason: str = "",
) -> SubmitOrder:
    """The request of an order helper's call, every argument checked (see the module)."""
    side = _enum(OrderSide, side, "side")
    tif = _enum(TimeInForce, tif, "tif")
    kind = (
        _infer_type(limit, stop, trail_amount, trail_percent)
        if order_type is None
        else _enum(OrderType, order_type, "order_type")
    )
    if not isinstance(symbol, str) or not symbol:
        raise OrderError(f"symbol must be a non-empty string, got {symbol!r}")
    if not isinstance(reduce_only, bool):
        raise OrderError(f"reduce_only must be True or False, got {reduce_only!r}")
    if not isinstance(reason, str):
        raise OrderError(f"reason must be a string, got {reason!r}")
    return SubmitOrder(
        ts_event=now_ns,
        ts_init=now_ns,
        order_id=order_id,
        strategy_id=strategy_id,
        symbol=symbol,
        side=side,
        quantity=positive("quantity", quantity),
        order_type=kind,
        limit_price=optional_price("limit", limit),
        stop_price=optional_price("stop", stop),
        trail_amount=optional_price("trail_amount", trail_amount),
        trail_percent=optional_price("trail_percent", trail_percent),
        time_in_force=tif,
        stop_loss=optional_price("stop_loss", stop_loss),
        take_profit=optional_price("take_profit", take_profit),
        reduce_only=reduce_only,
        reason=reason,
    )


_Enum = TypeVar("_Enum", bound=StrEnum)


def _enum(kind: type[_Enum], value: object, name: str) -> _Enum:
    """``value`` as a member of the StrEnum ``kind``: the member itself, or its value or
    name in any case."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        for member in kind:
            if text in (member.value, member.name.lower()):
                return member
    raise OrderError(f"{name} must be one of {[m.value for m in kind]}, got {value!r}")


def finite(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise OrderError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise OrderError(f"{name} must be finite, got {value!r}")
    return value


def positive(name: str, value: Any) -> float:
    value = finite(name, value)
    if value <= 0.0:
        raise OrderError(f"{name} must be positive, got {value!r}")
    return value


def optional_price(name: str, value: Any) -> float | None:
    return None if value is None else positive(name, value)


def _infer_type(
    limit: float | None, stop: float | None, trail_amount: float | None, trail_pct: float | None
) -> OrderType:
    if trail_amount is not None or trail_pct is not None:
        return OrderType.TRAILING_STOP
    if limit is not None and stop is not None:
        return OrderType.STOP_LIMIT
    if limit is not None:
        return OrderType.LIMIT
    if stop is not None:
        return OrderType.STOP
    return OrderType.MARKET
