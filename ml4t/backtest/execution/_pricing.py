"""How the simulated broker prices a fill: the rule price of each order type on a bar,
stop and trailing-stop triggers, and slippage, under the knobs of :class:`BrokerConfig`
resolved once (so matching compares no strings).

The rules themselves are the pure functions of :mod:`~ml4t.backtest.execution.fills`;
:class:`Pricer` applies them to the broker's :class:`~ml4t.backtest.execution.orders.Order`
state (a stop's trigger, a trailing stop's extreme) and reports each change through the
``on_update`` callback the broker gives it (an ``OrderUpdated`` event).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ml4t.backtest.events import OrderType
from ml4t.backtest.execution._batch import BarPrices, BatchView
from ml4t.backtest.execution.config import BrokerConfig
from ml4t.backtest.execution.costs import SlippageModel
from ml4t.backtest.execution.fills import (
    limit_fill,
    stop_fill,
    stop_limit_fill,
    trail_extreme,
    trail_reference,
    trail_stop,
)
from ml4t.backtest.execution.orders import Order

__all__ = ["Pricer", "conflict_kind"]

NAN = math.nan


class Pricer:
    """Rule prices and slippage for one broker's configuration."""

    __slots__ = (
        "_batch",
        "_on_update",
        "close_only",
        "fill_close",
        "slip_cap",
        "slip_fills",
        "slippage",
        "stop_fill",
        "through",
        "trail_before",
        "trail_close",
    )

    def __init__(
        self,
        config: BrokerConfig,
        slippage: SlippageModel,
        batch: BatchView,
        on_update: Callable[[Order, int], None],
    ) -> None:
        self.slippage = slippage
        self._batch = batch
        self._on_update = on_update
        self.through = config.limit_fill == "through"
        self.fill_close = config.fill_timing == "next_close"
        self.close_only = config.intrabar == "close"
        self.stop_fill = config.stop_fill
        self.trail_close = config.trail_watermark == "close"
        self.trail_before = config.trail_update == "before_check"
        self.slip_fills = config.slippage_fills
        self.slip_cap = config.slippage_cap == "bar"

    def rule_price(self, order: Order, bar: BarPrices, ts: int, at_close: bool = False) -> float:
        """The rule price of ``order`` on ``bar`` (NaN: no fill); updates trigger state."""
        kind = order.order_type
        sign = order.sign
        if self.close_only:
            o = h = lo = bar.c
        else:
            o, h, lo = bar.o, bar.h, bar.lo
        if kind is OrderType.MARKET or (order.triggered and kind is not OrderType.STOP_LIMIT):
            return bar.c if at_close or self.fill_close else o
        if kind is OrderType.LIMIT:
            return limit_fill(sign, order.limit_price, o, h, lo, self.through)  # type: ignore[arg-type]
        if kind is OrderType.STOP:
            price = stop_fill(sign, order.stop_price, o, h, lo)  # type: ignore[arg-type]
            order.triggered = not math.isnan(price)
            return self.stop_price(order, price, h, lo)
        if kind is OrderType.STOP_LIMIT:
            if order.triggered:
                return limit_fill(sign, order.limit_price, o, h, lo, self.through)  # type: ignore[arg-type]
            triggered, price = stop_limit_fill(
                sign,
                order.stop_price,  # type: ignore[arg-type]
                order.limit_price,  # type: ignore[arg-type]
                o,
                h,
                lo,
                self.through,
            )
            if triggered:
                order.triggered = True
                self._on_update(order, ts)
            return price
        # trailing stop: place the level on the first bar it sees, then check it
        if math.isnan(order.extreme):
            if order.stop_price is None:
                order.extreme = o
                order.stop_price = trail_stop(sign, o, order.trail_amount, order.trail_percent)
                self._on_update(order, ts)
            else:
                order.extreme = trail_reference(
                    sign, order.stop_price, order.trail_amount, order.trail_percent
                )
        price = stop_fill(sign, order.stop_price, o, h, lo)  # type: ignore[arg-type]
        if self.trail_before and math.isnan(price):
            # the bar's extreme came first and moved the stop; the price then comes back
            # through the new level (never a gap: the open was before the move)
            self.ratchet(order, bar, ts)
            level = order.stop_price
            if level is not None and (lo <= level if sign < 0 else h >= level):
                price = level
        order.triggered = not math.isnan(price)
        return self.stop_price(order, price, h, lo)

    def stop_price(self, order: Order, price: float, h: float, lo: float) -> float:
        """A triggered stop's rule price under ``stop_fill``."""
        rule = self.stop_fill
        if rule == "open_or_level" or math.isnan(price):
            return price
        if rule == "level":
            return order.stop_price  # type: ignore[return-value]
        return lo if order.sign < 0 else h

    def ratchet(self, order: Order, bar: BarPrices, ts: int) -> None:
        """Move a trailing stop with the bar's extreme (or close: ``trail_watermark``)."""
        sign = order.sign
        if self.trail_close or self.close_only:
            h = lo = bar.c
        else:
            h, lo = bar.h, bar.lo
        order.extreme = trail_extreme(sign, order.extreme, h, lo)
        level = trail_stop(sign, order.extreme, order.trail_amount, order.trail_percent)
        old = order.stop_price
        if old is None or (level > old if sign < 0 else level < old):
            order.stop_price = level
            self._on_update(order, ts)

    def slipped(self, order: Order, qty: float, rule_price: float, bar: BarPrices) -> float:
        """The fill price: the rule price moved by the slippage model, as far as
        ``slippage_fills`` and ``slippage_cap`` allow."""
        rule = self.slip_fills
        kind = order.order_type
        limit = order.limit_price
        if rule == "market" and kind is not OrderType.MARKET:
            return rule_price
        if rule == "except_limit_price" and limit is not None and rule_price == limit:
            return rule_price
        column = self.slippage.column
        extra = self._batch.value(column, bar.row) if column is not None else NAN
        price = self.slippage.price(order.sign, rule_price, qty, bar.v, extra)
        if rule == "except_limit_price" and limit is not None:
            # backtrader: a slipped limit never passes its limit; a buy is also held
            # under the bar's high, a sell only by its limit (not by the bar's low)
            if order.sign > 0:
                return min(price, limit, bar.h) if self.slip_cap else min(price, limit)
            return max(price, limit)
        if self.slip_cap:
            price = min(max(price, bar.lo), bar.h)
        return price


def conflict_kind(order: Order) -> str:
    """How a one-cancels-other member ranks in :func:`group_winner`."""
    kind = order.order_type
    if kind is OrderType.MARKET or (order.triggered and kind is not OrderType.STOP_LIMIT):
        return "market"
    if kind is OrderType.LIMIT or (kind is OrderType.STOP_LIMIT and order.triggered):
        return "limit"
    return "stop"
