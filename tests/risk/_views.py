"""Build a RiskView by hand for the pure rule tests."""

from __future__ import annotations

from ml4t.backtest._universe import Universe
from ml4t.backtest.risk import Reservation, RiskView
from tests.execution._market import UNIVERSE, order


def make_view(
    *,
    positions: dict[str, float] | None = None,
    prices: dict[str, float] | None = None,
    cash: float = 100_000.0,
    equity: float = 100_000.0,
    gross: float | None = None,
    net: float | None = None,
    open_orders: list[tuple[str, str, float, float]] | None = None,
) -> RiskView:
    """positions and prices by symbol; gross/net default to what the positions imply;
    open_orders: (symbol, side, quantity, price) already approved."""
    view = RiskView(Universe(UNIVERSE))
    prices = {"AAA": 100.0, "BBB": 50.0, "CCC": 20.0, **(prices or {})}
    for symbol, price in prices.items():
        view.price[view.code(symbol)] = price
    value = 0.0
    gross_value = 0.0
    for symbol, qty in (positions or {}).items():
        view.set_position(view.code(symbol), qty)
        value += qty * prices[symbol]
        gross_value += abs(qty) * prices[symbol]
    view.cash = cash
    view.gross_exposure = gross_value if gross is None else gross
    view.net_exposure = value if net is None else net
    view.observe_equity(0, equity)
    for i, (symbol, side, qty, price) in enumerate(open_orders or []):
        request = order(f"open{i}", side, qty, symbol=symbol)
        code = view.code(symbol)
        position = float(view.position[code])
        reducing = position != 0 and (position > 0) != (side == "buy")
        view.reserve(request.order_id, Reservation(request, code, price, qty, not reducing))
    return view
