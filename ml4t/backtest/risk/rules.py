"""Pre-trade risk rules: pure functions of (request, view, config).

Each rule returns None (accept) or a :class:`Rejection` naming the rule and saying, with
the numbers, why the order is refused. Rules never mutate the view, so tests call them
directly without a bus. :func:`evaluate` runs them in :data:`RULES` order and returns the
first rejection.

Two principles hold for every exposure rule: an order that moves a measure *toward*
compliance is never refused (exits always go through), and open orders count as if they
filled at their estimated price (see :mod:`~ml4t.backtest.risk.view`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import msgspec

from ml4t.backtest._validation import INVALID_ORDER, invalid_submit
from ml4t.backtest.events import SubmitOrder
from ml4t.backtest.risk.config import RiskConfig
from ml4t.backtest.risk.view import RiskView

__all__ = [
    "KEYS",
    "RULES",
    "Impact",
    "Rejection",
    "RiskRule",
    "Rule",
    "check_bracket_levels",
    "check_buying_power",
    "check_daily_loss",
    "check_drawdown",
    "check_gross_leverage",
    "check_known_symbol",
    "check_max_open_positions",
    "check_max_order_notional",
    "check_max_position",
    "check_net_leverage",
    "check_restricted",
    "check_valid",
    "evaluate",
    "impact",
]


class Rejection(NamedTuple):
    """Why a rule refuses an order: ``rule`` names the rule (``max_position``), ``reason``
    says it with the numbers. It becomes ``OrderRejected(rule=..., reason=...)``."""

    rule: str
    reason: str


class RiskRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of a rule with parameters, for plugins: subclass it, declare the parameters as
    fields (constraints as types) and implement :meth:`check`. Register the class under
    the entry-point group ``ml4t.backtest.risk_rules``; ``risk.rules: [{rule: NAME,
    params: {...}}]`` builds it from the config, validating the params.

    An instance is called as every rule is, ``rule(request, view, config)``."""

    def check(self, request: SubmitOrder, view: RiskView, config: RiskConfig) -> Rejection | None:
        """None to accept ``request``, else a ``Rejection(rule, reason)`` whose reason
        gives the numbers. Pure: it reads the view and never changes it."""
        raise NotImplementedError

    def __call__(
        self, request: SubmitOrder, view: RiskView, config: RiskConfig
    ) -> Rejection | None:
        return self.check(request, view, config)


class Impact(NamedTuple):
    """What an order would do to its symbol, with open orders counted as filled."""

    code: int | None
    sign: int
    quantity: float
    price: float  # estimated fill price, NaN if unknown
    notional: float  # quantity * price
    position: float  # held now
    pending_buy: float
    pending_sell: float
    before: float  # position + open buys - open sells
    after: float  # before + this order
    reducing: bool  # moves |before| toward zero without crossing it


def impact(request: SubmitOrder, view: RiskView, config: RiskConfig) -> Impact:
    code = view.code(request.symbol)
    sign = request.side.sign
    qty = float(request.quantity)
    price = view.estimate_price(request, code, config.market_price_buffer)
    if code is None or code >= view.position.shape[0]:
        position = buys = sells = 0.0
    else:
        position = float(view.position[code])
        buys, sells = float(view.pending_buy[code]), float(view.pending_sell[code])
    before = position + buys - sells
    after = before + sign * qty
    reducing = before != 0.0 and (before > 0) != (sign > 0) and qty <= abs(before) * (1 + 1e-9)
    return Impact(
        code, sign, qty, price, qty * price, position, buys, sells, before, after, reducing
    )


def _what(request: SubmitOrder) -> str:
    return f"order {request.order_id}: {request.side.value} {request.quantity:g} {request.symbol}"


def _no_price(rule: str, request: SubmitOrder) -> Rejection:
    return Rejection(
        rule,
        f"no price known for {request.symbol} yet, so {rule} cannot be checked "
        f"({_what(request)}); give a limit price or wait for the symbol's first bar",
    )


def _no_equity(rule: str, request: SubmitOrder) -> Rejection:
    return Rejection(
        rule,
        f"no portfolio snapshot yet (equity unknown), so {rule} cannot be checked "
        f"({_what(request)})",
    )


