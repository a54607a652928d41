"""Orders and their state history, from requests, approvals, broker events and fills.

Every event about an order appends one row to ``order_history``. The ``orders`` table has
one row per order with its last state; a row is written when the order reaches a final
state (filled, cancelled, expired, rejected) and, for orders still working at the end,
when the run ends. So ``orders`` is in order of completion, and memory holds only the
orders that are still working.

Orders the recorder never saw requested (bracket children ``<parent>.sl``/``.tp``, made by
the broker) get a row from their first event, with what that event tells.

A split rescales the working orders of its symbol (:meth:`OrderLog.on_split`; the
broker's ``OrderUpdated`` brings their new quantity and prices, and after a symbol
change their new symbol). A delisting's closing fill (order ``delist:<strategy>:
<symbol>``, never requested) gets a row from that fill, like a bracket child's.

A refused cancel or modify (``OrderRejected.request``) is a history row
(``cancel_rejected``/``modify_rejected``) with the order's status unchanged: the order
keeps working, or stays filled. A malformed request (fields of the wrong type, as a
plugin may publish) is recorded with its fields as text, never raised on.
"""

from __future__ import annotations

from typing import Any

from ml4t.backtest.events import (
    CancelOrder,
    ModifyOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    OrderUpdated,
    RequestKind,
    SubmitOrder,
)
from ml4t.backtest.record._actions import scaled
from ml4t.backtest.record.tables import TableBuffer

__all__ = ["OrderLog"]

_FINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})
_REJECTED = OrderStatus.REJECTED


class _Order:
    __slots__ = (
        "commission",
        "filled",
        "limit_price",
        "notional",
        "order_id",
        "order_type",
        "parent_id",
        "quantity",
        "reason",
        "reject_reason",
        "reject_rule",
        "side",
        "slippage",
        "status",
        "stop_loss",
        "stop_price",
        "strategy_id",
        "submitted_at",
        "symbol",
        "take_profit",
        "time_in_force",
        "trail_amount",
        "trail_percent",
        "updated_at",
    )

    def __init__(self, order_id: str, strategy_id: str, symbol: str, ts: int) -> None:
        self.order_id = order_id
        self.strategy_id = strategy_id
        self.symbol = symbol
        parent, _, leg = order_id.rpartition(".")
        child = leg in ("sl", "tp") and bool(parent)
        self.parent_id: str | None = parent if child else None
        self.order_type: str | None = (
            (OrderType.STOP if leg == "sl" else OrderType.LIMIT).value if child else None
        )
        self.side: str | None = None
        self.time_in_force: str | None = None
        self.quantity: float | None = None
        self.limit_price: float | None = None
        self.stop_price: float | None = None
        self.trail_amount: float | None = None
        self.trail_percent: float | None = None
        self.stop_loss: float | None = None
        self.take_profit: float | None = None
        self.reason = ""
        self.status = OrderStatus.SUBMITTED
        self.filled = 0.0
        self.notional = 0.0
        self.commission = 0.0
        self.slippage = 0.0
        self.submitted_at = ts
        self.updated_at = ts
        self.reject_rule: str | None = None
        self.reject_reason: str | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.order_id,
            self.parent_id,
            self.strategy_id,
            self.symbol,
            self.side,
            self.order_type,
            self.time_in_force,
            self.quantity,
            self.limit_price,
            self.stop_price,
            self.trail_amount,
            self.trail_percent,
            self.stop_loss,
            self.take_profit,
            self.reason,
            self.status.value,
            self.filled,
            self.notional / self.filled if self.filled else None,
            self.commission,
            self.slippage,
            self.submitted_at,
            self.updated_at,
            self.reject_rule,
            self.reject_reason,
        )


