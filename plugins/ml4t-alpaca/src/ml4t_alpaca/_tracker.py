"""What the venue says about an order, turned into our order events exactly once.

Every source of news about an order (the answer to a submit, a trade update, a lookup
after a reconnect or a restart) carries Alpaca's whole order object at that moment:
its status, its cumulative ``filled_qty`` and ``filled_avg_price``. A :class:`Tracked`
order remembers what has been *reported* (accepted or not, quantity and notional filled,
finished or not) and :meth:`Tracked.apply` emits only what is new:

- ``OrderAccepted`` once, before anything else about the order (a fill that arrives
  first brings its acceptance with it);
- one ``OrderFilled`` per increase of the cumulative filled quantity: a duplicated
  trade update, or a partial fill arriving after a later one, changes nothing (its
  cumulative quantity is not above what was reported); a fill message that was lost is
  recovered from the next snapshot that shows its quantity. The fill's price is the
  execution's own when the increase is that execution, otherwise the one that makes the
  reported notional equal the venue's average price times its cumulative quantity;
- ``OrderCancelled``/``OrderExpired``/``OrderRejected`` once, after any fill the same
  snapshot reveals; nothing after that (a stale ``new`` is ignored).

Fills carry no commission (Alpaca charges none on US equities) and no slippage (the
price is the venue's); ``fill_id`` is Alpaca's execution id when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml4t.backtest import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    OrderUpdated,
    SubmitOrder,
)

__all__ = ["QTY_EPSILON", "Execution", "Tracked", "order_type_of"]

QTY_EPSILON = 1e-9
NOT_YET_ACCEPTED = frozenset({"held", "pending_new", "accepted_for_bidding", "rejected"})
"""Statuses of an order the venue holds but that is not working yet (a bracket's legs
are ``held`` until the entry fills)."""
CANCELLED = frozenset({"canceled"})
EXPIRED = frozenset({"expired", "done_for_day"})
REJECTED = frozenset({"rejected", "suspended"})


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution a trade update reports."""

    execution_id: str
    quantity: float
    price: float
    ts_ns: int


def _f(value: Any) -> float:
    return float(value) if value not in (None, "") else 0.0


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str) or "")


@dataclass(slots=True)
class Tracked:
    """One of our orders (or a bracket child) at the venue."""

    order_id: str
    strategy_id: str
    symbol: str
    side: OrderSide
    quantity: float
    client_order_id: str
    venue_id: str = ""
    request: SubmitOrder | None = None
    reason: str = ""
    accepted: bool = False
    done: bool = False
    filled: float = 0.0
    notional: float = 0.0
    replacements: int = 0
    fills: int = 0
    legs: dict[str, str] = field(default_factory=dict)  # venue id -> our child id
    duplicates: int = 0
    staged: bool = False  # exits to place once filled (the venue could not bracket it)

    def apply(self, order: Any, ts_ns: int, execution: Execution | None = None) -> list[Event]:
        """Our events for the venue's ``order`` object (alpaca-py ``Order``), given at
        ``ts_ns``, with the trade update's ``execution`` if it reported one."""
        if self.done:
            if execution is not None:
                self.duplicates += 1
            return []
        out: list[Event] = []
        status = _value(order.status)
        if order.id is not None:
            self.venue_id = str(order.id)
        if not self.accepted and status not in NOT_YET_ACCEPTED:
            self.accepted = True
            out.append(self._accepted(ts_ns))
        out += self._fills(order, ts_ns, execution)
        if status in CANCELLED or status in EXPIRED or status in REJECTED:
            self.done = True
            out.append(self._finished(status, ts_ns))
        elif status == "filled" and self.filled + QTY_EPSILON >= _f(order.qty):
            self.done = True
        return out

    def updated(self, order: Any, ts_ns: int) -> OrderUpdated:
        """The order after a replacement the venue confirmed."""
        self.venue_id = str(order.id)
        self.client_order_id = order.client_order_id
        self.quantity = _f(order.qty)
        return OrderUpdated(
            ts_event=ts_ns,
            ts_init=ts_ns,
            order_id=self.order_id,
            strategy_id=self.strategy_id,
            symbol=self.symbol,
            status=OrderStatus.PARTIALLY_FILLED if self.filled > 0 else OrderStatus.ACCEPTED,
            quantity=self.quantity,
            filled_quantity=self.filled,
            limit_price=_price(order.limit_price),
            stop_price=_price(order.stop_price),
        )

    # ------------------------------------------------------------------ parts

    def _common(self, ts_ns: int) -> dict[str, Any]:
        return {
            "ts_event": ts_ns,
            "ts_init": ts_ns,
            "order_id": self.order_id,
            "strategy_id": self.strategy_id,
            "symbol": self.symbol,
        }

    def _accepted(self, ts_ns: int) -> OrderAccepted:
        return OrderAccepted(**self._common(ts_ns))

    def _fills(self, order: Any, ts_ns: int, execution: Execution | None) -> list[Event]:
        cum = _f(order.filled_qty)
        delta = cum - self.filled
        if delta <= QTY_EPSILON:
            if execution is not None:
                self.duplicates += 1  # a repeat, or an older update after a newer one
            return []
        if execution is not None and abs(execution.quantity - delta) <= QTY_EPSILON:
            price, fill_id, ts = execution.price, execution.execution_id, execution.ts_ns
        else:
            average = _f(order.filled_avg_price)
            price = (average * cum - self.notional) / delta
            ts = execution.ts_ns if execution is not None else ts_ns
            fill_id = execution.execution_id if execution is not None else ""
        self.fills += 1
        fill_id = fill_id or f"{self.order_id}.{self.fills}"
        self.filled = cum
        self.notional += price * delta
        total = _f(order.qty) or self.quantity
        return [
            OrderFilled(
                **self._common(ts),
                fill_id=fill_id,
                side=self.side,
                quantity=delta,
                price=price,
                remaining_quantity=max(0.0, total - cum) if total - cum > QTY_EPSILON else 0.0,
                reason=self.reason,
            )
        ]

    def _finished(self, status: str, ts_ns: int) -> Event:
        if status in CANCELLED:
            return OrderCancelled(
                **self._common(ts_ns), filled_quantity=self.filled, reason="cancelled at the venue"
            )
        if status in EXPIRED:
            return OrderExpired(**self._common(ts_ns), filled_quantity=self.filled)
        return OrderRejected(
            **self._common(ts_ns),
            rule="alpaca.rejected",
            reason=f"the venue rejected {self.order_id} (status {status})",
        )


def _price(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


def order_type_of(order: Any) -> OrderType:
    """Our order type of an alpaca-py ``Order``."""
    kind = _value(order.type or order.order_type)
    try:
        return OrderType(kind)
    except ValueError:
        return OrderType.MARKET
