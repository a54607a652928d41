"""The broker's order book: every order it accepted, the open ones grouped by symbol.

An :class:`Order` is the broker's mutable record of one accepted order: what was asked,
how much has filled, its state (triggered, trailing reference) and its state history
``[(ts_ns, status), ...]``. The :class:`OrderBook` keeps every order by id (closed ones
too, so a late cancel gets a precise answer), the open ones per symbol code in
acceptance order, and a heap of DAY-order expiry times, so the broker's per-bar work is
proportional to the open orders, never to the history.

Each open order also has a *slot* in two numpy arrays holding its symbol code and a
window ``(below, above)``: the order can change state on a bar only if the bar's
``low <= below`` or ``high >= above`` (:meth:`Order.window`). :meth:`OrderBook.candidates`
tests every open order against a batch in one vectorised pass, so resting orders that
the bar cannot reach cost no Python work at all.
"""

from __future__ import annotations

import heapq
import math
from itertools import count

import numpy as np

from ml4t.backtest.errors import OrderError
from ml4t.backtest.events import (
    OrderSide,
    OrderStatus,
    OrderType,
    SubmitOrder,
    TimeInForce,
)

__all__ = ["Order", "OrderBook"]

_CLOSED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})
_INF = math.inf
_ALWAYS = (_INF, -_INF)  # low <= inf holds on every bar
_NONE = np.empty(0, dtype=np.intp)


class Order:
    """One accepted order as the broker tracks it."""

    __slots__ = (
        "accepted_ns",
        "code",
        "commission",
        "expire_ns",
        "extreme",
        "filled",
        "fills",
        "group",
        "history",
        "limit_price",
        "notional",
        "order_id",
        "order_type",
        "parent_id",
        "quantity",
        "reason",
        "reduce_only",
        "seq",
        "side",
        "sign",
        "slot",
        "status",
        "stop_loss",
        "stop_price",
        "strategy_id",
        "symbol",
        "take_profit",
        "tif",
        "trail_amount",
        "trail_percent",
        "triggered",
    )

    def __init__(
        self,
        *,
        order_id: str,
        strategy_id: str,
        symbol: str,
        code: int,
        side: OrderSide,
        quantity: float,
        order_type: OrderType,
        accepted_ns: int,
        limit_price: float | None = None,
        stop_price: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        tif: TimeInForce = TimeInForce.GTC,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        parent_id: str | None = None,
        reduce_only: bool = False,
        reason: str = "",
    ) -> None:
        self.order_id = order_id
        self.strategy_id = strategy_id
        self.symbol = symbol
        self.code = code
        self.side = side
        self.sign = side.sign
        self.quantity = float(quantity)
        self.order_type = order_type
        self.accepted_ns = accepted_ns
        self.limit_price = limit_price
        self.stop_price = stop_price
        self.trail_amount = trail_amount
        self.trail_percent = trail_percent
        self.tif = tif
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.parent_id = parent_id
        self.reduce_only = reduce_only
        self.reason = reason
        self.group: list[Order] | None = None  # one-cancels-other members, this one included
        self.seq = 0  # acceptance sequence number, set by the broker
        self.slot = -1
        self.filled = 0.0
        self.notional = 0.0
        self.commission = 0.0
        self.fills = 0
        self.triggered = False
        self.extreme = math.nan
        self.expire_ns: int | None = None
        self.status = OrderStatus.ACCEPTED
        self.history: list[tuple[int, OrderStatus]] = [(accepted_ns, OrderStatus.ACCEPTED)]

    @classmethod
    def from_request(cls, request: SubmitOrder, code: int, accepted_ns: int) -> Order:
        return cls(
            order_id=request.order_id,
            strategy_id=request.strategy_id,
            symbol=request.symbol,
            code=code,
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            accepted_ns=accepted_ns,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            trail_amount=request.trail_amount,
            trail_percent=request.trail_percent,
            tif=request.time_in_force,
            stop_loss=request.stop_loss,
            take_profit=request.take_profit,
            parent_id=request.parent_id,
            reduce_only=request.reduce_only,
            reason=request.reason,
        )

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        return self.status not in _CLOSED

    @property
    def is_bracket(self) -> bool:
        return self.stop_loss is not None or self.take_profit is not None

    def window(self) -> tuple[float, float]:
        """``(below, above)``: the order can fill, trigger or move on a bar only if the
        bar's low <= below or its high >= above (a superset of the fill rules)."""
        kind = self.order_type
        buy = self.sign > 0
        if kind is OrderType.MARKET or self.tif in (TimeInForce.IOC, TimeInForce.FOK):
            return _ALWAYS
        if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and self.triggered):
            level = self.limit_price if self.limit_price is not None else _INF
            return (level, _INF) if buy else (-_INF, level)
        if self.triggered:  # a stop or trailing stop with a remainder: a market order now
            return _ALWAYS
        if kind is OrderType.TRAILING_STOP:
            if math.isnan(self.extreme) or self.stop_price is None:
                return _ALWAYS  # placed on its first bar
            # fills on the stop; moves when the bar beats the reference
            return (self.extreme, self.stop_price) if buy else (self.stop_price, self.extreme)
        level = self.stop_price if self.stop_price is not None else _INF
        return (-_INF, level) if buy else (level, _INF)

    def split(self, ratio: float) -> None:
        """Restate the order in post-split shares: quantities x ``ratio``, every price
        level (limit, stop, trailing amount and reference, bracket levels) / ``ratio``;
        its notional and a trailing percent are unchanged."""
        self.quantity *= ratio
        self.filled *= ratio
        for name in ("limit_price", "stop_price", "trail_amount", "stop_loss", "take_profit"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value / ratio)
        self.extreme /= ratio

    def set_status(self, ts_ns: int, status: OrderStatus) -> None:
        if status is not self.status:
            self.status = status
            self.history.append((ts_ns, status))

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id!r}, {self.side.value} {self.quantity:g} {self.symbol} "
            f"{self.order_type.value}, filled={self.filled:g}, {self.status.value})"
        )