class OrderLog:
    """Keeps working orders; writes history rows as events arrive, order rows when done."""

    __slots__ = ("_done", "_open", "history", "orders", "rejected", "submitted")

    def __init__(self, orders: TableBuffer | None, history: TableBuffer | None) -> None:
        self.orders = orders
        self.history = history
        self._open: dict[str, _Order] = {}
        self._done: dict[str, OrderStatus] = {}  # final status of finished orders
        self.submitted = 0
        self.rejected = 0

    def _get(self, order_id: str, strategy_id: str, symbol: str, ts: int) -> _Order:
        order = self._open.get(order_id)
        if order is None:
            order = self._open[order_id] = _Order(order_id, strategy_id, symbol, ts)
        return order

    def _log(
        self,
        ts: int,
        order: _Order,
        event: str,
        *,
        fill_price: float | None = None,
        fill_quantity: float | None = None,
        detail: str = "",
    ) -> None:
        order.updated_at = ts
        if self.history is not None:
            self.history.append(
                (
                    ts,
                    order.order_id,
                    order.strategy_id,
                    order.symbol,
                    event,
                    order.status.value,
                    order.quantity,
                    order.filled,
                    order.limit_price,
                    order.stop_price,
                    fill_price,
                    fill_quantity,
                    detail,
                )
            )
        if order.status in _FINAL or order.status is _REJECTED:
            self._finish(order)

    def _finish(self, order: _Order) -> None:
        del self._open[order.order_id]
        self._done[order.order_id] = order.status
        if self.orders is not None:
            self.orders.append(order.row())

    # ------------------------------------------------------------ events

    def on_request(self, event: SubmitOrder | CancelOrder | ModifyOrder, *, approved: bool) -> None:
        ts = _int(event.ts_event)
        order_id = _text(event.order_id)
        if isinstance(event, SubmitOrder):
            known = order_id in self._open
            order = self._get(order_id, _text(event.strategy_id), _text(event.symbol), ts)
            if not known:
                self.submitted += 1
                order.side = _text(event.side)
                order.order_type = _text(event.order_type)
                order.time_in_force = _text(event.time_in_force)
                order.quantity = _num(event.quantity)
                order.limit_price = _num(event.limit_price)
                order.stop_price = _num(event.stop_price)
                order.trail_amount = _num(event.trail_amount)
                order.trail_percent = _num(event.trail_percent)
                order.stop_loss = _num(event.stop_loss)
                order.take_profit = _num(event.take_profit)
                order.parent_id = _text(event.parent_id) if event.parent_id else order.parent_id
                order.reason = _text(event.reason)
            self._log(ts, order, "approved" if approved else "submitted", detail=order.reason)
            return
        open_order = self._open.get(order_id)
        if open_order is None:  # a request about an order that is already done or unknown
            return
        what = "cancel" if isinstance(event, CancelOrder) else "modify"
        detail = ""
        if isinstance(event, ModifyOrder):
            parts = [
                f"{name}={value}"
                for name, value in (
                    ("quantity", _num(event.quantity)),
                    ("limit_price", _num(event.limit_price)),
                    ("stop_price", _num(event.stop_price)),
                )
                if value is not None
            ]
            detail = " ".join(parts)
        self._log(
            ts, open_order, f"{what}_{'approved' if approved else 'requested'}", detail=detail
        )

    def on_event(self, event: Any) -> None:
        ts = event.ts_event
        order = self._open.get(event.order_id)
        if order is None:
            if not isinstance(event, OrderAccepted):
                self._log_done(event)
                return
            order = self._get(event.order_id, event.strategy_id, event.symbol, ts)
        if isinstance(event, OrderAccepted):
            if order.status is OrderStatus.SUBMITTED:
                order.status = OrderStatus.ACCEPTED
            self._log(ts, order, "accepted")
        elif isinstance(event, OrderRejected) and event.request is not RequestKind.SUBMIT:
            # the order is untouched: it keeps its status, quantity and reservation
            self._log(
                ts, order, f"{event.request}_rejected", detail=f"{event.rule}: {event.reason}"
            )
        elif isinstance(event, OrderRejected):
            order.status = OrderStatus.REJECTED
            order.reject_rule = event.rule
            order.reject_reason = event.reason
            self.rejected += 1
            self._log(ts, order, "rejected", detail=f"{event.rule}: {event.reason}")
        elif isinstance(event, OrderUpdated):
            order.status = event.status
            order.symbol = event.symbol  # a symbol change renames working orders
            order.quantity = event.quantity
            order.limit_price = event.limit_price
            order.stop_price = event.stop_price
            self._log(ts, order, "updated")
        elif isinstance(event, OrderCancelled):
            order.status = OrderStatus.CANCELLED
            self._log(ts, order, "cancelled", detail=event.reason)
        elif isinstance(event, OrderExpired):
            order.status = OrderStatus.EXPIRED
            self._log(ts, order, "expired")

    def _log_done(self, event: Any) -> None:
        """An event about an order that is already done (or never seen): history only."""
        if self.history is None:
            return
        done = self._done.get(event.order_id)
        if isinstance(event, OrderRejected) and event.request is not RequestKind.SUBMIT:
            # a cancel or modify of a finished order: its status stays what it was
            name, detail = f"{event.request}_rejected", f"{event.rule}: {event.reason}"
            status = done if done is not None else OrderStatus.REJECTED
        elif isinstance(event, OrderRejected):
            name, status, detail = "rejected", OrderStatus.REJECTED, f"{event.rule}: {event.reason}"
        elif isinstance(event, OrderCancelled):
            name, status, detail = "cancelled", OrderStatus.CANCELLED, event.reason
        elif isinstance(event, OrderExpired):
            name, status, detail = "expired", OrderStatus.EXPIRED, ""
        else:
            name, status, detail = "updated", event.status, ""
        self.history.append(
            (
                event.ts_event,
                event.order_id,
                event.strategy_id,
                event.symbol,
                name,
                status.value,
                getattr(event, "quantity", None),
                getattr(event, "filled_quantity", None),
                getattr(event, "limit_price", None),
                getattr(event, "stop_price", None),
                None,
                None,
                detail,
            )
        )

    def on_fill(self, fill: OrderFilled) -> None:
        order = self._get(fill.order_id, fill.strategy_id, fill.symbol, fill.ts_event)
        if order.side is None:
            order.side = fill.side.value
        order.filled += fill.quantity
        order.notional += fill.quantity * fill.price
        order.commission += fill.commission
        order.slippage += fill.slippage
        if order.quantity is None:
            order.quantity = order.filled + fill.remaining_quantity
        done = fill.remaining_quantity <= 0.0
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        self._log(
            fill.ts_event,
            order,
            "filled" if done else "partially_filled",
            fill_price=fill.price,
            fill_quantity=fill.quantity,
            detail=fill.reason,
        )

    def on_split(self, symbol: str, ratio: float) -> None:
        """A split of ``ratio``: working orders of ``symbol`` in post-split shares. The
        broker's ``OrderUpdated`` sets their new quantity and prices; what the recorder
        keeps itself is scaled here: the quantity filled so far (its notional, money, is
        unchanged, so the average fill price is divided by ``ratio``) and the bracket
        levels of working entries."""
        for order in self._open.values():
            if order.symbol != symbol:
                continue
            order.filled *= ratio
            order.stop_loss = scaled(order.stop_loss, ratio)
            order.take_profit = scaled(order.take_profit, ratio)

    def finish(self) -> None:
        """Write the rows of orders still working at the end (in submission order)."""
        for order in list(self._open.values()):
            self._finish(order)


def _text(value: Any) -> str:
    """A field as text: a string or enum as it is, anything else (a malformed request's
    field) as its repr."""
    if isinstance(value, str):
        return str(value)
    return "" if value is None else repr(value)


def _num(value: Any) -> float | None:
    """A numeric field as a float (None when absent or not a number)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
