"""The risk manager's own view of the account, built only from events.

It never holds the portfolio: positions come from ``PositionChanged``, cash, equity and
exposure from ``PortfolioSnapshot``, prices from ``MarketBatch`` closes, and the orders it
approved stay reserved (:class:`Reservation`) until fills, cancels, expiries or rejections
release them. Per-symbol state is numpy arrays indexed by symbol code.

Open orders reserve what they would add if they filled in full at their estimated price:
their quantity (per side and symbol), cash (buys, with their estimated commission and
slippage), gross and net exposure. A fill releases its part, since the position and
snapshot now carry it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ml4t.backtest._days import DateDays, TradingDays
from ml4t.backtest._symbols import SymbolTable
from ml4t.backtest._universe import Universe
from ml4t.backtest.events import OrderType, SubmitOrder

__all__ = ["CostEstimate", "Reservation", "RiskView"]

CostEstimate = Callable[[int, float, float, float], float]
"""``(sign, quantity, price, volume) -> money``: an order's estimated commission and
slippage if it filled at ``price`` on a bar of ``volume`` (NaN volume: unknown)."""


class Reservation:
    """An approved order not yet filled, cancelled, expired or rejected."""

    __slots__ = ("cash_price", "code", "increasing", "price", "remaining", "request", "sign")

    def __init__(
        self,
        request: SubmitOrder,
        code: int,
        price: float,
        remaining: float,
        increasing: bool,
        cash_price: float | None = None,
    ) -> None:
        self.request = request
        self.code = code
        self.sign = request.side.sign
        self.price = price
        self.cash_price = price if cash_price is None else cash_price  # price + costs per unit
        self.remaining = remaining
        self.increasing = increasing


class RiskView:
    """Positions, prices, account figures and open-order reservations."""

    def __init__(
        self, universe: Universe | None = None, *, costs: CostEstimate | None = None
    ) -> None:
        self.costs = costs
        self.days: TradingDays = DateDays()  # the trading day of a snapshot
        self.table = SymbolTable(
            {
                "position": 0.0,
                "price": math.nan,
                "volume": math.nan,
                "pending_buy": 0.0,
                "pending_sell": 0.0,
            },
            universe.symbols if universe is not None else None,
        )
        # symbols given up front are checked against from the start, and re-coded to the
        # run's codes by name when the session (or the first batch) brings them
        self._given = universe is not None
        self.held: set[int] = set()
        self.orders: dict[str, Reservation] = {}
        self.orders_per_code: dict[int, int] = {}
        self.reserved_cash = 0.0
        self.pending_proceeds = 0.0  # market sells of held shares, at their estimated price
        self.reserved_gross = 0.0
        self.reserved_net = 0.0
        # account figures, NaN until the first snapshot
        self.cash = math.nan
        self.equity = math.nan
        self.gross_exposure = 0.0
        self.net_exposure = 0.0
        self.peak_equity = math.nan
        self.max_drawdown_seen = 0.0
        self.day: int | None = -1
        self.day_start_equity = math.nan
        self.day_worst_loss = 0.0

    # ------------------------------------------------------------------ symbols

    @property
    def universe(self) -> Universe | None:
        """The run's universe once known (from the session or the first batch)."""
        return self.table.universe if self.table.known or self._given else None

    @property
    def position(self) -> np.ndarray:
        return self.table["position"]

    @property
    def price(self) -> np.ndarray:
        return self.table["price"]

    @property
    def volume(self) -> np.ndarray:
        return self.table["volume"]

    @property
    def pending_buy(self) -> np.ndarray:
        return self.table["pending_buy"]

    @property
    def pending_sell(self) -> np.ndarray:
        return self.table["pending_sell"]

    def code(self, symbol: str) -> int | None:
        return self.table.code_of(symbol)

    def ensure_code(self, symbol: str) -> int:
        return self.table.ensure(symbol)

    def adopt(self, symbols: list[str]) -> None:
        """Take the run's universe (in code order), re-coding anything recorded before
        under other codes, by name."""
        mapping = self.table.adopt(symbols)
        if mapping is None:
            return
        self.held = {int(mapping[c]) for c in self.held}
        for order in self.orders.values():
            order.code = int(mapping[order.code])
        self.orders_per_code = {int(mapping[c]): n for c, n in self.orders_per_code.items()}

    # ------------------------------------------------------------------ updates

    def set_position(self, code: int, quantity: float) -> None:
        self.position[code] = quantity
        if quantity != 0.0:
            self.held.add(code)
        else:
            self.held.discard(code)

    def observe_equity(self, ts_ns: int, equity: float) -> None:
        """Track the peak, the worst drawdown, and the day's start and worst loss.

        A day is a trading day as the broker's DAY orders see it (a session with a
        calendar, a date in the data's timezone without: :mod:`~ml4t.backtest._days`);
        its start equity is the last equity seen before it (the first snapshot's, on the
        first day), so an overnight gap counts as a loss.
        """
        day = self.days.bar_day_end(ts_ns)
        if day != self.day:
            self.day_start_equity = equity if math.isnan(self.equity) else self.equity
            self.day = day
            self.day_worst_loss = 0.0
        self.equity = equity
        if math.isnan(self.peak_equity) or equity > self.peak_equity:
            self.peak_equity = equity
        if self.peak_equity > 0:
            self.max_drawdown_seen = max(self.max_drawdown_seen, 1.0 - equity / self.peak_equity)
        if self.day_start_equity > 0:
            loss = (self.day_start_equity - equity) / self.day_start_equity
            self.day_worst_loss = max(self.day_worst_loss, loss)

    def observe_span(self, times: Sequence[int], equity: np.ndarray) -> bool:
        """:meth:`observe_equity` at each of ``times`` (increasing) at once, with the
        same arithmetic, where they lie in one day and every equity is finite; False
        (nothing observed) otherwise."""
        day = self.days.bar_day_end(times[0])
        if day != self.days.bar_day_end(times[-1]) or not np.isfinite(equity).all():
            return False
        if day != self.day:
            self.day_start_equity = float(equity[0]) if math.isnan(self.equity) else self.equity
            self.day = day
            self.day_worst_loss = 0.0
        self.equity = float(equity[-1])
        peaks = np.maximum.accumulate(equity)
        if not math.isnan(self.peak_equity):
            np.maximum(peaks, self.peak_equity, out=peaks)
        self.peak_equity = float(peaks[-1])
        rising = peaks > 0
        if rising.any():
            worst = float((1.0 - equity[rising] / peaks[rising]).max())
            self.max_drawdown_seen = max(self.max_drawdown_seen, worst)
        start = self.day_start_equity
        if start > 0:
            loss = float(((start - equity) / start).max())
            self.day_worst_loss = max(self.day_worst_loss, loss)
        return True

    # ------------------------------------------------------------------ reservations

    def reserve(self, order_id: str, order: Reservation) -> None:
        self.orders[order_id] = order
        self.orders_per_code[order.code] = self.orders_per_code.get(order.code, 0) + 1
        self._book(order, order.remaining)

    def release(self, order_id: str, quantity: float | None = None) -> Reservation | None:
        """Release ``quantity`` of an open order (all of it when None)."""
        order = self.orders.get(order_id)
        if order is None:
            return None
        qty = order.remaining if quantity is None else min(quantity, order.remaining)
        self._book(order, -qty)
        order.remaining -= qty
        if quantity is None or order.remaining <= 1e-9 * max(1.0, order.request.quantity):
            del self.orders[order_id]
            left = self.orders_per_code[order.code] - 1
            if left:
                self.orders_per_code[order.code] = left
            else:
                del self.orders_per_code[order.code]
        return order

    def open_order(
        self, request: SubmitOrder, code: int, price: float, remaining: float, increasing: bool
    ) -> Reservation:
        """An :class:`Reservation` whose cash reservation includes its estimated costs."""
        return Reservation(
            request,
            code,
            price,
            remaining,
            increasing,
            price + self.unit_cost(request, code, price),
        )

    def unit_cost(self, request: SubmitOrder, code: int | None, price: float) -> float:
        """Estimated commission and slippage per unit of ``request`` filled at ``price``."""
        costs = self.costs
        qty = float(request.quantity)
        if costs is None or not math.isfinite(price) or not qty > 0:
            return 0.0
        volume = math.nan
        if code is not None and code < self.volume.shape[0]:
            volume = float(self.volume[code])
        cost = costs(request.side.sign, qty, price, volume)
        return cost / qty if math.isfinite(cost) and cost > 0 else 0.0

    def _book(self, order: Reservation, qty: float) -> None:
        notional = qty * order.price if math.isfinite(order.price) else 0.0
        if order.sign > 0:
            self.pending_buy[order.code] += qty
            self.reserved_cash += qty * order.cash_price if math.isfinite(order.price) else 0.0
        else:
            self.pending_sell[order.code] += qty
            if order.request.order_type is OrderType.MARKET and not order.increasing:
                self.pending_proceeds += notional
        if order.increasing:
            self.reserved_gross += notional
        self.reserved_net += order.sign * notional

    # ------------------------------------------------------------------ queries

    def open_positions(self) -> int:
        """Symbols held, plus symbols not held that have an open order."""
        return len(self.held) + sum(1 for c in self.orders_per_code if c not in self.held)

    def estimate_price(self, request: SubmitOrder, code: int | None, buffer: float = 0.0) -> float:
        """The price an order is judged at: its limit (limit, stop-limit), its stop (stop),
        else the last close moved ``buffer`` against it; NaN if unknown."""
        kind = request.order_type
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and request.limit_price is not None:
            return request.limit_price
        if kind is OrderType.STOP and request.stop_price is not None:
            return request.stop_price
        if code is None or code >= self.price.shape[0]:
            return math.nan
        return float(self.price[code]) * (1.0 + request.side.sign * buffer)