class OrderBook:
    """Every accepted order by id; the open ones by symbol code; DAY expiries."""

    __slots__ = (
        "_above",
        "_below",
        "_codes",
        "_expiry_seq",
        "_free",
        "_slots",
        "expiries",
        "open_by_code",
        "orders",
    )

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.open_by_code: dict[int, list[Order]] = {}
        self.expiries: list[tuple[int, int, Order]] = []
        self._expiry_seq = count()
        self._slots = 0  # high-water mark of slots in use
        self._free: list[int] = []
        self._codes = np.zeros(0, dtype=np.intp)
        self._below = np.zeros(0)
        self._above = np.zeros(0)

    def __len__(self) -> int:
        return len(self.orders)

    def get(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def open_order(self, order_id: str | None) -> Order | None:
        """The order with ``order_id`` if it exists and is open."""
        if order_id is None:
            return None
        order = self.orders.get(order_id)
        return order if order is not None and order.is_open else None

    def open_orders(self) -> list[Order]:
        """Every open order, by symbol code then acceptance order."""
        return [o for code in sorted(self.open_by_code) for o in self.open_by_code[code]]

    def add(self, order: Order) -> None:
        if order.order_id in self.orders:
            raise OrderError(
                f"order id {order.order_id!r} is already in the book; give each order its own id"
            )
        self.orders[order.order_id] = order
        self.open_by_code.setdefault(order.code, []).append(order)
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._slots
            self._slots += 1
            if slot >= self._codes.shape[0]:
                self._grow(max(16, 2 * self._codes.shape[0]))
        order.slot = slot
        self._codes[slot] = order.code
        self.refresh(order)

    def refresh(self, order: Order) -> None:
        """Re-derive the order's window after its state changed (trigger, move, modify)."""
        if order.slot >= 0:
            self._below[order.slot], self._above[order.slot] = order.window()

    def recode(self, order: Order, code: int) -> None:
        """Move an open order to another symbol code (a symbol change)."""
        orders = self.open_by_code.get(order.code)
        if orders is not None and order in orders:
            orders.remove(order)
            if not orders:
                del self.open_by_code[order.code]
        order.code = code
        self.open_by_code.setdefault(code, []).append(order)
        self.open_by_code[code].sort(key=lambda o: o.seq)
        if order.slot >= 0:
            self._codes[order.slot] = code
        self.refresh(order)

    def candidates(self, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Sorted codes of the symbols whose open orders a batch may affect, given the
        batch's lows and highs indexed by symbol code (NaN where a symbol has no row).

        Closed slots hold the window (-inf, inf) and never match; NaN compares false.
        """
        n = self._slots
        if not n:
            return _NONE
        codes = self._codes[:n]
        hit = (low[codes] <= self._below[:n]) | (high[codes] >= self._above[:n])
        if not hit.any():
            return _NONE
        return np.unique(codes[hit])

    def _grow(self, size: int) -> None:
        self._codes = _extended(self._codes, size)
        self._below = _extended(self._below, size)
        self._above = _extended(self._above, size)

    def schedule_expiry(self, order: Order, expire_ns: int) -> None:
        order.expire_ns = expire_ns
        heapq.heappush(self.expiries, (expire_ns, next(self._expiry_seq), order))

    def pop_expired(self, ts_ns: int, *, inclusive: bool) -> list[Order]:
        """Open orders whose expiry is before ``ts_ns`` (or at it, if ``inclusive``)."""
        heap = self.expiries
        due: list[Order] = []
        while heap and (heap[0][0] < ts_ns or (inclusive and heap[0][0] == ts_ns)):
            order = heapq.heappop(heap)[2]
            if order.is_open:
                due.append(order)
        return due

    def close(self, order: Order, status: OrderStatus, ts_ns: int) -> None:
        """Mark ``order`` filled, cancelled or expired and drop it from the open lists."""
        order.set_status(ts_ns, status)
        if order.slot >= 0:
            self._below[order.slot], self._above[order.slot] = -_INF, _INF
            self._free.append(order.slot)
            order.slot = -1
        orders = self.open_by_code.get(order.code)
        if orders is None:
            return
        try:
            orders.remove(order)
        except ValueError:
            return
        if not orders:
            del self.open_by_code[order.code]


def _extended(array: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=array.dtype)
    out[: array.shape[0]] = array
    return out