# ------------------------------------------------------------------ rules


def check_valid(request: SubmitOrder, view: RiskView, config: RiskConfig) -> Rejection | None:
    """Quantity and prices finite and positive; the right prices for the order type."""
    problem = invalid_submit(request)
    return Rejection(INVALID_ORDER, problem) if problem is not None else None


def check_known_symbol(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    """Once the universe is known (from the first market batch), a symbol outside it is
    refused here rather than reserved; before that the broker is the judge."""
    if view.universe is None or request.symbol in view.universe:
        return None
    return Rejection(
        "unknown_symbol",
        f"unknown symbol {request.symbol!r}: not in the universe of {len(view.universe)} "
        f"symbols ({_what(request)})",
    )


def check_bracket_levels(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    """A bracket without a limit price is judged at its entry price (a stop entry's stop,
    a market entry's last close): a buy's stop-loss must be below it and its take-profit
    above it (a sell's the other way round), or a child would fire as the entry fills. (A
    limit entry's levels are checked against its limit price by ``check_valid``.)"""
    sl, tp = request.stop_loss, request.take_profit
    if (sl is None and tp is None) or request.limit_price is not None:
        return None
    if request.stop_price is not None:
        last = request.stop_price  # a stop entry fills at its stop, or beyond it
    else:
        code = view.code(request.symbol)
        if code is None or code >= view.price.shape[0] or not math.isfinite(view.price[code]):
            return None  # no price yet: the entry's own fill decides
        last = float(view.price[code])
    buy = request.side.sign > 0
    if sl is not None and (sl >= last if buy else sl <= last):
        where = "below" if buy else "above"
        return Rejection(
            INVALID_ORDER,
            f"a {request.side} bracket needs stop_loss {where} the entry price: stop_loss={sl:g}, "
            f"entry {last:g} ({_what(request)})",
        )
    if tp is not None and (tp <= last if buy else tp >= last):
        where = "above" if buy else "below"
        return Rejection(
            INVALID_ORDER,
            f"a {request.side} bracket needs take_profit {where} the entry price: "
            f"take_profit={tp:g}, entry {last:g} ({_what(request)})",
        )
    return None


def check_restricted(request: SubmitOrder, view: RiskView, config: RiskConfig) -> Rejection | None:
    if request.symbol in config.restricted_symbols:
        return Rejection(
            "restricted_symbol",
            f"{request.symbol} is on the restricted list; {_what(request)} refused",
        )
    return None


def check_drawdown(request: SubmitOrder, view: RiskView, config: RiskConfig) -> Rejection | None:
    """Halt new entries once equity fell ``max_drawdown`` from its peak (latched)."""
    limit = config.max_drawdown
    if limit is None or not view.peak_equity > 0:
        return None
    now = 1.0 - view.equity / view.peak_equity if math.isfinite(view.equity) else 0.0
    worst = max(view.max_drawdown_seen, now)
    if worst < limit or impact(request, view, config).reducing:
        return None
    return Rejection(
        "max_drawdown",
        f"trading halted: drawdown reached {worst:.2%} of peak equity {view.peak_equity:,.2f} "
        f"(limit {limit:.2%}); only orders that reduce a position are accepted "
        f"({_what(request)})",
    )


def check_daily_loss(request: SubmitOrder, view: RiskView, config: RiskConfig) -> Rejection | None:
    """Halt new entries for the rest of the day once the day's loss reached the limit."""
    limit = config.max_daily_loss
    start = view.day_start_equity
    if limit is None or not start > 0:
        return None
    now = (start - view.equity) / start if math.isfinite(view.equity) else 0.0
    worst = max(view.day_worst_loss, now)
    if worst < limit or impact(request, view, config).reducing:
        return None
    return Rejection(
        "daily_loss_limit",
        f"trading halted for the day: equity fell {worst:.2%} from the day's start "
        f"{start:,.2f} (limit {limit:.2%}); only orders that reduce a position are "
        f"accepted ({_what(request)})",
    )


def check_max_order_notional(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    limit = config.max_order_notional
    if limit is None:
        return None
    imp = impact(request, view, config)
    if math.isnan(imp.price):
        return _no_price("max_order_notional", request)
    if imp.notional <= limit:
        return None
    return Rejection(
        "max_order_notional",
        f"order notional {imp.notional:,.2f} ({imp.quantity:g} x {imp.price:,.4f}) exceeds "
        f"max_order_notional {limit:,.2f} ({_what(request)})",
    )


def check_max_position(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    """|position after the order| in shares, money and fraction of equity."""
    shares, money, pct = (
        config.max_position_shares,
        config.max_position_notional,
        config.max_position_pct,
    )
    if shares is None and money is None and pct is None:
        return None
    imp = impact(request, view, config)
    if abs(imp.after) <= abs(imp.before):
        return None
    held = (
        f"held {imp.position:g}, open orders +{imp.pending_buy:g}/-{imp.pending_sell:g}, "
        f"this order {imp.sign * imp.quantity:+g}"
    )
    if shares is not None and abs(imp.after) > shares:
        return Rejection(
            "max_position",
            f"position in {request.symbol} would be {imp.after:g} shares ({held}), above "
            f"max_position_shares {shares:g} ({_what(request)})",
        )
    if money is None and pct is None:
        return None
    if math.isnan(imp.price):
        return _no_price("max_position", request)
    value = abs(imp.after) * imp.price
    if money is not None and value > money:
        return Rejection(
            "max_position",
            f"position in {request.symbol} would be worth {value:,.2f} ({imp.after:g} x "
            f"{imp.price:,.4f}; {held}), above max_position_notional {money:,.2f} "
            f"({_what(request)})",
        )
    if pct is not None:
        if not view.equity > 0:
            return _no_equity("max_position", request)
        if value > pct * view.equity:
            return Rejection(
                "max_position",
                f"position in {request.symbol} would be worth {value:,.2f}, "
                f"{value / view.equity:.2%} of equity {view.equity:,.2f}, above "
                f"max_position_pct {pct:.2%} ({held}; {_what(request)})",
            )
    return None


def check_max_open_positions(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    limit = config.max_open_positions
    if limit is None:
        return None
    code = view.code(request.symbol)
    if code is not None and (code in view.held or code in view.orders_per_code):
        return None
    count = view.open_positions()
    if count + 1 <= limit:
        return None
    return Rejection(
        "max_open_positions",
        f"{request.symbol} would be open position number {count + 1} (held or with open "
        f"orders: {count}), above max_open_positions {limit} ({_what(request)})",
    )


def check_gross_leverage(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    limit = config.max_gross_leverage
    if limit is None:
        return None
    imp = impact(request, view, config)
    if abs(imp.after) <= abs(imp.before):
        return None
    if math.isnan(imp.price):
        return _no_price("max_gross_leverage", request)
    if not view.equity > 0:
        return _no_equity("max_gross_leverage", request)
    added = (abs(imp.after) - abs(imp.before)) * imp.price
    gross = view.gross_exposure + view.reserved_gross + added
    if gross <= limit * view.equity:
        return None
    return Rejection(
        "max_gross_leverage",
        f"gross leverage would be {gross / view.equity:.4f} (gross exposure {gross:,.2f} on "
        f"equity {view.equity:,.2f}, this order adds {added:,.2f}), above "
        f"max_gross_leverage {limit:g} ({_what(request)})",
    )


def check_net_leverage(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    limit = config.max_net_leverage
    if limit is None:
        return None
    imp = impact(request, view, config)
    if math.isnan(imp.price):
        return _no_price("max_net_leverage", request)
    net_before = view.net_exposure + view.reserved_net
    net = net_before + imp.sign * imp.notional
    if abs(net) <= abs(net_before):
        return None
    if not view.equity > 0:
        return _no_equity("max_net_leverage", request)
    if abs(net) <= limit * view.equity:
        return None
    return Rejection(
        "max_net_leverage",
        f"net leverage would be {net / view.equity:+.4f} (net exposure {net:,.2f} on equity "
        f"{view.equity:,.2f}), beyond max_net_leverage {limit:g} ({_what(request)})",
    )


def check_buying_power(
    request: SubmitOrder, view: RiskView, config: RiskConfig
) -> Rejection | None:
    """Cash account: buys within free cash, sells within the shares held. Margin account:
    gross exposure within ``margin_leverage`` x equity. Unchecked account: always passes."""
    if config.account == "unchecked":
        return None
    imp = impact(request, view, config)
    if config.account == "cash":
        if imp.sign < 0:
            free = imp.position - imp.pending_sell
            if imp.quantity <= free * (1 + 1e-9) + 1e-12:
                return None
            return Rejection(
                "buying_power",
                f"a cash account cannot sell short: selling {imp.quantity:g} {request.symbol} "
                f"with {imp.position:g} held and {imp.pending_sell:g} already being sold "
                f"({_what(request)})",
            )
        if math.isnan(imp.price):
            return _no_price("buying_power", request)
        if math.isnan(view.cash):
            return _no_equity("buying_power", request)
        credit = view.pending_proceeds if config.credit_pending_sales else 0.0
        free = view.cash - view.reserved_cash + credit
        costs = imp.quantity * view.unit_cost(request, imp.code, imp.price)
        if imp.notional + costs <= free:
            return None
        extra = f" + estimated commission and slippage {costs:,.2f}" if costs else ""
        return Rejection(
            "buying_power",
            f"insufficient cash: order costs {imp.notional + costs:,.2f} ({imp.quantity:g} x "
            f"{imp.price:,.4f}{extra}) but only {free:,.2f} is free (cash {view.cash:,.2f}, "
            f"reserved by open buys {view.reserved_cash:,.2f}, credited from market "
            f"sells {credit:,.2f}) ({_what(request)})",
        )
    if abs(imp.after) <= abs(imp.before):
        return None
    if math.isnan(imp.price):
        return _no_price("buying_power", request)
    if not view.equity > 0:
        return _no_equity("buying_power", request)
    added = (abs(imp.after) - abs(imp.before)) * imp.price
    free = config.margin_leverage * view.equity - view.gross_exposure - view.reserved_gross
    if added <= free:
        return None
    return Rejection(
        "buying_power",
        f"insufficient margin: order adds {added:,.2f} of exposure but buying power is "
        f"{free:,.2f} ({config.margin_leverage:g} x equity {view.equity:,.2f} - gross "
        f"{view.gross_exposure:,.2f} - reserved {view.reserved_gross:,.2f}) ({_what(request)})",
    )


Rule = Callable[[SubmitOrder, RiskView, RiskConfig], Rejection | None]

RULES: tuple[Rule, ...] = (
    check_valid,
    check_known_symbol,
    check_bracket_levels,
    check_restricted,
    check_drawdown,
    check_daily_loss,
    check_max_order_notional,
    check_max_position,
    check_max_open_positions,
    check_gross_leverage,
    check_net_leverage,
    check_buying_power,
)


KEYS: Mapping[Rule, tuple[str, ...]] = MappingProxyType(
    {
        check_valid: (),
        check_known_symbol: (),
        check_bracket_levels: (),
        check_restricted: ("restricted_symbols",),
        check_drawdown: ("max_drawdown",),
        check_daily_loss: ("max_daily_loss",),
        check_max_order_notional: ("max_order_notional",),
        check_max_position: ("max_position_shares", "max_position_notional", "max_position_pct"),
        check_max_open_positions: ("max_open_positions",),
        check_gross_leverage: ("max_gross_leverage",),
        check_net_leverage: ("max_net_leverage",),
        check_buying_power: ("account", "margin_leverage", "credit_pending_sales"),
    }
)
"""Each standard rule -> the :class:`RiskConfig` keys that set it (``ml4t plugins`` shows
them; ``market_price_buffer`` prices market orders for every rule)."""


def evaluate(
    request: SubmitOrder, view: RiskView, config: RiskConfig, rules: tuple[Rule, ...] = RULES
) -> Rejection | None:
    """The first rejection among ``rules``, or None if the order passes them all."""
    for rule in rules:
        rejection = rule(request, view, config)
        if rejection is not None:
            return rejection
    return None
