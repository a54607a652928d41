"""The broker's side of corporate actions: working orders and positions restated.

- **split** of ratio r: every working order of the symbol is restated in post-split
  shares (:meth:`Order.split`: quantity x r, price levels / r; an order for whole
  shares keeps whole shares, truncated, and one left with none is cancelled) and
  announced with ``OrderUpdated``; each strategy's position is multiplied by r, and the fraction a
  whole-share position is left with (:func:`~ml4t.backtest._corporate.split_quantity`)
  is bought back for cash in lieu: an ``OrderFilled`` with reason ``cash_in_lieu`` at
  the post-split price (the last close before the split / r), no commission.
- **delisting**: the symbol's working orders are cancelled (reason ``delisted``) and
  each strategy's position is closed by an ``OrderFilled`` with reason ``delisted`` at
  the delisting price, no commission.
- **symbol change**: working orders and positions move to the new symbol's code; the
  orders are announced with ``OrderUpdated`` naming the new symbol.
- **dividend**: nothing here (the portfolio books it).

The fills carry an ``order_id`` no request had (``in-lieu:<strategy>:<symbol>``,
``delist:<strategy>:<symbol>``): every role applies them as it applies any fill.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ml4t.backtest._accounting import is_dust
from ml4t.backtest._corporate import split_quantity
from ml4t.backtest.events import ActionKind, CorporateAction, OrderFilled, OrderSide
from ml4t.backtest.execution.orders import Order, OrderBook

__all__ = ["ActionDesk"]


class ActionDesk:
    """Applies corporate actions to the broker's book and per-strategy positions.

    ``held`` is the broker's ``(strategy, code) -> signed position``; ``code_of`` maps a
    symbol to its code; ``fill`` publishes an ``OrderFilled``; ``cancel`` and
    ``updated`` are the broker's own order announcements.
    """

    def __init__(
        self,
        book: OrderBook,
        held: dict[tuple[str, int], float],
        code_of: Callable[[str], int],
        fill: Callable[[OrderFilled], None],
        cancel: Callable[[Order, int, str], None],
        updated: Callable[[Order, int], None],
    ) -> None:
        self._book = book
        self._held = held
        self._code_of = code_of
        self._fill = fill
        self._cancel = cancel
        self._updated = updated

    def apply(self, action: CorporateAction) -> None:
        code = self._code_of(action.symbol)
        kind = action.action
        if kind is ActionKind.SPLIT:
            self._split(action, code)
        elif kind is ActionKind.DELISTING:
            self._delist(action, code)
        elif kind is ActionKind.SYMBOL_CHANGE:
            self._rename(action, code)

    def _working(self, code: int) -> list[Order]:
        return [o for o in self._book.open_by_code.get(code, ()) if o.is_open]

    def _positions(self, code: int) -> list[tuple[str, float]]:
        return [(s, q) for (s, c), q in self._held.items() if c == code and q != 0.0]

    def _split(self, action: CorporateAction, code: int) -> None:
        ts, ratio = action.ts_event, action.ratio
        for order in self._working(code):
            remaining = order.remaining
            order.split(ratio)
            kept, fraction = split_quantity(remaining, ratio)
            if fraction:  # an order for whole shares stays whole
                order.quantity = order.filled + kept
            if order.remaining <= 0.0:
                self._cancel(order, ts, f"the {ratio:g}-for-1 split left no whole share")
                continue
            self._book.refresh(order)
            self._updated(order, ts)
        price = action.price / ratio if action.price is not None else math.nan
        for strategy, held in self._positions(code):
            kept, fraction = split_quantity(held, ratio)
            self._held[(strategy, code)] = held * ratio
            if fraction != 0.0:
                self._close(action, code, strategy, fraction, price, "cash_in_lieu", "in-lieu")
            self._held[(strategy, code)] = kept

    def _delist(self, action: CorporateAction, code: int) -> None:
        ts = action.ts_event
        for order in self._working(code):
            self._cancel(order, ts, f"delisted: {action.symbol} stopped trading")
        price = action.price if action.price is not None else math.nan
        for strategy, held in self._positions(code):
            self._close(action, code, strategy, held, price, "delisted", "delist")
            self._held[(strategy, code)] = 0.0

    def _close(
        self,
        action: CorporateAction,
        code: int,
        strategy: str,
        signed: float,
        price: float,
        reason: str,
        prefix: str,
    ) -> None:
        """Close ``signed`` shares of ``strategy``'s position at ``price``."""
        if is_dust(signed, 1.0):
            return
        order_id = f"{prefix}:{strategy}:{action.symbol}"
        self._fill(
            OrderFilled(
                ts_event=action.ts_event,
                ts_init=action.ts_event,
                fill_id=f"{order_id}:{action.ts_event}",
                order_id=order_id,
                strategy_id=strategy,
                symbol=action.symbol,
                side=OrderSide.SELL if signed > 0 else OrderSide.BUY,
                quantity=abs(signed),
                price=price,
                reason=reason,
            )
        )

    def _rename(self, action: CorporateAction, code: int) -> None:
        ts, new = action.ts_event, self._code_of(action.new_symbol)
        for order in self._working(code):
            self._book.recode(order, new)
            order.symbol = action.new_symbol
            self._updated(order, ts)
        for strategy, held in self._positions(code):
            self._held[(strategy, new)] = self._held.get((strategy, new), 0.0) + held
            self._held[(strategy, code)] = 0.0
