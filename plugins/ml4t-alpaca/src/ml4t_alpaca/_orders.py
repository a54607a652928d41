"""Our orders in Alpaca's terms: client order ids, and ``SubmitOrder`` -> an alpaca-py
order request.

**Client order ids** are deterministic: ``<prefix>:<session>:<strategy>:<n>:<order id>``,
where ``<strategy>`` is the strategy id percent-encoded (so it holds no ``:``) and ``<n>``
counts the order's replacements (0 for the order as first sent; Alpaca needs a new
client id for each replacement). The same order of the same session is therefore always
the same venue order: a resubmission after a reconnect, or after a restart with the same
``session``, finds it by this id instead of creating a second one. An id that would pass
Alpaca's 128 characters is ``<prefix>:<session>:#<digest>`` instead (still deterministic,
but then the strategy and order cannot be read back from it by another process).

**Order types** map one to one (market, limit, stop, stop_limit, trailing_stop; our
``trail_percent`` is a fraction, Alpaca's a percentage). **Times in force** map through
the config (identity by default; ``opg``/``cls`` reachable by mapping ``day``).
**Brackets**: an entry with a stop loss and a take profit is Alpaca's ``bracket``
order class, with one of them ``oto``, when Alpaca allows it (a market or limit entry,
``day`` or ``gtc``); otherwise the entry goes alone and its exits are placed by the
adapter once it is filled, as one ``oco`` order (both exits) or a single order
(:func:`exit_requests`). ``reduce_only`` and ``parent_id`` groups have no Alpaca
equivalent for equities and are not sent.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote, unquote

from alpaca.trading.enums import OrderClass
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.requests import (
    LimitOrderRequest,
    MarketOrderRequest,
    OrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from ml4t.backtest import OrderSide, OrderType, SubmitOrder
from ml4t_alpaca.config import AlpacaConfig

__all__ = [
    "ClientIds",
    "OrderRefused",
    "exit_requests",
    "natively_bracketed",
    "order_request",
]

MAX_CLIENT_ID = 128


class OrderRefused(Exception):
    """An order Alpaca cannot express (the reason is the message); becomes a rejection."""


class ClientIds:
    """The client order ids of one session."""

    def __init__(self, prefix: str, session: str) -> None:
        self.namespace = f"{prefix}:{session}:"

    def of(self, strategy_id: str, order_id: str, replacement: int = 0) -> str:
        cid = f"{self.namespace}{quote(strategy_id, safe='')}:{replacement}:{order_id}"
        if len(cid) <= MAX_CLIENT_ID:
            return cid
        digest = hashlib.sha256(f"{strategy_id}\0{order_id}\0{replacement}".encode()).hexdigest()
        return f"{self.namespace}#{digest[:40]}"

    def parse(self, cid: str | None) -> tuple[str, str, int] | None:
        """``(strategy id, order id, replacement)`` of one of this session's ids; None for
        another's (or a hashed one)."""
        if not cid or not cid.startswith(self.namespace):
            return None
        strategy, sep, rest = cid[len(self.namespace) :].partition(":")
        count, sep2, order_id = rest.partition(":")
        if not (sep and sep2 and count.isdigit() and order_id):
            return None
        return unquote(strategy), order_id, int(count)

    def owns(self, cid: str | None) -> bool:
        return bool(cid) and cid.startswith(self.namespace)  # type: ignore[union-attr]


def natively_bracketed(order: SubmitOrder, tif: str) -> bool:
    """Whether Alpaca takes ``order``'s exits as its own order class."""
    if order.stop_loss is None and order.take_profit is None:
        return False
    return order.order_type in (OrderType.MARKET, OrderType.LIMIT) and tif in ("day", "gtc")


def order_request(order: SubmitOrder, cid: str, config: AlpacaConfig) -> OrderRequest:
    """The alpaca-py request for ``order`` (its exits included when Alpaca takes them)."""
    tif = config.alpaca_tif(order.time_in_force.value)
    fields: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": order.quantity,
        "side": AlpacaSide(order.side.value),
        "time_in_force": tif,
        "client_order_id": cid,
    }
    if natively_bracketed(order, tif):
        if order.stop_loss is not None and order.take_profit is not None:
            fields["order_class"] = OrderClass.BRACKET
        else:
            fields["order_class"] = OrderClass.OTO
        if order.take_profit is not None:
            fields["take_profit"] = TakeProfitRequest(limit_price=order.take_profit)
        if order.stop_loss is not None:
            fields["stop_loss"] = StopLossRequest(stop_price=order.stop_loss)
    try:
        return _typed(order, fields)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise OrderRefused(_first_line(exc)) from None


def _typed(order: SubmitOrder, fields: dict[str, Any]) -> OrderRequest:
    kind = order.order_type
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**fields)
    if kind is OrderType.LIMIT:
        return LimitOrderRequest(limit_price=order.limit_price, **fields)
    if kind is OrderType.STOP:
        return StopOrderRequest(stop_price=order.stop_price, **fields)
    if kind is OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            stop_price=order.stop_price, limit_price=order.limit_price, **fields
        )
    if order.trail_amount is not None:
        return TrailingStopOrderRequest(trail_price=order.trail_amount, **fields)
    if order.trail_percent is not None:
        return TrailingStopOrderRequest(trail_percent=order.trail_percent * 100.0, **fields)
    raise OrderRefused("a trailing stop needs trail_amount or trail_percent")


def exit_requests(
    entry: SubmitOrder, quantity: float, cids: tuple[str, str], config: AlpacaConfig
) -> OrderRequest:
    """The exits of an entry Alpaca could not bracket, for its filled ``quantity``: one
    ``oco`` order (take profit, with the stop loss as its leg) when both are set, else
    the single one. ``cids`` are the take-profit and stop-loss client ids."""
    side = AlpacaSide(OrderSide.SELL.value if entry.side is OrderSide.BUY else OrderSide.BUY.value)
    tp_cid, sl_cid = cids
    common: dict[str, Any] = {
        "symbol": entry.symbol,
        "qty": quantity,
        "side": side,
        "time_in_force": "gtc",
    }
    try:
        if entry.take_profit is not None and entry.stop_loss is not None:
            return LimitOrderRequest(
                limit_price=entry.take_profit,
                order_class=OrderClass.OCO,
                take_profit=TakeProfitRequest(limit_price=entry.take_profit),
                stop_loss=StopLossRequest(stop_price=entry.stop_loss),
                client_order_id=tp_cid,
                **common,
            )
        if entry.take_profit is not None:
            return LimitOrderRequest(
                limit_price=entry.take_profit, client_order_id=tp_cid, **common
            )
        return StopOrderRequest(stop_price=entry.stop_loss, client_order_id=sl_cid, **common)
    except ValueError as exc:
        raise OrderRefused(_first_line(exc)) from None


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in lines if not line.startswith("For further")), str(exc))[:200]
